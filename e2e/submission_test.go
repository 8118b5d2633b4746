package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// The scanner story from Microsoft's "set up a multifunction device" guide:
// STARTTLS on 587, AUTH as its own mailbox, From = that mailbox.
func TestScannerSubmission(t *testing.T) {
	in := newInstance(t)
	scanner := in.mailbox("scanner", "Scan-Pass-1")
	in.mailbox("sean", "Sean-Pass-1")
	in.start()

	c := dial(t, in.addrs["submission"])
	ehlo := c.do("EHLO scanner.contoso.com")
	for _, want := range []string{"STARTTLS", "SIZE 157286400", "PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"} {
		if !strings.Contains(ehlo, want) {
			t.Errorf("EHLO before TLS lacks %s:\n%s", want, ehlo)
		}
	}
	if strings.Contains(ehlo, "AUTH") {
		t.Errorf("AUTH must not be offered before TLS:\n%s", ehlo)
	}
	c.expect("MAIL FROM:<scanner@contoso.com>", "530 5.7.57 Client not authenticated to send mail.")
	c.startTLS(in.tlsConfig())
	ehlo = c.expect("EHLO scanner.contoso.com", "250")
	if !strings.Contains(ehlo, "AUTH LOGIN PLAIN") || strings.Contains(ehlo, "STARTTLS") {
		t.Errorf("EHLO after TLS:\n%s", ehlo)
	}
	c.expect("AUTH LOGIN", "334 VXNlcm5hbWU6")
	c.expect("c2Nhbm5lckBjb250b3NvLmNvbQ==", "334 UGFzc3dvcmQ6")        // scanner@contoso.com
	c.expect("U2Nhbi1QYXNzLTE=", "235 2.7.0 Authentication successful") // Scan-Pass-1
	got := c.send(scanner, []string{"sean@contoso.com"}, message(scanner, "sean@contoso.com", "Scan 1"))
	if !strings.HasPrefix(got, "250 2.0.0 OK <") || !strings.Contains(got, "[Hostname=mail.contoso.com]") {
		t.Fatalf("end of DATA: %q", got)
	}
	c.expect("QUIT", "221")

	if n := in.folderCount("sean@contoso.com", "Inbox"); n != 1 {
		t.Errorf("sean's Inbox has %d items, want 1", n)
	}
	if n := in.folderCount("scanner@contoso.com", "Sent Items"); n != 1 {
		t.Errorf("scanner's Sent Items has %d items, want 1", n)
	}
}

