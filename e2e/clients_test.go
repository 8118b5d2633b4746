package e2e

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// TestSwaks drives Postern with swaks, the tool device guides use, in the
// ways devices send: STARTTLS + LOGIN on 587, PLAIN with pipelining,
// implicit TLS on 465, and the refusals a misconfigured device sees.
func TestSwaks(t *testing.T) {
	swaks := requireTool(t, "swaks")
	in := newInstance(t)
	scanner := in.mailbox("scanner", "Scan-Pass-1")
	in.mailbox("sean", "Sean-Pass-1")
	in.start()
	host, port := hostPort(t, in.addrs["submission"])
	_, sport := hostPort(t, in.addrs["submissions"])

	run := func(args ...string) (string, int) {
		base := []string{"--server", host, "--tls-verify", "--tls-ca-path", in.caFile(), "--tls-sni", "localhost",
			"--from", scanner, "--to", "sean@contoso.com", "--header", "Subject: swaks test"}
		out, err := exec.Command(swaks, append(base, args...)...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	tests := []struct {
		name     string
		args     []string
		exit     int
		contains string
	}{
		{"587 STARTTLS LOGIN", []string{"--port", port, "--tls", "--auth", "LOGIN", "--auth-user", scanner, "--auth-password", "Scan-Pass-1"}, 0, "250 2.0.0 OK <"},
		{"587 PLAIN pipelined", []string{"--port", port, "--tls", "--pipeline", "--auth", "PLAIN", "--auth-user", scanner, "--auth-password", "Scan-Pass-1"}, 0, "250 2.0.0 OK <"},
		{"465 implicit TLS", []string{"--port", sport, "--tlsc", "--auth", "LOGIN", "--auth-user", scanner, "--auth-password", "Scan-Pass-1"}, 0, "250 2.0.0 OK <"},
		{"wrong password", []string{"--port", port, "--tls", "--auth", "LOGIN", "--auth-user", scanner, "--auth-password", "wrong"}, 28, "535 5.7.3 Authentication unsuccessful"},
		{"no AUTH", []string{"--port", port, "--tls"}, 23, "530 5.7.57 Client not authenticated to send mail."},
		{"From another mailbox", []string{"--port", port, "--tls", "--auth", "LOGIN", "--auth-user", scanner, "--auth-password", "Scan-Pass-1", "--from", "sean@contoso.com"}, 26, "554 5.2.252 SendAsDenied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := run(tt.args...)
			if code != tt.exit || !strings.Contains(out, tt.contains) {
				t.Fatalf("exit %d (want %d), output lacks %q:\n%s", code, tt.exit, tt.contains, out)
			}
		})
	}
	if n := in.folderCount("sean@contoso.com", "Inbox"); n != 3 {
		t.Errorf("sean's Inbox: %d, want 3", n)
	}
}

// TestPythonSmtplib sends with python3's smtplib, as LOB applications do.
func TestPythonSmtplib(t *testing.T) {
	py := requireTool(t, "python3")
	in := newInstance(t)
	app := in.mailbox("app", "App-Pass-1")
	in.mailbox("sean", "Sean-Pass-1")
	in.start()
	host, port := hostPort(t, in.addrs["submission"])
	_, sport := hostPort(t, in.addrs["submissions"])
	script := `
import smtplib, ssl, sys
from email.message import EmailMessage
host, port, sport, ca, user, pw = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
msg = EmailMessage()
msg["From"], msg["To"], msg["Subject"] = user, "sean@contoso.com", "Nightly report ünïcode"
msg.set_content("Report attached.\n" * 50)
msg.add_attachment(b"x" * 100000, maintype="application", subtype="octet-stream", filename="report.bin")
with smtplib.SMTP(host, int(port)) as s:
    s.starttls(context=ctx)
    s.login(user, pw)
    refused = s.send_message(msg)
    print("refused", refused)
with smtplib.SMTP_SSL(host, int(sport), context=ctx) as s:
    s.login(user, pw)
    s.send_message(msg)
try:
    with smtplib.SMTP(host, int(port)) as s:
        s.starttls(context=ctx)
        s.login(user, "wrong")
except smtplib.SMTPAuthenticationError as e:
    print("auth error", e.smtp_code, e.smtp_error.decode())
with smtplib.SMTP(host, int(port)) as s:
    s.starttls(context=ctx)
    s.login(user, pw)
    try:
        s.sendmail(user, ["nobody@contoso.com"], msg.as_bytes())
    except smtplib.SMTPRecipientsRefused as e:
        code, text = e.recipients["nobody@contoso.com"]
        print("rcpt error", code, text.decode())
`
	out, err := exec.Command(py, "-c", script, host, port, sport, in.caFile(), app, "App-Pass-1").CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	for _, want := range []string{
		"refused {}",
		"auth error 535 5.7.3 Authentication unsuccessful",
		"rcpt error 550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient nobody@contoso.com not found by SMTP address lookup",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("python output lacks %q:\n%s", want, out)
		}
	}
	if n := in.folderCount("sean@contoso.com", "Inbox"); n != 2 {
		t.Errorf("sean's Inbox: %d, want 2", n)
	}
}

// TestDemo starts `postern serve --demo` and sends a message with the swaks
// command it prints, as a first-time user would.
func TestDemo(t *testing.T) {
	requireTool(t, "swaks")
	data := t.TempDir()
	log := &syncBuffer{}
	cmd := exec.Command(binary, "serve", "--demo", "--data", data, "--resolver", emptyDNS,
		"--submission", "127.0.0.1:0", "--submissions", "127.0.0.1:0", "--mx", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	cmd.Args = append(cmd.Args, accessLoopback...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in := &instance{t: t, data: data, cmd: cmd}
	t.Cleanup(in.stop)
	var swaks string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out := log.String()
		if i := strings.Index(out, "  swaks "); i >= 0 && strings.Contains(out[i:], "Scan from the copier'") {
			end := strings.Index(out[i:], "'\n") + i + 1
			swaks = strings.ReplaceAll(out[i:end], "\\\n", " ")
			break
		}
	}
	if swaks == "" {
		t.Fatalf("demo printed no swaks command:\n%s", log.String())
	}
	out, err := exec.Command("sh", "-c", swaks).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "250 2.0.0 OK <") {
		t.Fatalf("the printed command failed: %v\n%s\n%s", err, swaks, out)
	}
	if n := in.folderCount("sean@contoso.com", "Inbox"); n != 1 {
		t.Errorf("sean's Inbox: %d, want 1", n)
	}
}
