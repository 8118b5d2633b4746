package e2e

import (
	"crypto/tls"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/testsmtp"
)

// Exchange fidelity on the SMTP side (issue 15): every line Postern writes
// is Exchange Online's, checked here with real clients and exact texts.

// TestFidelitySwaksTranscript records a whole SMTP AUTH session of swaks, a
// real client, and compares every line the server wrote with Exchange
// Online's transcript (reference section 1.2).
func TestFidelitySwaksTranscript(t *testing.T) {
	swaks := requireTool(t, "swaks")
	in := newInstance(t)
	scanner := in.mailbox("scanner", "Scan-Pass-1")
	in.start()
	host, port := hostPort(t, in.addrs["submission"])
	out, err := exec.Command(swaks, "--server", host, "--port", port, "--tls", "--tls-verify", "--tls-ca-path", in.caFile(),
		"--tls-sni", "localhost", "--ehlo", "scanner.contoso.com", "--auth", "LOGIN", "--auth-user", scanner, "--auth-password", "Scan-Pass-1",
		"--from", scanner, "--to", scanner, "--header", "Subject: transcript").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	// swaks marks what the server said with "<-" before TLS and "<~" under it.
	var got []string
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "<-") || strings.HasPrefix(l, "<~") {
			got = append(got, strings.TrimSpace(l[2:]))
		}
	}
	want := []string{
		`220 mail\.contoso\.com Postern ESMTP MAIL Service ready at [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \+0000 \[\w+\]`,
		`250-mail\.contoso\.com Hello \[127\.0\.0\.1\]`, `250-SIZE 157286400`, `250-PIPELINING`, `250-ENHANCEDSTATUSCODES`, `250-STARTTLS`,
		`250-8BITMIME`, `250-CHUNKING`, `250 SMTPUTF8`,
		`220 2\.0\.0 SMTP server ready`,
		`250-mail\.contoso\.com Hello \[127\.0\.0\.1\]`, `250-SIZE 157286400`, `250-PIPELINING`, `250-ENHANCEDSTATUSCODES`,
		`250-AUTH LOGIN PLAIN XOAUTH2 OAUTHBEARER`, `250-8BITMIME`, `250-CHUNKING`, `250 SMTPUTF8`,
		`334 VXNlcm5hbWU6`, `334 UGFzc3dvcmQ6`, `235 2\.7\.0 Authentication successful`,
		`250 2\.1\.0 Sender OK`, `250 2\.1\.5 Recipient OK`,
		`354 Start mail input; end with <CRLF>\.<CRLF>`,
		`250 2\.0\.0 OK <[^>]+> \[Hostname=mail\.contoso\.com\]`,
		`221 2\.0\.0 Service closing transmission channel`,
	}
	if len(got) != len(want) {
		t.Fatalf("server wrote %d lines, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !regexp.MustCompile("^" + want[i] + "$").MatchString(got[i]) {
			t.Errorf("line %d: %q, want /%s/", i+1, got[i], want[i])
		}
	}
}

