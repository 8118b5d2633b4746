package e2e

import (
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/testsmtp"
)

// TestMessageTrace: what happened to a message, per recipient, with the
// detail an admin needs (client, TLS, authentication, the remote reply),
// and the refusals before acceptance in the connection log.
func TestMessageTrace(t *testing.T) {
	o := newOutside(t, testsmtp.Config{Reply: func(s testsmtp.Stage, arg string) string {
		if s == testsmtp.Rcpt && strings.HasPrefix(arg, "gone@") {
			return "550 5.1.1 gone@fabrikam.example: recipient rejected"
		}
		return ""
	}})
	in := newInstance(t, o.flags(t)...)
	scanner := in.mailbox("scanner", "Scan-Pass-1")
	in.mailbox("sean", "Sean-Pass-1")
	in.start()

	c := dial(t, in.addrs["submission"])
	c.login(in.tlsConfig(), scanner, "Scan-Pass-1")
	if got := c.send(scanner, []string{"bob@fabrikam.example", "gone@fabrikam.example", "sean@contoso.com"},
		message(scanner, "bob@fabrikam.example", "Traced scan")); !strings.HasPrefix(got, "250 ") {
		t.Fatal(got)
	}
	if _, err := o.mx.WaitMessages(1, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	// Refusals: a wrong password from another address, and relay from an
	// anonymous client.
	bad := dialFrom(t, "127.0.0.3", in.addrs["submission"])
	bad.login(in.tlsConfig(), scanner, "wrong")
	mx := dial(t, in.addrs["mx"])
	mx.expect("EHLO printer", "250")
	mx.expect("MAIL FROM:<printer@fabrikam.example>", "250")
	mx.expect("RCPT TO:<someone@tailspin.example>", "550 5.7.64")

	var trace string
	deadline := time.Now().Add(15 * time.Second)
	for {
		trace = in.shell("Get-MessageTrace -SenderAddress scanner@contoso.com | Format-Table RecipientAddress,Status,Subject")
		if strings.Contains(trace, "Failed") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, want := range []string{"bob@fabrikam.example", "Delivered", "gone@fabrikam.example", "Failed", "sean@contoso.com", "Traced scan"} {
		if !strings.Contains(trace, want) {
			t.Errorf("Get-MessageTrace lacks %q:\n%s", want, trace)
		}
	}
	for _, l := range lines(trace) {
		if strings.HasPrefix(l, "gone@") && !strings.Contains(l, "Failed") || strings.HasPrefix(l, "bob@") && !strings.Contains(l, "Delivered") {
			t.Errorf("wrong status: %q", l)
		}
	}
	if got := in.shell("Get-MessageTrace -RecipientAddress '*@fabrikam.example' -Status Failed | Format-Table RecipientAddress"); !strings.Contains(got, "gone@") || strings.Contains(got, "bob@") {
		t.Errorf("filtered trace:\n%s", got)
	}
	id := fieldValue(in.shell("Get-MessageTrace -RecipientAddress gone@fabrikam.example | Format-List MessageTraceId"), "MessageTraceId")
	detail := in.shell("Get-MessageTraceDetail -MessageTraceId " + id + " -RecipientAddress gone@fabrikam.example | Format-List Event,Detail")
	for _, want := range []string{"RECEIVE", "authenticated as scanner@contoso.com (Basic)", "TLS 1.3", "SUBMIT", "FAIL", "550 5.1.1", "DSN"} {
		if !strings.Contains(detail, want) {
			t.Errorf("Get-MessageTraceDetail lacks %q:\n%s", want, detail)
		}
	}
	if strings.Contains(detail, "SEND") && strings.Contains(detail, "bob@") {
		t.Errorf("the detail for gone@ shows bob's delivery:\n%s", detail)
	}

	var log string
	for deadline = time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		log = in.shell("Get-ConnectionLog | Format-List *")
		if strings.Contains(log, "5.7.64") && strings.Contains(log, "AuthFailed") {
			break
		}
	}
	for _, want := range []string{"AuthFailed", "127.0.0.3", scanner, "535 5.7.3 Authentication unsuccessful", "RcptRejected",
		"someone@tailspin.example", "550 5.7.64 TenantAttribution; Relay Access Denied"} {
		if !strings.Contains(log, want) {
			t.Errorf("Get-ConnectionLog lacks %q:\n%s", want, log)
		}
	}
	if out, err := in.try("Get-MessageTrace", "-StartDate", "next tuesday"); err == nil || !strings.Contains(out, "StartDate") {
		t.Errorf("a bad date: %v %s", err, out)
	}
}
