package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestDuplicateRecipientsOnce: the same recipient named twice in one
// transaction, in another case or by another of its addresses, gets one
// copy — anonymous and authenticated alike.
func TestDuplicateRecipientsOnce(t *testing.T) {
	in := newInstance(t)
	sean := in.mailbox("sean", "Sean-Pass-1")
	in.admin("Set-Mailbox", "-Identity", sean, "-EmailAddresses", "@{Add='sean.k@contoso.com'}")
	kim := in.mailbox("kim", "Kim-Pass-12")
	in.start()

	c := dial(t, in.addrs["mx"])
	c.expect("EHLO device", "250")
	to := []string{"sean@contoso.com", "SEAN@Contoso.COM", "sean.k@contoso.com", "kim@contoso.com", "Kim@contoso.com"}
	if got := c.send("x@outside.example", to, message("x@outside.example", sean, "dup anonymous")); !strings.HasPrefix(got, "250 ") {
		t.Fatal(got)
	}
	a := dial(t, in.addrs["submission"])
	if got := a.login(in.tlsConfig(), kim, "Kim-Pass-12"); !strings.HasPrefix(got, "235") {
		t.Fatal(got)
	}
	if got := a.send(kim, []string{"Sean@contoso.com", "sean@CONTOSO.com"}, message(kim, sean, "dup authenticated")); !strings.HasPrefix(got, "250 ") {
		t.Fatal(got)
	}
	if n := in.folderCount(sean, "Inbox"); n != 2 {
		t.Errorf("sean's Inbox has %d messages, want 2 (one per transaction)", n)
	}
	if n := in.folderCount(kim, "Inbox"); n != 1 {
		t.Errorf("kim's Inbox has %d messages, want 1", n)
	}
	trace := in.shell("Get-MessageTrace -SenderAddress x@outside.example | Format-Table RecipientAddress")
	if n := strings.Count(strings.ToLower(trace), "sean"); n != 1 {
		t.Errorf("the trace lists sean %d times:\n%s", n, trace)
	}
}

// TestMaxRecipientEnvelopeLimit: anonymous mail to an organization with
// more recipients than its Set-TransportConfig -MaxRecipientEnvelopeLimit
// is refused whole at end of DATA (550 5.5.3 RESOLVER.ADR.RecipLimit), as
// Exchange does; an authenticated sender is bound by its own
// RecipientLimits instead.
func TestMaxRecipientEnvelopeLimit(t *testing.T) {
	in := newInstance(t)
	var to []string
	for i := range 4 {
		to = append(to, in.mailbox(fmt.Sprintf("user%d", i), "User-Pass-1"))
	}
	if got := in.shell("Get-TransportConfig | Format-List MaxRecipientEnvelopeLimit"); !strings.Contains(got, ": Unlimited") {
		t.Errorf("default:\n%s", got)
	}
	in.admin("Set-TransportConfig", "-MaxRecipientEnvelopeLimit", "3")
	if got := in.shell("Get-TransportConfig | Format-List MaxRecipientEnvelopeLimit"); !strings.Contains(got, ": 3") {
		t.Errorf("after Set-TransportConfig:\n%s", got)
	}
	if out, err := in.try("Set-TransportConfig", "-MaxRecipientEnvelopeLimit", "1001"); err == nil {
		t.Errorf("a limit above 1000 was accepted: %s", out)
	}
	in.start()

	c := dial(t, in.addrs["mx"])
	c.expect("EHLO device", "250")
	c.expect("MAIL FROM:<x@outside.example>", "250")
	for _, rc := range to[:3] {
		c.expect("RCPT TO:<"+rc+">", "250")
	}
	c.expect("RCPT TO:<"+to[3]+">", "250 2.1.5 Recipient OK")
	c.expect("DATA", "354")
	c.expect("Subject: limited\r\n\r\nx\r\n.", "550 5.5.3 RESOLVER.ADR.RecipLimit; too many recipients")
	for _, rc := range to {
		if n := in.folderCount(rc, "Inbox"); n != 0 {
			t.Errorf("%s got %d messages of a refused message", rc, n)
		}
	}
	c.expect("MAIL FROM:<x@outside.example>", "250")
	for _, rc := range to[:3] {
		c.expect("RCPT TO:<"+rc+">", "250")
	}
	c.expect("DATA", "354")
	c.expect("Subject: limited\r\n\r\nx\r\n.", "250 ")

	a := dial(t, in.addrs["submission"])
	a.login(in.tlsConfig(), to[0], "User-Pass-1")
	if got := a.send(to[0], to, message(to[0], to[1], "authenticated")); !strings.HasPrefix(got, "250 ") {
		t.Errorf("authenticated sender to 4: %q", got)
	}
}

