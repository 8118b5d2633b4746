package e2e

import (
	"strings"
	"testing"
)

// verdictOf reads the Verdict row of Test-SmtpSubmission's output.
func verdictOf(out string) string {
	ls := strings.Split(out, "\n")
	for i, l := range ls {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "Check" && strings.TrimSpace(v) == "Verdict" {
			for _, d := range ls[i+1:] {
				if k, v, ok := strings.Cut(d, ":"); ok && strings.TrimSpace(k) == "Detail" {
					return strings.TrimSpace(v)
				}
			}
		}
	}
	return ""
}

// TestSmtpSubmissionAgreesWithServer runs each device scenario through
// Test-SmtpSubmission and through a real session, and compares the
// diagnosis's verdict with the server's reply.
func TestSmtpSubmissionAgreesWithServer(t *testing.T) {
	in := newInstance(t)
	scanner := in.mailbox("scanner", "Scan-Pass-1")
	in.mailbox("sean", "Sean-Pass-1")
	in.admin("New-Mailbox", "-Name", "printer", "-PrimarySmtpAddress", "printer@contoso.com", "-Password", "Print-Pass-1")
	in.start()

	// session runs the scenario on the wire and returns the first refusal
	// (or the 250 of the accepted message).
	session := func(user, pass, from, to string, tls bool) string {
		c := dial(t, in.addrs["submission"])
		if tls {
			if got := c.login(in.tlsConfig(), user, pass); !strings.HasPrefix(got, "235") {
				return got
			}
		} else {
			c.expect("EHLO device", "250")
		}
		if got := c.do("MAIL FROM:<" + from + ">"); !strings.HasPrefix(got, "250") {
			return got
		}
		if got := c.do("RCPT TO:<" + to + ">"); !strings.HasPrefix(got, "250") {
			return got
		}
		if got := c.do("DATA"); !strings.HasPrefix(got, "354") {
			return got
		}
		return c.do("From: " + from + "\r\nTo: " + to + "\r\nSubject: t\r\n\r\nx\r\n.")
	}
	for _, tt := range []struct {
		name           string
		user, from, to string
		pass           string
		tls            bool
		args           string
		fixMentions    string
	}{
		{"all good", scanner, scanner, "sean@contoso.com", "Scan-Pass-1", true, "", ""},
		{"SMTP AUTH off for the organization", "printer@contoso.com", "printer@contoso.com", "sean@contoso.com", "Print-Pass-1", true, "",
			"Set-CASMailbox -Identity printer@contoso.com -SmtpClientAuthenticationDisabled $false"},
		{"From another mailbox", scanner, "sean@contoso.com", "sean@contoso.com", "Scan-Pass-1", true, "", "Add-RecipientPermission"},
		{"unknown recipient", scanner, scanner, "nobody@contoso.com", "Scan-Pass-1", true, "", "no mailbox has that address"},
		{"no TLS on 587", scanner, scanner, "sean@contoso.com", "Scan-Pass-1", false, "", "STARTTLS"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wire := session(tt.user, tt.pass, tt.from, tt.to, tt.tls)
			args := []string{"Test-SmtpSubmission", "-Identity", tt.user, "-Port", "587", "-From", tt.from, "-Recipient", tt.to}
			if !tt.tls {
				args = append(args, "-UseTls", "$false")
			}
			out := in.shell(strings.Join(quoteAll(args), " ") + " | Format-List")
			verdict := verdictOf(out)
			if verdict == "" || !strings.HasPrefix(wire, verdict[:11]) {
				t.Fatalf("the server said %q, the diagnosis %q:\n%s", wire, verdict, out)
			}
			if !strings.HasPrefix(wire, "250") && !strings.HasPrefix(wire, "554") && wire != verdict {
				t.Errorf("texts differ: server %q, diagnosis %q", wire, verdict)
			}
			if !strings.Contains(out, tt.fixMentions) {
				t.Errorf("the diagnosis does not say %q:\n%s", tt.fixMentions, out)
			}
		})
	}

	// Anonymous relay from an address without a connector: the server's
	// 5.7.64 and the diagnosis agree, and the fix names the connector.
	c := dial(t, in.addrs["mx"])
	c.expect("EHLO printer", "250")
	c.expect("MAIL FROM:<printer@contoso.com>", "250")
	wire := c.do("RCPT TO:<someone@tailspin.example>")
	out := in.shell("Test-SmtpSubmission -Identity printer@contoso.com -Port 25 -UseTls $false -ClientIP 127.0.0.1 -Recipient someone@tailspin.example | Format-List")
	if v := verdictOf(out); v == "" || !strings.HasPrefix(wire, v[:11]) || !strings.Contains(out, "New-InboundConnector") {
		t.Errorf("anonymous relay: server %q, diagnosis:\n%s", wire, out)
	}

	// Live mode against the running server.
	live := in.shell("Test-SmtpSubmission -Server " + in.addrs["submission"] + " | Format-List")
	for _, want := range []string{"220 mail.contoso.com", "STARTTLS", "TLS 1.3", "LOGIN PLAIN XOAUTH2 OAUTHBEARER"} {
		if !strings.Contains(live, want) {
			t.Errorf("live probe lacks %q:\n%s", want, live)
		}
	}
}

func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if i == 0 || strings.HasPrefix(a, "-") || strings.HasPrefix(a, "$") {
			out[i] = a
		} else {
			out[i] = "'" + a + "'"
		}
	}
	return out
}
