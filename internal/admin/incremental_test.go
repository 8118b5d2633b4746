package admin

import (
	"context"
	"testing"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/directory/directorytest"
)

// TestCommonChangesAreIncremental: the admin changes issue 14 names bring
// the snapshot up to date by applying the changed rows, not by reading the
// whole directory (the snapshot keeps its base and grows an overlay), and
// the result answers every lookup as a full read would. A change to a
// table not applied row by row (New-AcceptedDomain) reads everything.
func TestCommonChangesAreIncremental(t *testing.T) {
	st := openStore(t)
	svc := testService(t, st)
	if _, err := runScript(t, svc, `New-AcceptedDomain -Name contoso.com -DomainName contoso.com`); err != nil {
		t.Fatal(err)
	}
	if n := svc.Dir.Load().Applied(); n != 0 {
		t.Fatalf("after New-AcceptedDomain (a full read) %d deltas are applied", n)
	}
	for _, step := range []string{
		`New-Mailbox -Name sean -PrimarySmtpAddress sean@contoso.com -Password Passw0rd!`,
		`New-Mailbox -Name chris -PrimarySmtpAddress chris@contoso.com -Password Passw0rd!`,
		`Set-CASMailbox -Identity sean@contoso.com -SmtpClientAuthenticationDisabled $false`,
		`Set-Mailbox -Identity sean -EmailAddresses @{Add="sean.smith@contoso.com"} -GrantSendOnBehalfTo chris`,
		`Add-RecipientPermission -Identity sean -Trustee chris -AccessRights SendAs -Confirm:$false`,
		`Set-TransportConfig -SmtpClientAuthenticationDisabled $false`,
		`Remove-Mailbox -Identity chris -Confirm:$false`,
	} {
		before := svc.Dir.Load().Applied()
		if _, err := runScript(t, svc, step); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		snap := svc.Dir.Load()
		if snap.Applied() != before+1 {
			t.Errorf("%s: %d deltas applied, then %d: the directory was read whole", step, before, snap.Applied())
		}
		c, err := st.LoadDirectory(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if diffs := directorytest.Diff(snap, directory.NewSnapshot(c)); len(diffs) > 0 {
			t.Fatalf("%s: the snapshot differs from a full read: %v", step, diffs)
		}
	}
	if m := svc.Dir.Load().MailboxByAddress("sean.smith@contoso.com"); m == nil || m.SmtpClientAuthenticationDisabled == nil {
		t.Errorf("sean after the changes: %+v", m)
	}
}
