package admin

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"postern.dev/postern/internal/cmdlet"
	"postern.dev/postern/internal/store"
)

// TestRoleGroupMembers: membership is per organization, gives the widest
// role, is role-checked and audited, and goes with its mailbox.
func TestRoleGroupMembers(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	svc := testService(t, st)
	run := func(svc *Service, args ...string) (string, error) {
		var out bytes.Buffer
		r := &cmdlet.Runner{Registry: Cmdlets(svc), Out: &out}
		err := r.RunArgs(ctx, args)
		return out.String(), err
	}
	must := func(svc *Service, args ...string) string {
		t.Helper()
		out, err := run(svc, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	must(svc, "New-AcceptedDomain", "-Name", "contoso.com", "-DomainName", "contoso.com", "-DomainType", "Authoritative")
	must(svc, "New-Mailbox", "-Name", "sean", "-PrimarySmtpAddress", "sean@contoso.com", "-Password", "Passw0rd!")
	must(svc, "New-Mailbox", "-Name", "ann", "-PrimarySmtpAddress", "ann@contoso.com", "-Password", "Passw0rd!")
	must(svc, "New-Mailbox", "-Name", "info", "-PrimarySmtpAddress", "info@contoso.com", "-Shared")
	must(svc, "Add-RoleGroupMember", "-Identity", "Organization Management", "-Member", "sean@contoso.com")
	must(svc, "Add-RoleGroupMember", "View-Only Organization Management", "-Member", "sean@contoso.com")
	must(svc, "Add-RoleGroupMember", "-Identity", "view-only", "-Member", "ann")

	for _, tt := range []struct {
		args []string
		want string
		kind error
	}{
		{[]string{"Add-RoleGroupMember", "-Identity", "Organization Management", "-Member", "sean@contoso.com"}, "already a member", ErrExists},
		{[]string{"Add-RoleGroupMember", "-Identity", "Organization Management", "-Member", "info@contoso.com"}, "shared mailbox", nil},
		{[]string{"Add-RoleGroupMember", "-Identity", "Domain Admins", "-Member", "sean@contoso.com"}, "couldn't be found", ErrNotFound},
		{[]string{"Add-RoleGroupMember", "-Identity", "Organization Management", "-Member", "nobody@contoso.com"}, "couldn't be found", ErrNotFound},
		{[]string{"Remove-RoleGroupMember", "-Identity", "Recipient Management", "-Member", "ann@contoso.com"}, "isn't a member", ErrNotFound},
	} {
		_, err := run(svc, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.kind != nil && !errors.Is(err, tt.kind)) {
			t.Errorf("%v: got %v, want %q (%v)", tt.args, err, tt.want, tt.kind)
		}
	}

	out := must(svc, "Get-RoleGroupMember", "Organization Management")
	if !strings.Contains(out, "sean") || strings.Contains(out, "ann") {
		t.Errorf("Get-RoleGroupMember:\n%s", out)
	}
	dir := svc.Dir.Load()
	sean, ann := dir.MailboxByAddress("sean@contoso.com"), dir.MailboxByAddress("ann@contoso.com")
	if r, ok, _ := svc.MailboxRole(ctx, sean); !ok || r != OrganizationManagement {
		t.Errorf("sean's role = %q %v, want the widest, Organization Management", r, ok)
	}
	if r, ok, _ := svc.MailboxRole(ctx, ann); !ok || r != ViewOnly {
		t.Errorf("ann's role = %q %v", r, ok)
	}

	// A View-Only admin reads the members but changes nothing; the refusal
	// is audited under its name.
	ro := svc.As(Principal{Name: "ann@contoso.com (admin center)", OrgID: sean.OrgID, Role: ViewOnly})
	must(ro, "Get-RoleGroupMember", "Organization Management")
	if _, err := run(ro, "Add-RoleGroupMember", "Organization Management", "-Member", "ann"); !errors.Is(err, ErrAccessDenied) {
		t.Errorf("View-Only Add-RoleGroupMember: %v, want access denied", err)
	}
	es, _ := st.SearchAudit(ctx, store.AuditQuery{OrgID: sean.OrgID, Cmdlets: []string{"Add-RoleGroupMember"}})
	if len(es) == 0 || es[0].Caller != "ann@contoso.com (admin center)" || es[0].Succeeded {
		t.Errorf("audit of the refused change: %+v", es)
	}

	// Another organization's admin sees no member of this one.
	other, err := svc.NewOrganization(ctx, "Fabrikam")
	if err != nil {
		t.Fatal(err)
	}
	fab := svc.As(Principal{Name: "fabrikam admin", OrgID: other.ID, Role: OrganizationManagement})
	if out := must(fab, "Get-RoleGroupMember", "Organization Management"); strings.Contains(out, "sean") {
		t.Errorf("another organization sees the members:\n%s", out)
	}
	if _, err := run(fab, "Remove-RoleGroupMember", "Organization Management", "-Member", "sean@contoso.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("another organization removes a member: %v", err)
	}

	// Removing the mailbox removes its memberships.
	must(svc, "Remove-RoleGroupMember", "-Identity", "View-Only Organization Management", "-Member", "sean")
	must(svc, "Remove-Mailbox", "-Identity", "ann@contoso.com")
	if ms, _ := st.RoleGroupMembers(ctx, sean.OrgID); len(ms) != 1 || ms[0].MailboxID != sean.ID {
		t.Errorf("memberships after removing ann: %+v", ms)
	}
}