// TestAuthDecisionChain runs Exchange's switches through the real server:
// each row changes settings with the documented cmdlets, then signs in.
func TestAuthDecisionChain(t *testing.T) {
	in := newInstance(t)
	in.admin("New-Mailbox", "-Name", "sean", "-PrimarySmtpAddress", "sean@contoso.com", "-Password", "Sean-Pass-1")
	in.admin("New-Mailbox", "-Name", "info", "-PrimarySmtpAddress", "info@contoso.com", "-Shared")
	in.admin("New-AuthenticationPolicy", "-Name", "Block Basic Auth")
	in.admin("New-AuthenticationPolicy", "-Name", "Allow SMTP", "-AllowBasicAuthSmtp")
	in.start()

	const (
		tenantOff   = "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."
		mailboxOff  = "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information."
		secDefaults = "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy. Contact your administrator."
		basicOff    = "535 5.7.139 Authentication unsuccessful, basic authentication is disabled."
		badCreds    = "535 5.7.3 Authentication unsuccessful"
		ok          = "235 2.7.0 Authentication successful"
	)
	steps := []struct {
		name     string
		commands []string
		user     string
		password string
		want     string
	}{
		{name: "new organization: SMTP AUTH off", user: "sean@contoso.com", password: "Sean-Pass-1", want: tenantOff},
		{name: "wrong password says nothing more", user: "sean@contoso.com", password: "nope", want: badCreds},
		{name: "unknown user", user: "ghost@contoso.com", password: "Sean-Pass-1", want: badCreds},
		{name: "mailbox $false overrides the tenant", commands: []string{"Set-CASMailbox -Identity sean@contoso.com -SmtpClientAuthenticationDisabled $false"},
			user: "sean@contoso.com", password: "Sean-Pass-1", want: ok},
		{name: "mailbox $true", commands: []string{"Set-TransportConfig -SmtpClientAuthenticationDisabled $false", "Set-CASMailbox -Identity sean@contoso.com -SmtpClientAuthenticationDisabled $true"},
			user: "sean@contoso.com", password: "Sean-Pass-1", want: mailboxOff},
		{name: "mailbox $null inherits the tenant (on)", commands: []string{"Set-CASMailbox -Identity sean@contoso.com -SmtpClientAuthenticationDisabled $null"},
			user: "sean@contoso.com", password: "Sean-Pass-1", want: ok},
		{name: "security defaults", commands: []string{"Set-OrganizationConfig -SecurityDefaultsEnabled $true"},
			user: "sean@contoso.com", password: "Sean-Pass-1", want: secDefaults},
		{name: "org default policy blocks Basic", commands: []string{"Set-OrganizationConfig -SecurityDefaultsEnabled $false", "Set-OrganizationConfig -DefaultAuthenticationPolicy 'Block Basic Auth'"},
			user: "sean@contoso.com", password: "Sean-Pass-1", want: basicOff},
		{name: "user's policy wins over the default", commands: []string{"Set-User -Identity sean@contoso.com -AuthenticationPolicy 'Allow SMTP'"},
			user: "sean@contoso.com", password: "Sean-Pass-1", want: ok},
		{name: "policy switch turned off", commands: []string{"Set-AuthenticationPolicy -Identity 'Allow SMTP' -AllowBasicAuthSmtp:$false"},
			user: "sean@contoso.com", password: "Sean-Pass-1", want: basicOff},
		{name: "user policy removed, default applies", commands: []string{"Set-User -Identity sean@contoso.com -AuthenticationPolicy $null", "Set-OrganizationConfig -DefaultAuthenticationPolicy $null"},
			user: "sean@contoso.com", password: "Sean-Pass-1", want: ok},
		{name: "shared mailbox cannot sign in", user: "info@contoso.com", password: "", want: badCreds},
		{name: "password change takes effect", commands: []string{"Set-Mailbox -Identity sean -Password New-Pass-2"},
			user: "sean@contoso.com", password: "Sean-Pass-1", want: badCreds},
		{name: "new password works", user: "sean@contoso.com", password: "New-Pass-2", want: ok},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if len(st.commands) > 0 {
				in.shell(strings.Join(st.commands, "\n"))
			}
			c := dial(t, in.addrs["submission"])
			if got := c.login(in.tlsConfig(), st.user, st.password); !strings.HasPrefix(got, st.want) {
				t.Fatalf("AUTH as %s:\n got: %q\nwant: %q", st.user, got, st.want)
			}
		})
	}
}

func TestSendAsAndRecipients(t *testing.T) {
	in := newInstance(t)
	scanner := in.mailbox("scanner", "Scan-Pass-1")
	in.mailbox("sean", "Sean-Pass-1")
	in.admin("New-Mailbox", "-Name", "info", "-PrimarySmtpAddress", "info@contoso.com", "-Shared")
	in.start()

	c := dial(t, in.addrs["submission"])
	c.login(in.tlsConfig(), scanner, "Scan-Pass-1")

	// Exchange accepts MAIL FROM and refuses after end of DATA.
	got := c.send("info@contoso.com", []string{"sean@contoso.com"}, message("info@contoso.com", "sean@contoso.com", "as info"))
	want := "554 5.2.252 SendAsDenied; scanner@contoso.com not allowed to send as info@contoso.com; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied"
	if !strings.HasPrefix(got, want) {
		t.Fatalf("send as info without grant:\n got %q\nwant %q", got, want)
	}
	// The header is checked too, not only the envelope.
	got = c.send(scanner, []string{"sean@contoso.com"}, message("sean@contoso.com", "sean@contoso.com", "forged From"))
	if !strings.HasPrefix(got, "554 5.2.252 SendAsDenied; scanner@contoso.com not allowed to send as sean@contoso.com") {
		t.Fatalf("forged From: %q", got)
	}

	in.admin("Add-RecipientPermission", "-Identity", "info@contoso.com", "-AccessRights", "SendAs", "-Trustee", scanner)
	if out := in.shell("Get-RecipientPermission -Identity info@contoso.com | Format-List Trustee,AccessRights"); !strings.Contains(out, "scanner@contoso.com") || !strings.Contains(out, "SendAs") {
		t.Errorf("Get-RecipientPermission:\n%s", out)
	}
	got = c.send("info@contoso.com", []string{"sean@contoso.com"}, message("info@contoso.com", "sean@contoso.com", "as info"))
	if !strings.HasPrefix(got, "250 2.0.0 OK") {
		t.Fatalf("send as info with grant: %q", got)
	}

	// Unknown recipient in the Authoritative domain: refused at RCPT.
	c.expect("MAIL FROM:<scanner@contoso.com>", "250")
	c.expect("RCPT TO:<nobody@contoso.com>", "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient nobody@contoso.com not found by SMTP address lookup")
	c.expect("RSET", "250")

	// Send on Behalf: Sender is the login, From the granting mailbox.
	in.admin("Set-Mailbox", "-Identity", "sean", "-GrantSendOnBehalfTo", scanner)
	body := "From: sean@contoso.com\r\nSender: scanner@contoso.com\r\nTo: info@contoso.com\r\nSubject: on behalf\r\n\r\nx\r\n"
	if got := c.send(scanner, []string{"info@contoso.com"}, body); !strings.HasPrefix(got, "250 2.0.0 OK") {
		t.Fatalf("send on behalf: %q", got)
	}
	in.admin("Remove-RecipientPermission", "-Identity", "info@contoso.com", "-AccessRights", "SendAs", "-Trustee", scanner)
	got = c.send("info@contoso.com", []string{"sean@contoso.com"}, message("info@contoso.com", "sean@contoso.com", "revoked"))
	if !strings.HasPrefix(got, "554 5.2.252") {
		t.Fatalf("after Remove-RecipientPermission: %q", got)
	}

	if n := in.folderCount("sean@contoso.com", "Inbox"); n != 1 {
		t.Errorf("sean's Inbox: %d, want 1", n)
	}
	if n := in.folderCount("info@contoso.com", "Inbox"); n != 1 {
		t.Errorf("info's Inbox: %d, want 1", n)
	}
	if n := in.folderCount(scanner, "Sent Items"); n != 2 {
		t.Errorf("scanner's Sent Items: %d, want 2", n)
	}
}

