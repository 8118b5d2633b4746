package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// directSend is one anonymous transaction on the MX listener from src; it
// returns the first refusal, or the reply after the data.
func directSend(t *testing.T, src, addr, from, to string) string {
	t.Helper()
	c := dialFrom(t, src, addr)
	c.expect("EHLO device.contoso.com", "250")
	return c.send(from, []string{to}, message(from, to, "Scan"))
}

// A mailbox over its outbound spam policy's limit is restricted: the
// message that goes over gets Exchange's 550 5.1.8, and so does every later
// submission, across a restart, until an admin releases it with
// Remove-BlockedSenderAddress; Get-BlockedSenderAddress lists it and the
// admin audit log records both.
func TestOutboundSpamPolicyBlocksSender(t *testing.T) {
	in := newInstance(t)
	sean := in.mailbox("sean", "Sean-Pass-1")
	in.admin("Set-HostedOutboundSpamFilterPolicy", "-Identity", "Default", "-RecipientLimitExternalPerHour", "2",
		"-ActionWhenThresholdReached", "BlockUser")
	got := in.shell("Get-HostedOutboundSpamFilterPolicy | Format-List RecipientLimitExternalPerHour,RecipientLimitInternalPerHour,RecipientLimitPerDay,ActionWhenThresholdReached")
	for _, want := range []string{"RecipientLimitExternalPerHour : 2", "RecipientLimitInternalPerHour : 0", "RecipientLimitPerDay          : 0", "ActionWhenThresholdReached    : BlockUser"} {
		if !strings.Contains(got, want) {
			t.Fatalf("Get-HostedOutboundSpamFilterPolicy lacks %q:\n%s", want, got)
		}
	}
	if out, err := in.try("Set-HostedOutboundSpamFilterPolicy", "-RecipientLimitPerDay", "10001"); err == nil || !strings.Contains(out, "RecipientLimitPerDay") {
		t.Fatalf("a limit over 10000 was accepted: %v\n%s", err, out)
	}
	in.start()
	cfg := in.tlsConfig()

	c := dial(t, in.addrs["submission"])
	c.login(cfg, sean, "Sean-Pass-1")
	// Internal recipients do not count against the external limit.
	if r := c.send(sean, []string{"a@example.org", "b@example.org", sean}, message(sean, "a@example.org", "1")); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("within the limit: %q", r)
	}
	if r := c.send(sean, []string{"c@example.org"}, message(sean, "c@example.org", "2")); r != "550 5.1.8 Access denied, bad outbound sender" {
		t.Fatalf("over the limit: %q", r)
	}
	// Every later submission is refused at MAIL FROM, internal ones too.
	c.expect("MAIL FROM:<"+sean+">", "550 5.1.8 Access denied, bad outbound sender")
	if v := verdictOf(in.shell("Test-SmtpSubmission -Identity " + sean + " -Port 587 -UseTls $true | Format-List")); v != "550 5.1.8 Access denied, bad outbound sender" {
		t.Fatalf("Test-SmtpSubmission verdict for the restricted sender: %q", v)
	}
	list := in.shell("Get-BlockedSenderAddress | Format-List SenderAddress,Reason,Action")
	for _, want := range []string{"SenderAddress : " + sean, "RecipientLimitExternalPerHour of 2 exceeded (3 recipients)", "Action        : BlockUser"} {
		if !strings.Contains(list, want) {
			t.Fatalf("Get-BlockedSenderAddress lacks %q:\n%s", want, list)
		}
	}
	if audit := in.shell("Search-AdminAuditLog | Format-List Caller,CmdletName,ObjectModified"); !strings.Contains(audit, "Outbound spam policy") || !strings.Contains(audit, sean) {
		t.Fatalf("the restriction is not in the audit log:\n%s", audit)
	}

	// The restriction is in the store: a restart keeps it.
	in.stop()
	in.start()
	c = dial(t, in.addrs["submission"])
	c.login(cfg, sean, "Sean-Pass-1")
	c.expect("MAIL FROM:<"+sean+">", "550 5.1.8 Access denied, bad outbound sender")

	in.admin("Remove-BlockedSenderAddress", "-SenderAddress", sean)
	if list := in.shell("Get-BlockedSenderAddress"); strings.Contains(list, sean) {
		t.Fatalf("still listed after Remove-BlockedSenderAddress:\n%s", list)
	}
	if out, err := in.try("Remove-BlockedSenderAddress", "-SenderAddress", sean); err == nil || !strings.Contains(out, "isn't on the restricted entities list") {
		t.Fatalf("releasing twice: %v\n%s", err, out)
	}
	// Released today, the sender is not restricted again today, even over
	// the limit (Exchange's rule).
	c.expect("RSET", "250")
	if r := c.send(sean, []string{"d@example.org"}, message(sean, "d@example.org", "3")); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("after release: %q", r)
	}
	if audit := in.shell("Search-AdminAuditLog -Cmdlets Remove-BlockedSenderAddress | Format-List CmdletName"); !strings.Contains(audit, "Remove-BlockedSenderAddress") {
		t.Fatalf("the release is not in the audit log:\n%s", audit)
	}
}