// TestAnonymousMaxReceiveSize: anonymous mail to a mailbox is limited by
// its MaxReceiveSize, at RCPT TO when MAIL FROM declared SIZE= and at end
// of DATA by the real size, with 552 5.3.4; the refusal is in the
// connection log, and accepted messages are not.
func TestAnonymousMaxReceiveSize(t *testing.T) {
	in := newInstance(t)
	sean := in.mailbox("sean", "Sean-Pass-1")
	kim := in.mailbox("kim", "Kim-Pass-12")
	in.admin("Set-Mailbox", "-Identity", sean, "-MaxReceiveSize", "10KB")
	in.start()

	c := dial(t, in.addrs["mx"])
	c.expect("EHLO device", "250")
	c.expect("MAIL FROM:<x@outside.example> SIZE=20000", "250")
	c.expect("RCPT TO:<"+sean+">", "552 5.3.4 ")
	c.expect("RCPT TO:<"+kim+">", "250")
	c.expect("RSET", "250")

	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 70)+"\r\n", 300)
	if got := c.send("x@outside.example", []string{sean}, big); !strings.HasPrefix(got, "552 5.3.4 ") {
		t.Errorf("oversized message at end of DATA: %q", got)
	}
	if got := c.send("x@outside.example", []string{kim}, big); !strings.HasPrefix(got, "250 ") {
		t.Errorf("the same message to a mailbox with the default limit: %q", got)
	}
	if got := c.send("x@outside.example", []string{sean}, message("x@outside.example", sean, "small")); !strings.HasPrefix(got, "250 ") {
		t.Errorf("a small message: %q", got)
	}

	var log string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		log = in.shell("Get-ConnectionLog | Format-List Event,Reply")
		if strings.Contains(log, "DataRejected") && strings.Contains(log, "RcptRejected") {
			break
		}
	}
	if !strings.Contains(log, "DataRejected") || !strings.Contains(log, "552 5.3.4") {
		t.Fatalf("the refusals are not in the connection log:\n%s", log)
	}
	if strings.Contains(log, "250 ") {
		t.Errorf("the connection log lists accepted messages:\n%s", log)
	}
	if n := strings.Count(log, "DataRejected"); n != 1 {
		t.Errorf("%d DataRejected entries, want 1 (the oversized message):\n%s", n, log)
	}
}

// TestPostmasterAndIDNA: RCPT TO:<postmaster> without a domain reaches the
// mailbox holding postmaster@ the default accepted domain (RFC 5321
// section 4.5.1), and a recipient domain in U-labels routes as its A-label
// form.
func TestPostmasterAndIDNA(t *testing.T) {
	in := newInstance(t)
	sean := in.mailbox("sean", "Sean-Pass-1")
	in.admin("Set-Mailbox", "-Identity", sean, "-EmailAddresses", "@{Add='postmaster@contoso.com'}")
	in.admin("New-AcceptedDomain", "-Name", "bücher", "-DomainName", "bücher.example")
	if got := in.shell("Get-AcceptedDomain | Format-Table DomainName"); !strings.Contains(got, "xn--bcher-kva.example") {
		t.Fatalf("the domain is not stored in its A-label form:\n%s", got)
	}
	in.admin("New-Mailbox", "-Name", "jorg", "-PrimarySmtpAddress", "jorg@xn--bcher-kva.example", "-Password", "Jorg-Pass-1")
	in.start()

	c := dial(t, in.addrs["mx"])
	c.expect("EHLO device", "250")
	if got := c.send("x@outside.example", []string{"jorg@bücher.example"}, message("x@outside.example", "jorg@xn--bcher-kva.example", "idna")); !strings.HasPrefix(got, "250 ") {
		t.Errorf("U-label recipient: %q", got)
	}
	if n := in.folderCount("jorg@xn--bcher-kva.example", "Inbox"); n != 1 {
		t.Errorf("jorg's Inbox: %d", n)
	}
	if got := c.send("x@outside.example", []string{"someone@bücher.example"}, message("x@outside.example", "someone@bücher.example", "idna unknown")); got != "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)" {
		t.Errorf("unknown U-label recipient in an Authoritative domain: %q", got)
	}

	c.expect("MAIL FROM:<x@outside.example>", "250")
	if got := c.do("RCPT TO:<postmaster>"); !strings.HasPrefix(got, "250") {
		t.Fatalf("RCPT TO:<postmaster>: %q", got)
	}
	c.expect("DATA", "354")
	c.expect("Subject: to the postmaster\r\n\r\nx\r\n.", "250 ")
	if n := in.folderCount(sean, "Inbox"); n != 1 {
		t.Errorf("the postmaster mailbox has %d messages", n)
	}
}