func TestLimits(t *testing.T) {
	in := newInstance(t)
	sean := in.mailbox("sean", "Sean-Pass-1")
	in.admin("Set-Mailbox", "-Identity", "sean", "-RecipientLimits", "2", "-MaxSendSize", "1KB")
	in.start()

	c := dial(t, in.addrs["submission"])
	c.login(in.tlsConfig(), sean, "Sean-Pass-1")
	c.expect("MAIL FROM:<sean@contoso.com>", "250")
	c.expect("RCPT TO:<a@fabrikam.example>", "250")
	c.expect("RCPT TO:<b@fabrikam.example>", "250")
	// Over RecipientLimits the whole message is refused, as Exchange does.
	c.expect("RCPT TO:<c@fabrikam.example>", "250 2.1.5 Recipient OK")
	c.expect("DATA", "354")
	c.expect("From: sean@contoso.com\r\n\r\nx\r\n.", "550 5.5.3 RESOLVER.ADR.RecipLimit; too many recipients")
	c.expect("RSET", "250 2.0.0 Resetting")
	c.expect("MAIL FROM:<sean@contoso.com> SIZE=5000", "552 5.3.4 Message size exceeds fixed maximum message size of 1024 bytes (MaxSendSize 1 KB)")
	got := c.send(sean, []string{"a@fabrikam.example"}, message(sean, "a@fabrikam.example", "big")+strings.Repeat("0123456789\r\n", 100))
	if !strings.HasPrefix(got, "552 5.3.4") {
		t.Fatalf("oversized DATA: %q", got)
	}
}

// TestConcurrentConnections: a mailbox may have 3 authenticated connections
// submitting; the 4th gets 432 4.3.2 at end of DATA until one closes.
func TestConcurrentConnections(t *testing.T) {
	in := newInstance(t)
	sean := in.mailbox("sean", "Sean-Pass-1")
	in.start()

	var clients []*smtpClient
	for range 4 {
		c := dial(t, in.addrs["submission"])
		if got := c.login(in.tlsConfig(), sean, "Sean-Pass-1"); !strings.HasPrefix(got, "235") {
			t.Fatal(got)
		}
		clients = append(clients, c)
	}
	got := clients[3].send(sean, []string{sean}, message(sean, sean, "fourth"))
	if got != "432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more information." {
		t.Fatalf("4th connection: %q", got)
	}
	for _, c := range clients[:3] {
		if got := c.send(sean, []string{sean}, message(sean, sean, "ok")); !strings.HasPrefix(got, "250") {
			t.Fatalf("one of the first three: %q", got)
		}
	}
	clients[0].expect("QUIT", "221")
	clients[0].conn.Close()
	var got2 string
	for range 50 { // the server notices the close asynchronously
		if got2 = clients[3].send(sean, []string{sean}, message(sean, sean, "retry")); strings.HasPrefix(got2, "250") {
			break
		}
	}
	if !strings.HasPrefix(got2, "250") {
		t.Fatalf("after a slot freed: %q", got2)
	}
}