// With Alert the message that crosses a limit is accepted, and the alert
// is in its message trace and the server log; nobody is restricted.
func TestOutboundSpamPolicyAlert(t *testing.T) {
	in := newInstance(t)
	sean := in.mailbox("sean", "Sean-Pass-1")
	kim := in.mailbox("kim", "Kim-Pass-12")
	in.admin("Set-HostedOutboundSpamFilterPolicy", "-RecipientLimitInternalPerHour", "1", "-ActionWhenThresholdReached", "Alert")
	in.start()
	c := dial(t, in.addrs["submission"])
	c.login(in.tlsConfig(), sean, "Sean-Pass-1")
	for i, subject := range []string{"first", "second", "third"} {
		if r := c.send(sean, []string{kim}, message(sean, kim, subject)); !strings.HasPrefix(r, "250 ") {
			t.Fatalf("message %d: %q", i+1, r)
		}
	}
	id := fieldValue(in.shell("Get-MessageTrace -RecipientAddress "+kim+" | Where-Object {$_.Subject -eq 'second'} | Format-List MessageTraceId"), "MessageTraceId")
	detail := in.shell("Get-MessageTraceDetail -MessageTraceId " + id + " -RecipientAddress " + kim + " | Format-List Event,Detail")
	if !strings.Contains(detail, "Outbound spam policy: RecipientLimitInternalPerHour of 1 exceeded (2 recipients); ActionWhenThresholdReached Alert") {
		t.Fatalf("the alert is not in the trace of the crossing message:\n%s", detail)
	}
	if !strings.Contains(in.log.String(), "outbound spam policy threshold reached") {
		t.Fatalf("no alert in the server log")
	}
	if list := in.shell("Get-BlockedSenderAddress"); strings.Contains(list, sean) {
		t.Fatalf("Alert restricted the sender:\n%s", list)
	}
}

// An address on the IP Block List of the organization a recipient belongs
// to gets Exchange's 5.7.606 at RCPT TO; the IP Allow List wins over it;
// entries are checked against Exchange's limits.
func TestConnectionFilterPolicy(t *testing.T) {
	in := newInstance(t)
	sean := in.mailbox("sean", "Sean-Pass-1")
	in.admin("Set-HostedConnectionFilterPolicy", "-Identity", "Default", "-IPBlockList", "127.0.0.7,127.0.0.20-127.0.0.29")
	got := in.shell("Get-HostedConnectionFilterPolicy | Format-List IPAllowList,IPBlockList")
	if !strings.Contains(got, "127.0.0.7") || !strings.Contains(got, "127.0.0.20-127.0.0.29") {
		t.Fatalf("Get-HostedConnectionFilterPolicy:\n%s", got)
	}
	for entry, why := range map[string]string{"10.0.0.0/8": "/24 through /32", "10.0.0.1-10.0.2.1": "at most 256", "contoso.com": "single IP address"} {
		if out, err := in.try("Set-HostedConnectionFilterPolicy", "-IPBlockList", entry); err == nil || !strings.Contains(out, why) {
			t.Fatalf("-IPBlockList %s: %v\n%s", entry, err, out)
		}
	}
	// Test-SmtpSubmission says what the server says, and the fix.
	diag := in.shell("Test-SmtpSubmission -Identity scanner@contoso.com -Port 25 -UseTls $false -ClientIP 127.0.0.7 -Recipient " + sean + " | Format-List")
	if v := verdictOf(diag); v != "550 5.7.606 Access denied, banned sending IP [127.0.0.7]" || !strings.Contains(diag, "IPBlockList @{Remove=") {
		t.Fatalf("Test-SmtpSubmission:\n%s", diag)
	}
	in.start()
	mx := in.addrs["mx"]
	for _, src := range []string{"127.0.0.7", "127.0.0.25"} {
		if r := directSend(t, src, mx, "scanner@contoso.com", sean); r != "550 5.7.606 Access denied, banned sending IP ["+src+"]" {
			t.Fatalf("from %s: %q", src, r)
		}
	}
	if r := directSend(t, "127.0.0.8", mx, "scanner@contoso.com", sean); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("from an unlisted address: %q", r)
	}
	// The allow list takes precedence over the block list.
	in.admin("Set-HostedConnectionFilterPolicy", "-IPAllowList", "@{Add='127.0.0.7'}")
	if r := directSend(t, "127.0.0.7", mx, "scanner@contoso.com", sean); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("allow-listed and block-listed: %q", r)
	}
	// $null empties a list.
	in.admin("Set-HostedConnectionFilterPolicy", "-IPBlockList", "$null")
	if r := directSend(t, "127.0.0.25", mx, "scanner@contoso.com", sean); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("after emptying the block list: %q", r)
	}
}