// TestFidelityProtocolLines: the lines a device meets when it goes wrong,
// and the small commands, each Exchange's exact text.
func TestFidelityProtocolLines(t *testing.T) {
	in := newInstance(t)
	sean := in.mailbox("sean", "Sean-Pass-1")
	in.start()
	c := dial(t, in.addrs["submission"])
	for _, st := range []struct{ send, want string }{
		{"MAIL FROM:<sean@contoso.com>", "503 5.5.2 Send hello first"},
		{"EHLO MacBook..", "501 5.5.4 Invalid domain name"},
		{"EHLO", "501 5.0.0 EHLO requires domain address"},
		{"HELO scanner.contoso.com", "250 mail.contoso.com Hello [127.0.0.1]"},
		{"HELP", "214-This server supports the following commands:\n214 HELO EHLO STARTTLS RCPT DATA RSET MAIL QUIT HELP AUTH BDAT"},
		{"NOOP", "250 2.0.0 OK"},
		{"VRFY sean", "252 2.1.5 Cannot VRFY user"},
		{"RSET", "250 2.0.0 Resetting"},
		{"FROB", "500 5.3.3 Unrecognized command"},
		{"AUTH LOGIN", "504 5.7.4 Unrecognized authentication type"}, // not offered before TLS
	} {
		if got := c.do(st.send); got != st.want {
			t.Errorf("%s: %q, want %q", st.send, got, st.want)
		}
	}
	c.expect("EHLO scanner.contoso.com", "250")
	c.startTLS(in.tlsConfig())
	for _, st := range []struct{ send, want string }{
		{"STARTTLS", "503 5.5.2 Only one STARTTLS command can be issued per session"},
		{"EHLO scanner.contoso.com", "250-mail.contoso.com Hello [127.0.0.1]"},
		{"AUTH PLAIN !!!", "501 5.5.2 Cannot Decode response"},
		{"AUTH LOGIN", "334 VXNlcm5hbWU6"},
		{"*", "501 5.5.4 Authentication cancelled"},
		{"AUTH PLAIN AHNlYW5AY29udG9zby5jb20AU2Vhbi1QYXNzLTE=", "235 2.7.0 Authentication successful"},
		{"AUTH PLAIN AHNlYW5AY29udG9zby5jb20AU2Vhbi1QYXNzLTE=", "503 5.5.2 Auth command already specified"},
		{"RCPT TO:<sean@contoso.com>", "503 5.5.2 Need mail command"},
		{"MAIL FROM:<" + sean + "> RET=HDRS", "501 5.5.4 Unrecognized parameter"},
		{"MAIL FROM:<" + sean + "> SIZE=999999999", "552 5.3.4 Message size exceeds fixed maximum message size"},
		{"MAIL FROM:<" + sean + ">", "250 2.1.0 Sender OK"},
		{"MAIL FROM:<" + sean + ">", "503 5.5.2 Sender already specified"},
		{"DATA", "503 5.5.2 Need rcpt command"},
		{"RCPT TO:<" + sean + "> NOTIFY=NEVER", "501 5.5.4 Unrecognized parameter"},
		{"RCPT TO:<" + sean + ">", "250 2.1.5 Recipient OK"},
		{"BDAT 0", "250 2.6.0 CHUNK received OK, 0 octets"},
		{"DATA", "503 5.5.1 Bad sequence of commands"},
		{"RSET", "250 2.0.0 Resetting"},
		{"QUIT", "221 2.0.0 Service closing transmission channel"},
	} {
		got := c.do(st.send)
		if strings.HasPrefix(st.send, "EHLO") && strings.HasPrefix(got, st.want+"\n") || got == st.want {
			continue
		}
		t.Errorf("%s: %q, want %q", st.send, got, st.want)
	}
}

// TestFidelityRequireTlsDefault: a connector built from the seed's steps (a
// name, "from your organization's email server", the device's IP address)
// does not require TLS, as in Exchange, so a device that cannot use
// STARTTLS relays through it.
func TestFidelityRequireTlsDefault(t *testing.T) {
	in := newInstance(t)
	in.admin("New-InboundConnector", "-Name", "Scanner relay", "-ConnectorType", "OnPremises", "-SenderIPAddresses", "127.0.0.2")
	if got := fieldValue(in.shell("Get-InboundConnector -Identity 'Scanner relay' | Format-List RequireTls"), "RequireTls"); got != "False" {
		t.Errorf("RequireTls %q, want False", got)
	}
	in.start()
	c := dialFrom(t, "127.0.0.2", in.addrs["mx"])
	c.expect("EHLO scanner.contoso.com", "250")
	if got := c.send("scan@contoso.com", []string{"bob@fabrikam.example"}, message("scan@contoso.com", "bob@fabrikam.example", "no TLS")); !strings.HasPrefix(got, "250 2.0.0 OK <") {
		t.Errorf("a device without TLS through the seed's connector: %q", got)
	}
	// -RequireTls $true still refuses it, with Exchange's text.
	in.admin("Set-InboundConnector", "-Identity", "Scanner relay", "-RequireTls", "$true")
	d := dialFrom(t, "127.0.0.2", in.addrs["mx"])
	d.expect("EHLO scanner.contoso.com", "250")
	d.expect("MAIL FROM:<scan@contoso.com>", "530 5.7.0 Must issue a STARTTLS command first")
}