// TestPacingAndQuota: 30 messages a minute go straight through, more are
// accepted and held; 10,000 recipients a day, then 554 5.2.0.
func TestPacingAndQuota(t *testing.T) {
	in := newInstance(t)
	sean := in.mailbox("sean", "Sean-Pass-1")
	in.mailbox("chris", "Chris-Pass-1")
	in.admin("Set-Mailbox", "-Identity", "sean", "-RecipientLimits", "1000")
	in.start()

	c := dial(t, in.addrs["submission"])
	c.login(in.tlsConfig(), sean, "Sean-Pass-1")
	for i := range 35 {
		if got := c.send(sean, []string{"chris@contoso.com"}, message(sean, "chris@contoso.com", fmt.Sprint("n", i))); !strings.HasPrefix(got, "250") {
			t.Fatalf("message %d: %q", i, got)
		}
	}
	if n := in.folderCount("chris@contoso.com", "Inbox"); n != 30 {
		t.Errorf("chris's Inbox after 35 quick messages: %d, want 30 (the rest paced)", n)
	}
	queue := in.shell("Get-QueueMessage | Format-Table Recipient,Status")
	if got := strings.Count(queue, "chris@contoso.com"); got != 5 {
		t.Errorf("queue should hold the 5 paced messages:\n%s", queue)
	}

	// 35 recipients used; 9 messages of 1,000 outside recipients reach 9,035,
	// one more of 966 reaches exactly 10,000, and then one more recipient is refused.
	rcpts := func(n, offset int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("user%d@fabrikam.example", offset+i)
		}
		return out
	}
	for i := range 9 {
		if got := c.send(sean, rcpts(1000, i*1000), message(sean, "list@fabrikam.example", "bulk")); !strings.HasPrefix(got, "250") {
			t.Fatalf("bulk %d: %q", i, got)
		}
	}
	if got := c.send(sean, rcpts(965, 9000), message(sean, "list@fabrikam.example", "bulk")); !strings.HasPrefix(got, "250") {
		t.Fatalf("up to the limit: %q", got)
	}
	got := c.send(sean, rcpts(1, 20000), message(sean, "x@fabrikam.example", "one too many"))
	if !strings.HasPrefix(got, "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException") {
		t.Fatalf("over 10,000 recipients: %q", got)
	}
	// The count survives a restart.
	in.stop()
	in.start()
	c = dial(t, in.addrs["submission"])
	c.login(in.tlsConfig(), sean, "Sean-Pass-1")
	if got := c.send(sean, rcpts(1, 20000), message(sean, "x@fabrikam.example", "after restart")); !strings.HasPrefix(got, "554 5.2.0") {
		t.Fatalf("quota after restart: %q", got)
	}
}

func TestExternalMailIsQueuedDurably(t *testing.T) {
	in := newInstance(t)
	sean := in.mailbox("sean", "Sean-Pass-1")
	in.start()
	c := dial(t, in.addrs["submission"])
	c.login(in.tlsConfig(), sean, "Sean-Pass-1")
	if got := c.send(sean, []string{"bob@fabrikam.example", "carol@fabrikam.example"}, message(sean, "bob@fabrikam.example", "quarterly report")); !strings.HasPrefix(got, "250") {
		t.Fatal(got)
	}
	in.stop()
	in.start()
	out := in.shell("Get-QueueMessage | Format-Table Recipient,Subject")
	for _, want := range []string{"bob@fabrikam.example", "carol@fabrikam.example", "quarterly report"} {
		if !strings.Contains(out, want) {
			t.Errorf("Get-QueueMessage after restart lacks %q:\n%s", want, out)
		}
	}
	if out := in.shell("Get-Queue | Format-Table NextHopDomain,MessageCount"); !strings.Contains(out, "fabrikam.example") {
		t.Errorf("Get-Queue:\n%s", out)
	}
}