// Direct Send and connector relay are throttled per source address with
// the limits of [throttle]; each source has its own share, and a source on
// the IP Allow List is not throttled.
func TestSourceThrottling(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "postern.toml")
	if err := os.WriteFile(conf, []byte("[throttle]\ndirect_send_per_hour = 2\nrelay_per_hour = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := newInstance(t, "--config", conf)
	sean := in.mailbox("sean", "Sean-Pass-1")
	in.admin("New-InboundConnector", "-Name", "Copiers", "-ConnectorType", "OnPremises", "-SenderDomains", "*",
		"-SenderIPAddresses", "127.0.0.12", "-RequireTls", "$false")
	in.admin("Set-HostedConnectionFilterPolicy", "-IPAllowList", "127.0.0.11")
	in.start()
	mx := in.addrs["mx"]
	for i := range 2 {
		if r := directSend(t, "127.0.0.9", mx, "scanner@contoso.com", sean); !strings.HasPrefix(r, "250 ") {
			t.Fatalf("Direct Send %d: %q", i+1, r)
		}
	}
	if r := directSend(t, "127.0.0.9", mx, "scanner@contoso.com", sean); r != "451 4.7.500 Access denied, please try again later" {
		t.Fatalf("Direct Send over the hour's share: %q", r)
	}
	if r := directSend(t, "127.0.0.10", mx, "scanner@contoso.com", sean); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("another source: %q", r)
	}
	for i := range 3 {
		if r := directSend(t, "127.0.0.11", mx, "scanner@contoso.com", sean); !strings.HasPrefix(r, "250 ") {
			t.Fatalf("allow-listed source, message %d: %q", i+1, r)
		}
	}
	// Ordinary inbound mail (a sender outside the accepted domains) is
	// not Direct Send and not counted.
	if r := directSend(t, "127.0.0.9", mx, "news@example.org", sean); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("ordinary inbound mail: %q", r)
	}
	if r := directSend(t, "127.0.0.12", mx, "app@contoso.com", "partner@example.org"); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("relay: %q", r)
	}
	if r := directSend(t, "127.0.0.12", mx, "app@contoso.com", "partner@example.org"); r != "451 4.7.500 Access denied, please try again later" {
		t.Fatalf("relay over the hour's share: %q", r)
	}
}

// New-Mailbox and Set-Mailbox -Password enforce Entra ID's password policy,
// with an error naming the mailbox and the rule.
func TestPasswordPolicy(t *testing.T) {
	in := newInstance(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"New-Mailbox", "-Name", "weak", "-PrimarySmtpAddress", "weak@contoso.com", "-Password", "Ab1!"},
			"Mailbox 'weak': the password does not meet the password policy: it must have at least 8 characters."},
		{[]string{"New-Mailbox", "-Name", "weak", "-PrimarySmtpAddress", "weak@contoso.com", "-Password", "alllowercase"},
			"Mailbox 'weak': the password does not meet the password policy: it must contain characters of at least 3 of these 4 kinds: upper case letters, lower case letters, digits and symbols."},
	} {
		out, err := in.try(tc.args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Fatalf("%v: %v\n%s\nwant %q", tc.args, err, out, tc.want)
		}
	}
	if out, _ := in.try("Get-Mailbox", "-Identity", "weak@contoso.com"); !strings.Contains(out, "couldn't be found") {
		t.Fatalf("a mailbox was made with a refused password:\n%s", out)
	}
	sean := in.mailbox("sean", "Sean-Pass-1")
	in.start()
	if out, err := in.try("Set-Mailbox", "-Identity", sean, "-Password", "password"); err == nil || !strings.Contains(out, "Mailbox 'sean': the password does not meet the password policy") {
		t.Fatalf("Set-Mailbox with a weak password: %v\n%s", err, out)
	}
	// The old password still works; the refused one was never set.
	c := dial(t, in.addrs["submission"])
	if r := c.login(in.tlsConfig(), sean, "Sean-Pass-1"); !strings.HasPrefix(r, "235 ") {
		t.Fatalf("sign-in with the unchanged password: %q", r)
	}
}
