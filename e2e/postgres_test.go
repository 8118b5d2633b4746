package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/testpg"
)

// pgAdmin runs one cmdlet on a node of a PostgreSQL store (--store before
// the cmdlet); it fails the test on error.
func pgAdmin(t *testing.T, data, url string, args ...string) string {
	t.Helper()
	out, err := exec.Command(binary, append([]string{"--data", data, "--store", url}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("postern %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPostgresStore: postern serve --store postgres://... keeps the shared
// state in PostgreSQL. Cmdlets set up the organization in the database
// before any server runs; swaks submits through one node; the message is
// read back with Get-MessageTrace and, through a second node on its own
// data directory sharing the database, over IMAP with python3's imaplib.
func TestPostgresStore(t *testing.T) {
	swaks := requireTool(t, "swaks")
	py := debianPython(t, "imaplib", "ssl")
	url := testpg.New(t)
	data := t.TempDir()
	pgAdmin(t, data, url, "New-AcceptedDomain", "-Name", "contoso.com", "-DomainName", "contoso.com", "-DomainType", "Authoritative")
	pgAdmin(t, data, url, "New-Mailbox", "-Name", "scanner", "-PrimarySmtpAddress", "scanner@contoso.com", "-Password", "Scan-Pass-1")
	pgAdmin(t, data, url, "Set-CASMailbox", "-Identity", "scanner@contoso.com", "-SmtpClientAuthenticationDisabled", "$false")
	pgAdmin(t, data, url, "New-Mailbox", "-Name", "sean", "-PrimarySmtpAddress", "sean@contoso.com", "-Password", "Sean-Pass-1")

	a := &instance{t: t, data: data, extra: []string{"--store", url}}
	a.start()
	if _, err := os.Stat(filepath.Join(data, "postern.db")); err == nil {
		t.Fatal("the node made a SQLite database although --store names PostgreSQL")
	}

	host, port := hostPort(t, a.addrs["submission"])
	out, err := exec.Command(swaks, "--server", host, "--port", port, "--tls", "--tls-verify", "--tls-ca-path", a.caFile(), "--tls-sni", "localhost",
		"--auth", "LOGIN", "--auth-user", "scanner@contoso.com", "--auth-password", "Scan-Pass-1",
		"--from", "scanner@contoso.com", "--to", "sean@contoso.com", "--header", "Subject: Scan from floor 3").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "250 2.0.0 OK <") {
		t.Fatalf("swaks: %v\n%s\nserver log:\n%s", err, out, a.log.String())
	}

	// Get-MessageTrace through the running node's admin socket.
	var trace string
	if !waitUntil(30*time.Second, func() bool {
		trace = pgAdmin(t, data, url, "shell", "-c", "Get-MessageTrace -RecipientAddress sean@contoso.com | Format-List SenderAddress,Subject,Status")
		return strings.Contains(trace, "Delivered")
	}) {
		t.Fatalf("Get-MessageTrace:\n%s", trace)
	}
	if !strings.Contains(trace, "scanner@contoso.com") || !strings.Contains(trace, "Scan from floor 3") {
		t.Errorf("Get-MessageTrace:\n%s", trace)
	}

	// A second node: its own data directory (certificate, spool, socket),
	// the same database and secret key.
	dataB := t.TempDir()
	b := &instance{t: t, data: dataB, extra: []string{"--store", url, "--secret-key-file", filepath.Join(data, "secret.key")}}
	b.start()
	if trace := pgAdmin(t, dataB, url, "shell", "-c", "Get-MessageTrace -RecipientAddress sean@contoso.com | Format-List Subject"); !strings.Contains(trace, "Scan from floor 3") {
		t.Errorf("the second node's message trace:\n%s", trace)
	}
	imapHost, imapPort := hostPort(t, b.addrs["imaps"])
	script := `import imaplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
ctx.check_hostname = False
m = imaplib.IMAP4_SSL(sys.argv[2], int(sys.argv[3]), ssl_context=ctx)
m.login("sean@contoso.com", "Sean-Pass-1")
typ, data = m.select("INBOX")
assert typ == "OK" and data[0] == b"1", data
typ, data = m.uid("FETCH", "1", "(BODY.PEEK[])")
body = data[0][1].decode()
assert "Subject: Scan from floor 3" in body, body
assert "From: scanner@contoso.com" in body, body
m.logout()
print("ok")
`
	out, err = exec.Command(py, "-c", script, b.caFile(), imapHost, imapPort).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("imaplib on the second node: %v\n%s\nserver log:\n%s", err, out, b.log.String())
	}
}