// TestFidelityATTR36: through an OnPremises connector identified by a
// certificate whose name is an accepted domain, any sender domain relays; an
// IP connector, or a certificate connector for a host name that is not an
// accepted domain, relays only the organization's own sender domains
// (reference 7.1).
func TestFidelityATTR36(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t)
	writePEM(t, dir+"/ca.pem", "CERTIFICATE", ca.Raw)
	domainCert := clientCert(t, "relay1.contoso.com", ca, caKey)
	hostCert := clientCert(t, "smtp.fabrikam.com", ca, caKey)

	in := newInstance(t, "--tls-client-ca", dir+"/ca.pem")
	in.admin("New-AcceptedDomain", "-Name", "fabrikam.com", "-DomainName", "fabrikam.com", "-DomainType", "Authoritative")
	in.admin("New-InboundConnector", "-Name", "Hybrid", "-ConnectorType", "OnPremises", "-TlsSenderCertificateName", "*.contoso.com")
	// A host name, not an accepted domain: Exchange asks for *.fabrikam.com.
	in.admin("New-InboundConnector", "-Name", "Host", "-ConnectorType", "OnPremises", "-TlsSenderCertificateName", "smtp.fabrikam.com")
	in.admin("New-InboundConnector", "-Name", "Printers", "-ConnectorType", "OnPremises", "-SenderIPAddresses", "127.0.0.2")
	in.start()

	relay := func(local string, cert *tls.Certificate, from string) string {
		c := dialFrom(t, local, in.addrs["mx"])
		c.expect("EHLO relay", "250")
		if cert != nil {
			cfg := in.tlsConfig()
			cfg.Certificates = []tls.Certificate{*cert}
			c.startTLS(cfg)
			c.expect("EHLO relay", "250")
		}
		c.expect("MAIL FROM:<"+from+">", "250 2.1.0 Sender OK")
		return c.do("RCPT TO:<bob@fabrikam.example>")
	}
	const attr36 = "550 5.7.64 Relay Access Denied ATTR36. For more details please refer to KB 3169958."
	for _, tt := range []struct {
		name  string
		local string
		cert  *tls.Certificate
		from  string
		want  string
	}{
		{"certificate of an accepted domain, foreign sender", "127.0.0.5", domainCert, "alerts@monitoring.example", "250 2.1.5 Recipient OK"},
		{"certificate of an accepted domain, own sender", "127.0.0.5", domainCert, "app@contoso.com", "250 2.1.5 Recipient OK"},
		{"certificate of a host name, foreign sender", "127.0.0.6", hostCert, "alerts@monitoring.example", attr36},
		{"certificate of a host name, own sender", "127.0.0.6", hostCert, "app@fabrikam.com", "250 2.1.5 Recipient OK"},
		{"IP connector, own sender", "127.0.0.2", nil, "scan@contoso.com", "250 2.1.5 Recipient OK"},
		{"IP connector, foreign sender", "127.0.0.2", nil, "alerts@monitoring.example", attr36},
	} {
		if got := relay(tt.local, tt.cert, tt.from); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestFidelityDirectoryBasedEdgeBlocking: anonymous mail to an unknown
// address of an Authoritative domain gets Exchange's DBEB reply at RCPT;
// a message over MaxRecipientEnvelopeLimit is refused whole at end of DATA.
func TestFidelityDirectoryBasedEdgeBlocking(t *testing.T) {
	in := newInstance(t)
	sean := in.mailbox("sean", "Sean-Pass-1")
	kim := in.mailbox("kim", "Kim-Pass-123")
	in.admin("Set-TransportConfig", "-MaxRecipientEnvelopeLimit", "1")
	in.start()
	c := dial(t, in.addrs["mx"])
	c.expect("EHLO device", "250")
	c.expect("MAIL FROM:<x@outside.example>", "250 2.1.0 Sender OK")
	c.expect("RCPT TO:<nobody@contoso.com>", "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)")
	c.expect("RCPT TO:<"+sean+">", "250 2.1.5 Recipient OK")
	c.expect("RCPT TO:<"+kim+">", "250 2.1.5 Recipient OK")
	c.expect("DATA", "354 Start mail input; end with <CRLF>.<CRLF>")
	if got := c.do("From: x@outside.example\r\nSubject: two\r\n\r\nx\r\n."); got != "550 5.5.3 RESOLVER.ADR.RecipLimit; too many recipients" {
		t.Errorf("over MaxRecipientEnvelopeLimit: %q", got)
	}
	if n := in.folderCount(sean, "Inbox"); n != 0 {
		t.Errorf("a refused message reached sean: %d", n)
	}
}

// TestFidelityNDRToOwnAddressDropped: a scanner relays from an address of
// the organization's own domain that has no mailbox; the outside refuses the
// recipient; the non-delivery report has nobody to go to and is dropped with
// a trace event, never sent out by MX (contoso.com's MX here is the same
// outside receiver, which would get it).
func TestFidelityNDRToOwnAddressDropped(t *testing.T) {
	o := newOutside(t, testsmtp.Config{Reply: func(s testsmtp.Stage, arg string) string {
		if s == testsmtp.Rcpt && strings.HasPrefix(arg, "gone@") {
			return "550 5.1.1 gone@fabrikam.example: recipient rejected"
		}
		return ""
	}})
	o.dns.SetMX("contoso.com", "mx.fabrikam.example")
	in := newInstance(t, o.flags(t)...)
	in.admin("New-InboundConnector", "-Name", "Scanners", "-ConnectorType", "OnPremises", "-SenderIPAddresses", "127.0.0.2")
	in.start()
	c := dialFrom(t, "127.0.0.2", in.addrs["mx"])
	c.expect("EHLO scanner", "250")
	if got := c.send("scanner@contoso.com", []string{"gone@fabrikam.example"}, message("scanner@contoso.com", "gone@fabrikam.example", "Lost scan")); !strings.HasPrefix(got, "250 2.0.0 OK") {
		t.Fatalf("relay: %q", got)
	}
	var id, detail string
	if !waitUntil(20*time.Second, func() bool {
		id = fieldValue(in.shell("Get-MessageTrace -SenderAddress scanner@contoso.com | Format-List MessageTraceId"), "MessageTraceId")
		if id == "" {
			return false
		}
		detail = in.shell("Get-MessageTraceDetail -MessageTraceId " + id + " | Format-List Event,Detail")
		return strings.Contains(detail, "DROP")
	}) {
		t.Fatalf("no DROP event:\n%s\n%s", detail, in.log.String())
	}
	want := "non-delivery report to scanner@contoso.com dropped: no mailbox has this address of the Authoritative accepted domain contoso.com"
	if !strings.Contains(detail, want) || strings.Contains(detail, "DSN") {
		t.Errorf("trace detail:\n%s\nwant %q and no DSN", detail, want)
	}
	if got := in.shell("Get-QueueMessage | Format-List *"); strings.Contains(got, "scanner@contoso.com") {
		t.Errorf("the report is queued:\n%s", got)
	}
	for _, m := range o.mx.Messages() {
		for _, rc := range m.To {
			if rc == "scanner@contoso.com" {
				t.Errorf("the report was sent out by MX: %+v", m)
			}
		}
	}
}

// TestFidelityLegacyTLS: the legacy listener (--submission-legacy)
// negotiates TLS 1.0 and 1.1, the standard one refuses them; AUTH over TLS
// 1.0 there gets Exchange's 421 4.7.66 until Set-TransportConfig
// -AllowLegacyTLSClients $true, which Get-TransportConfig then shows.
func TestFidelityLegacyTLS(t *testing.T) {
	py := requireTool(t, "python3")
	in := newInstance(t, "--submission-legacy", "127.0.0.1:0")
	sean := in.mailbox("sean", "Sean-Pass-1")
	if got := fieldValue(in.shell("Get-TransportConfig | Format-List AllowLegacyTLSClients"), "AllowLegacyTLSClients"); got != "False" {
		t.Errorf("default AllowLegacyTLSClients %q", got)
	}
	help := in.admin("Get-Help", "Set-TransportConfig")
	for _, want := range []string{"AllowLegacyTLSClients", "TLS 1.0", "TLS 1.1"} {
		if !strings.Contains(help, want) {
			t.Errorf("Set-TransportConfig help lacks %q:\n%s", want, help)
		}
	}
	in.start()
	if in.addrs["submission_legacy"] == "" {
		t.Fatalf("no legacy listener:\n%s", in.log.String())
	}
	// python3's ssl module (OpenSSL) as an old device: TLS 1.0 or 1.1 only.
	script := `import smtplib, ssl, sys, warnings, base64
warnings.simplefilter("ignore")
host, port, version, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
v = {"1.0": ssl.TLSVersion.TLSv1, "1.1": ssl.TLSVersion.TLSv1_1}[version]
ctx.minimum_version = v
ctx.maximum_version = v
s = smtplib.SMTP(host, port, timeout=20)
s.ehlo("printer.contoso.com")
try:
    s.starttls(context=ctx)
except Exception as e:
    print("handshake failed", type(e).__name__)
    sys.exit(0)
print("negotiated", s.sock.version())
s.ehlo("printer.contoso.com")
code, text = s.docmd("AUTH", "PLAIN " + base64.b64encode(("\0" + user + "\0" + pw).encode()).decode())
print("auth", code, text.decode())
`
	run := func(role, version string) string {
		host, port := hostPort(t, in.addrs[role])
		out, err := exec.Command(py, "-c", script, host, port, version, sean, "Sean-Pass-1").CombinedOutput()
		if err != nil {
			t.Fatalf("python3 (%s, TLS %s): %v\n%s", role, version, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, v := range []string{"1.0", "1.1"} {
		if got := run("submission", v); !strings.HasPrefix(got, "handshake failed") {
			t.Errorf("standard listener with TLS %s: %q, want the handshake refused", v, got)
		}
		want := fmt.Sprintf("negotiated TLSv%s\nauth 421 4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to support TLS 1.2. Visit https://aka.ms/smtp_auth_tls.", strings.TrimSuffix(v, ".0"))
		if got := run("submission_legacy", v); got != want {
			t.Errorf("legacy listener, TLS %s, not opted in:\n got %q\nwant %q", v, got, want)
		}
	}
	// TLS 1.2 on the legacy endpoint: for opted-in organizations only.
	c := dial(t, in.addrs["submission_legacy"])
	if got := c.login(in.tlsConfig(), sean, "Sean-Pass-1"); got != "535 5.7.139 Authentication unsuccessful, the legacy TLS endpoint is not enabled for the Tenant. Use the standard endpoint, or run Set-TransportConfig -AllowLegacyTLSClients $true." {
		t.Errorf("legacy listener, TLS 1.3, not opted in: %q", got)
	}

	in.admin("Set-TransportConfig", "-AllowLegacyTLSClients", "$true")
	if got := fieldValue(in.shell("Get-TransportConfig | Format-List AllowLegacyTLSClients"), "AllowLegacyTLSClients"); got != "True" {
		t.Errorf("AllowLegacyTLSClients %q after Set-TransportConfig", got)
	}
	if !waitUntil(15*time.Second, func() bool {
		return run("submission_legacy", "1.0") == "negotiated TLSv1\nauth 235 2.7.0 Authentication successful"
	}) {
		t.Errorf("legacy listener, TLS 1.0, opted in: %q", run("submission_legacy", "1.0"))
	}
	if got := run("submission_legacy", "1.1"); got != "negotiated TLSv1.1\nauth 235 2.7.0 Authentication successful" {
		t.Errorf("legacy listener, TLS 1.1, opted in: %q", got)
	}
	// Never on the standard listeners, whatever the switch says.
	if got := run("submission", "1.0"); !strings.HasPrefix(got, "handshake failed") {
		t.Errorf("standard listener with TLS 1.0 after opting in: %q", got)
	}
}
