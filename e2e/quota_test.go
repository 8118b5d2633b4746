package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestMailboxQuotas fills a mailbox with a tiny quota using swaks and sees
// Exchange's refusals: 552 5.2.2 at RCPT for a recipient at its
// ProhibitSendReceiveQuota, 554 5.2.2 at end of DATA for a sender at its
// ProhibitSendQuota (its Sent Items copies count); Get-MailboxStatistics
// shows the size and the status; Unlimited lifts the limit.
func TestMailboxQuotas(t *testing.T) {
	swaks := requireTool(t, "swaks")
	in := newInstance(t)
	scanner := in.mailbox("scanner", "Scan-Pass-1")
	sean := in.mailbox("sean", "Sean-Pass-1")
	if out := in.shell("Get-Mailbox -Identity " + sean + " | Format-List"); !strings.Contains(out, "ProhibitSendReceiveQuota : 100 GB (107,374,182,400 bytes)") ||
		!strings.Contains(out, "ProhibitSendQuota        : 99 GB (106,300,440,576 bytes)") || !strings.Contains(out, "IssueWarningQuota        : 98 GB (105,226,698,752 bytes)") {
		t.Fatalf("Exchange Online's default quotas:\n%s", out)
	}
	in.admin("Set-Mailbox", "-Identity", sean, "-IssueWarningQuota", "10 KB", "-ProhibitSendQuota", "15 KB", "-ProhibitSendReceiveQuota", "20 KB")
	if out := in.shell("Get-Mailbox -Identity " + sean + " | Format-List"); !strings.Contains(out, "ProhibitSendReceiveQuota : 20 KB (20,480 bytes)") {
		t.Fatalf("Get-Mailbox after Set-Mailbox:\n%s", out)
	}
	if out, err := in.try("Set-Mailbox", "-Identity", sean, "-ProhibitSendQuota", "50 KB"); err == nil || !strings.Contains(out, "must be less than or equal to that of ProhibitSendReceiveQuota") {
		t.Fatalf("ProhibitSendQuota above ProhibitSendReceiveQuota: %v\n%s", err, out)
	}
	in.start()
	host, port := hostPort(t, in.addrs["submission"])
	body := strings.Repeat(strings.Repeat("0123456789", 7)+"abcdef\n", 100) // 100 lines, about 8 KB
	send := func(from, password, to string) (string, int) {
		out, err := exec.Command(swaks, "--server", host, "--port", port, "--tls", "--tls-verify", "--tls-ca-path", in.caFile(), "--tls-sni", "localhost",
			"--auth", "LOGIN", "--auth-user", from, "--auth-password", password, "--from", from, "--to", to,
			"--header", "Subject: quota", "--body", body).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}

	// 8 KB, 16 KB, then 24 KB: the fourth message finds the mailbox full.
	const full = "552 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded"
	accepted := 0
	for i := 0; i < 6; i++ {
		out, code := send(scanner, "Scan-Pass-1", sean)
		if code == 0 {
			accepted++
			continue
		}
		// swaks exits 24 when no recipient was accepted.
		if code != 24 || !strings.Contains(out, "* "+full) {
			t.Fatalf("message %d: exit %d\n%s", i+1, code, out)
		}
		break
	}
	if accepted != 3 {
		t.Fatalf("%d messages accepted before the mailbox was full, want 3 (8,000 bytes each, quota 20 KB)", accepted)
	}
	out := in.admin("Get-MailboxStatistics", "-Identity", sean)
	if !strings.Contains(out, "MailboxDisabled") || !strings.Contains(out, " 3 ") {
		t.Fatalf("Get-MailboxStatistics:\n%s", out)
	}

	// The sender: its Sent Items hold three copies (about 25 KB); with a
	// ProhibitSendQuota of 30 KB the next submission passes and its copy
	// reaches the quota, so the one after is refused.
	in.admin("Set-Mailbox", "-Identity", scanner, "-IssueWarningQuota", "30KB", "-ProhibitSendQuota", "30KB", "-ProhibitSendReceiveQuota", "Unlimited")
	in.admin("Set-Mailbox", "-Identity", sean, "-ProhibitSendReceiveQuota", "Unlimited")
	if out, code := send(scanner, "Scan-Pass-1", sean); code != 0 {
		t.Fatalf("first submission under ProhibitSendQuota: exit %d\n%s", code, out)
	}
	out, code := send(scanner, "Scan-Pass-1", sean)
	const sendFull = "554 5.2.2 mailbox full; STOREDRV.Submission.Exception:QuotaExceededException.MapiExceptionQuotaExceeded"
	// swaks exits 26 when the message is refused after DATA.
	if code != 26 || !strings.Contains(out, "* "+sendFull) {
		t.Fatalf("submission over ProhibitSendQuota: exit %d\n%s", code, out)
	}
	if out := in.admin("Get-MailboxStatistics", "-Identity", scanner); !strings.Contains(out, "ProhibitSend") {
		t.Fatalf("Get-MailboxStatistics of the sender:\n%s", out)
	}
	// Unlimited lifts it; the recipient, no longer limited, receives again.
	in.admin("Set-Mailbox", "-Identity", scanner, "-IssueWarningQuota", "Unlimited", "-ProhibitSendQuota", "Unlimited")
	if out, code := send(scanner, "Scan-Pass-1", sean); code != 0 {
		t.Fatalf("after Unlimited: exit %d\n%s", code, out)
	}
	if n := in.folderCount(sean, "Inbox"); n != 5 {
		t.Fatalf("sean's Inbox holds %d messages, want 5", n)
	}
	if n := in.folderCount(scanner, "Sent Items"); n != 5 {
		t.Fatalf("scanner's Sent Items holds %d messages, want 5", n)
	}
}

// TestMailboxSignInReport: SMTP AUTH sign-ins appear in the sign-in report
// (IMAP4 and POP3 ones go through the same service), counted per mailbox,
// address and method, also from the REST API's contract.
func TestMailboxSignInReport(t *testing.T) {
	swaks := requireTool(t, "swaks")
	in := newInstance(t)
	scanner := in.mailbox("scanner", "Scan-Pass-1")
	in.start()
	host, port := hostPort(t, in.addrs["submission"])
	for range 3 {
		out, err := exec.Command(swaks, "--server", host, "--port", port, "--tls", "--tls-verify", "--tls-ca-path", in.caFile(), "--tls-sni", "localhost",
			"--auth", "LOGIN", "--auth-user", scanner, "--auth-password", "Scan-Pass-1", "--from", scanner, "--to", scanner, "--quit-after", "AUTH").CombinedOutput()
		if err != nil {
			t.Fatalf("swaks: %v\n%s", err, out)
		}
	}
	out := in.admin("Get-MailboxSignInReport", "-Protocol", "SMTP")
	if !strings.Contains(out, scanner) || !strings.Contains(out, "Basic") || !strings.Contains(out, "127.0.0.1") {
		t.Fatalf("report:\n%s", out)
	}
	fl := in.shell("Get-MailboxSignInReport -Identity " + scanner + " | Format-List")
	if !strings.Contains(fl, "Count                : 3") || !strings.Contains(fl, "Protocol             : SMTP") {
		t.Fatalf("report as a list:\n%s", fl)
	}
	if out := in.admin("Get-MailboxSignInReport", "-Protocol", "IMAP4"); strings.Contains(out, scanner) {
		t.Fatalf("IMAP4 report lists an SMTP sign-in:\n%s", out)
	}
}