// TestPortRoles: 465 is implicit TLS; 25 takes AUTH after STARTTLS and
// anonymous mail only for local mailboxes.
func TestPortRoles(t *testing.T) {
	in := newInstance(t)
	sean := in.mailbox("sean", "Sean-Pass-1")
	in.start()

	c := dialTLS(t, in.addrs["submissions"], in.tlsConfig())
	c.expect("EHLO app.contoso.com", "250")
	c.expect("AUTH PLAIN AHNlYW5AY29udG9zby5jb20AU2Vhbi1QYXNzLTE=", "235") // sean / Sean-Pass-1
	if got := c.send(sean, []string{sean}, message(sean, sean, "465")); !strings.HasPrefix(got, "250") {
		t.Fatal(got)
	}

	mx := dial(t, in.addrs["mx"])
	mx.expect("EHLO printer", "250")
	mx.expect("MAIL FROM:<printer@contoso.com>", "250")
	mx.expect("RCPT TO:<someone@outside.example>", "550 5.7.64 TenantAttribution; Relay Access Denied")
	// go-smtp drops source routes (RFC 5321 section 4.1.1.3 says to ignore
	// them), so the real destination is what gets refused.
	mx.expect("RCPT TO:<@contoso.com:someone@outside.example>", "550 5.7.64 TenantAttribution; Relay Access Denied")
	mx.expect("RCPT TO:<sean@contoso.com>", "250")
	mx.expect("DATA", "354")
	w := mx.text.DotWriter()
	w.Write([]byte(message("printer@contoso.com", sean, "direct")))
	w.Close()
	if got := mx.read(); !strings.HasPrefix(got, "250 2.0.0 OK") {
		t.Fatal(got)
	}
	mx2 := dial(t, in.addrs["mx"])
	if got := mx2.login(in.tlsConfig(), sean, "Sean-Pass-1"); !strings.HasPrefix(got, "235") {
		t.Fatalf("AUTH on 25 after STARTTLS: %q", got)
	}
	if got := mx2.send(sean, []string{"bob@fabrikam.example"}, message(sean, "bob@fabrikam.example", "via 25")); !strings.HasPrefix(got, "250") {
		t.Fatal(got)
	}
	if n := in.folderCount(sean, "Inbox"); n != 2 {
		t.Errorf("sean's Inbox: %d, want 2", n)
	}
	if n := in.folderCount(sean, "Sent Items"); n != 2 {
		t.Errorf("Sent Items has the authenticated submissions only: %d, want 2", n)
	}
}

// TestPipelining sends a whole transaction in one write.
func TestPipelining(t *testing.T) {
	in := newInstance(t)
	sean := in.mailbox("sean", "Sean-Pass-1")
	in.start()
	c := dial(t, in.addrs["submission"])
	c.login(in.tlsConfig(), sean, "Sean-Pass-1")
	batch := "MAIL FROM:<sean@contoso.com>\r\nRCPT TO:<sean@contoso.com>\r\nRCPT TO:<nobody@contoso.com>\r\nDATA\r\n"
	if _, err := c.conn.Write([]byte(batch)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"250", "250", "550 5.1.10", "354"} {
		if got := c.read(); !strings.HasPrefix(got, want) {
			t.Fatalf("pipelined reply %q, want %s", got, want)
		}
	}
	c.conn.Write([]byte(message(sean, sean, "pipelined") + ".\r\nQUIT\r\n"))
	if got := c.read(); !strings.HasPrefix(got, "250 2.0.0 OK") {
		t.Fatal(got)
	}
	if got := c.read(); !strings.HasPrefix(got, "221") {
		t.Fatal(got)
	}
}

// TestManyConcurrentSenders: many mailboxes at once, every message lands.
func TestManyConcurrentSenders(t *testing.T) {
	in := newInstance(t)
	const senders, each = 8, 10
	var addrs []string
	for i := range senders {
		addrs = append(addrs, in.mailbox(fmt.Sprint("dev", i), "Pass-word-1"))
	}
	in.mailbox("sink", "Sink-Pass-1")
	in.start()
	var wg sync.WaitGroup
	errs := make(chan string, senders*each)
	for _, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial(t, in.addrs["submission"])
			c.login(in.tlsConfig(), a, "Pass-word-1")
			for range each {
				if got := c.send(a, []string{"sink@contoso.com"}, message(a, "sink@contoso.com", "load")); !strings.HasPrefix(got, "250") {
					errs <- got
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := in.folderCount("sink@contoso.com", "Inbox"); n != senders*each {
		t.Errorf("sink Inbox: %d, want %d", n, senders*each)
	}
}
