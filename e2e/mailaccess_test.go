package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/testidp"
)

// lineClient is a raw client for the line protocols IMAP and POP3, to see
// the exact text of every answer.
type lineClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialLines(t *testing.T, addr string, cfg *tls.Config) *lineClient {
	t.Helper()
	var conn net.Conn
	var err error
	if cfg != nil {
		conn, err = tls.Dial("tcp", addr, cfg)
	} else {
		conn, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	return &lineClient{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// line reads one line without its CRLF.
func (c *lineClient) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

func (c *lineClient) send(l string) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.conn, "%s\r\n", l); err != nil {
		c.t.Fatal(err)
	}
}

// imap sends a tagged command and returns every line up to and including
// the tagged completion.
func (c *lineClient) imap(tag, cmd string) []string {
	c.t.Helper()
	c.send(tag + " " + cmd)
	var out []string
	for {
		l := c.line()
		out = append(out, l)
		if strings.HasPrefix(l, tag+" ") {
			return out
		}
	}
}

func (c *lineClient) startTLS(cfg *tls.Config) {
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
}

// accessInstance is an instance with IMAP and POP3 on loopback, alice and
// bob (users), and a message from bob in alice's Inbox.
func accessInstance(t *testing.T, extra ...string) *instance {
	t.Helper()
	in := newInstance(t, extra...)
	in.mailbox("alice", "Alice-Pass-1")
	in.mailbox("bob", "Bob-Pass-1")
	return in
}

// submit sends a message as bob to rcpt and waits until alice's Inbox
// holds want messages.
func (in *instance) submitAs(t *testing.T, user, password, rcpt, subject string) {
	t.Helper()
	c := dial(t, in.addrs["submission"])
	c.expect("EHLO printer", "250")
	c.login(in.tlsConfig(), user, password)
	if r := c.send(user, []string{rcpt}, message(user, rcpt, subject)); !strings.HasPrefix(r, "250") {
		t.Fatalf("submission: %s", r)
	}
	c.do("QUIT")
}

func waitFolder(t *testing.T, in *instance, identity, folder string, n int) {
	t.Helper()
	if !waitUntil(30*time.Second, func() bool { return in.folderCount(identity, folder) >= n }) {
		t.Fatalf("%s %s holds %d messages, want %d", identity, folder, in.folderCount(identity, folder), n)
	}
}

// TestIMAPWithRealClients: python3's imaplib, curl and mbsync read what
// swaks-style submissions delivered, over 993 and STARTTLS on 143.
func TestIMAPWithRealClients(t *testing.T) {
	py := debianPython(t, "imaplib", "ssl")
	curl := requireTool(t, "curl")
	mbsync := requireTool(t, "mbsync")
	in := accessInstance(t)
	in.start()
	for i := 1; i <= 3; i++ {
		in.submitAs(t, "bob@contoso.com", "Bob-Pass-1", "alice@contoso.com", fmt.Sprintf("Scan %d", i))
	}
	waitFolder(t, in, "alice@contoso.com", "Inbox", 3)
	host, port := hostPort(t, in.addrs["imaps"])
	_, port143 := hostPort(t, in.addrs["imap"])

	script := `import imaplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
ctx.check_hostname = False
for mode in ("imaps", "starttls"):
    if mode == "imaps":
        m = imaplib.IMAP4_SSL(sys.argv[2], int(sys.argv[3]), ssl_context=ctx)
    else:
        m = imaplib.IMAP4(sys.argv[2], int(sys.argv[4]))
        assert "LOGINDISABLED" in m.capabilities, m.capabilities
        m.starttls(ssl_context=ctx)
    m.login("alice@contoso.com", "Alice-Pass-1")
    typ, boxes = m.list()
    names = b"\n".join(boxes).decode()
    for want in ('"Sent Items"', "\\Sent", '"Deleted Items"', "\\Trash", '"Junk Email"', "\\Junk", "\\Drafts", "INBOX"):
        assert want in names, (want, names)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data[0] == b"3", data
    typ, data = m.uid("FETCH", "1:*", "(FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subjects = sorted(p[1].decode().strip() for p in data if isinstance(p, tuple))
    assert subjects == ["Subject: Scan 1", "Subject: Scan 2", "Subject: Scan 3"], subjects
    if mode == "imaps":
        typ, data = m.uid("STORE", "1", "+FLAGS", "(\\Seen)")
        assert typ == "OK", data
        typ, data = m.uid("SEARCH", None, "UNSEEN")
        assert len(data[0].split()) == 2, data
        typ, data = m.uid("SEARCH", None, "SUBJECT", '"Scan 3"')
        assert len(data[0].split()) == 1, data
        typ, data = m.uid("COPY", "2", '"Archive"')
        assert typ == "OK", data
        typ, data = m.append('"Drafts"', "(\\Draft)", None, b"From: alice@contoso.com\r\nSubject: draft\r\n\r\nnot yet\r\n")
        assert typ == "OK", data
    m.logout()
print("ok")
`
	out, err := exec.Command(py, "-c", script, in.caFile(), host, port, port143).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("imaplib: %v\n%s\nserver log:\n%s", err, out, in.log.String())
	}
	if n := in.folderCount("alice@contoso.com", "Archive"); n != 1 {
		t.Errorf("Archive holds %d messages after COPY, want 1", n)
	}
	if n := in.folderCount("alice@contoso.com", "Drafts"); n != 1 {
		t.Errorf("Drafts holds %d messages after APPEND, want 1", n)
	}

	// curl: the body of a message by UID, over implicit TLS.
	out, err = exec.Command(curl, "-sS", "--cacert", in.caFile(), "--url", "imaps://localhost:"+port+"/INBOX;UID=2",
		"--user", "alice@contoso.com:Alice-Pass-1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Subject: Scan 2") || !strings.Contains(string(out), "Hello from the copier.") {
		t.Errorf("curl imaps fetch: %v\n%s", err, out)
	}

	// mbsync mirrors the whole mailbox into a Maildir.
	dir := t.TempDir()
	rc := filepath.Join(dir, "mbsyncrc")
	maildir := filepath.Join(dir, "mail") + "/"
	os.MkdirAll(maildir, 0o700)
	os.WriteFile(rc, []byte(fmt.Sprintf(`IMAPAccount postern
Host localhost
Port %s
User alice@contoso.com
Pass Alice-Pass-1
SSLType IMAPS
CertificateFile %s

IMAPStore remote
Account postern

MaildirStore local
Path %s
Inbox %sINBOX

Channel all
Far :remote:
Near :local:
Patterns *
Create Near
SyncState *
`, port, in.caFile(), maildir, maildir)), 0o600)
	cmd := exec.Command(mbsync, "-c", rc, "-a")
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mbsync: %v\n%s", err, out)
	}
	for folder, want := range map[string]int{"INBOX": 3, "Archive": 1, "Drafts": 1} {
		entries, _ := os.ReadDir(filepath.Join(maildir, folder, "cur"))
		fresh, _ := os.ReadDir(filepath.Join(maildir, folder, "new"))
		if got := len(entries) + len(fresh); got != want {
			t.Errorf("mbsync Maildir %s holds %d messages, want %d", folder, got, want)
		}
	}
}

// TestIMAPIdle: a session idling on INBOX learns of a delivery, and of the
// copy a submission files into Sent Items, while it idles.
func TestIMAPIdle(t *testing.T) {
	in := accessInstance(t)
	in.start()
	for _, folder := range []string{"INBOX", `"Sent Items"`} {
		c := dialLines(t, in.addrs["imaps"], in.tlsConfig())
		c.line() // greeting
		if r := c.imap("a1", "LOGIN bob@contoso.com Bob-Pass-1"); !strings.HasPrefix(r[len(r)-1], "a1 OK") {
			t.Fatalf("LOGIN: %v", r)
		}
		c.imap("a2", "SELECT "+folder)
		c.send("a3 IDLE")
		if l := c.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("IDLE: %s", l)
		}
		sent := time.Now()
		if folder == "INBOX" {
			in.submitAs(t, "alice@contoso.com", "Alice-Pass-1", "bob@contoso.com", "Ping")
		} else {
			in.submitAs(t, "bob@contoso.com", "Bob-Pass-1", "alice@contoso.com", "Pong")
		}
		for {
			l := c.line()
			if strings.HasSuffix(l, " EXISTS") {
				t.Logf("%s: EXISTS %v after the submission", folder, time.Since(sent).Round(time.Millisecond))
				break
			}
		}
		c.send("DONE")
		if l := c.line(); !strings.HasPrefix(l, "a3 OK") {
			t.Errorf("DONE: %s", l)
		}
	}
}

// TestPOP3WithRealClients: python3's poplib over 995 and STLS on 110, and
// curl, retrieve and delete what was delivered.
func TestPOP3WithRealClients(t *testing.T) {
	py := debianPython(t, "poplib", "ssl")
	curl := requireTool(t, "curl")
	in := accessInstance(t)
	in.start()
	for i := 1; i <= 2; i++ {
		in.submitAs(t, "bob@contoso.com", "Bob-Pass-1", "alice@contoso.com", fmt.Sprintf("Scan %d", i))
	}
	waitFolder(t, in, "alice@contoso.com", "Inbox", 2)
	host, port := hostPort(t, in.addrs["pop3s"])
	_, port110 := hostPort(t, in.addrs["pop3"])

	_, curlPort := hostPort(t, in.addrs["pop3s"])
	out, err := exec.Command(curl, "-sS", "--cacert", in.caFile(), "--url", "pop3s://localhost:"+curlPort+"/1",
		"--user", "alice@contoso.com:Alice-Pass-1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Subject: Scan 1") {
		t.Errorf("curl pop3s RETR: %v\n%s", err, out)
	}

	script := `import poplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
ctx.check_hostname = False
p = poplib.POP3(sys.argv[2], int(sys.argv[4]))
caps = p.capa()
assert "STLS" in caps and "USER" not in caps, caps
p.stls(context=ctx)
p.user("alice@contoso.com"); p.pass_("Alice-Pass-1")
count, size = p.stat()
assert count == 2, count
resp, lines, octets = p.retr(1)
assert b"Subject: Scan 1" in lines, lines
resp, lines, octets = p.top(2, 0)
assert b"Subject: Scan 2" in lines and b"Hello from the copier." not in lines, lines
uids = p.uidl()[1]
assert len(uids) == 2, uids
p.dele(1)
p.quit()
p = poplib.POP3_SSL(sys.argv[2], int(sys.argv[3]), context=ctx)
p.user("alice@contoso.com"); p.pass_("Alice-Pass-1")
count, size = p.stat()
assert count == 1, count
p.quit()
print("ok")
`
	out, err = exec.Command(py, "-c", script, in.caFile(), host, port, port110).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("poplib: %v\n%s\nserver log:\n%s", err, out, in.log.String())
	}
	if n := in.folderCount("alice@contoso.com", "Inbox"); n != 1 {
		t.Errorf("Inbox holds %d messages after DELE and QUIT, want 1", n)
	}
}

// TestMailAccessGovernance: the switches and policies that govern SMTP
// AUTH govern IMAP and POP3 too, with Exchange's replies.
func TestMailAccessGovernance(t *testing.T) {
	in := accessInstance(t)
	in.admin("New-Mailbox", "-Name", "info", "-PrimarySmtpAddress", "info@contoso.com", "-Shared")
	in.admin("Add-MailboxPermission", "-Identity", "info@contoso.com", "-User", "alice@contoso.com", "-AccessRights", "FullAccess")
	in.admin("Set-CASMailbox", "-Identity", "bob@contoso.com", "-ImapEnabled", "$false", "-PopEnabled", "$false")
	in.start()
	in.submitAs(t, "bob@contoso.com", "Bob-Pass-1", "info@contoso.com", "For the team")
	waitFolder(t, in, "info@contoso.com", "Inbox", 1)

	imapLogin := func(user, pass string) string {
		c := dialLines(t, in.addrs["imaps"], in.tlsConfig())
		c.line()
		r := c.imap("a1", fmt.Sprintf("LOGIN %q %q", user, pass))
		return r[len(r)-1]
	}
	popLogin := func(user, pass string) string {
		c := dialLines(t, in.addrs["pop3s"], in.tlsConfig())
		c.line()
		c.send("USER " + user)
		c.line()
		c.send("PASS " + pass)
		return c.line()
	}
	if r := imapLogin("alice@contoso.com", "wrong"); r != "a1 NO LOGIN failed." && !strings.HasSuffix(r, "] LOGIN failed.") {
		t.Errorf("IMAP bad password: %s", r)
	}
	if r := popLogin("alice@contoso.com", "wrong"); r != "-ERR Logon failure: unknown user name or bad password." {
		t.Errorf("POP3 bad password: %s", r)
	}
	if r := imapLogin("bob@contoso.com", "Bob-Pass-1"); !strings.Contains(r, "NO") || !strings.Contains(r, "User is authenticated but not connected.") {
		t.Errorf("IMAP with ImapEnabled $false: %s", r)
	}
	if r := popLogin("bob@contoso.com", "Bob-Pass-1"); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("POP3 with PopEnabled $false: %s", r)
	}
	if r := imapLogin("alice@contoso.com", "Alice-Pass-1"); !strings.HasPrefix(r, "a1 OK") {
		t.Errorf("IMAP alice: %s", r)
	}
	// A shared mailbox: opened by a delegate with Full Access, never with
	// a password of its own.
	if r := imapLogin(`alice@contoso.com\info@contoso.com`, "Alice-Pass-1"); !strings.HasPrefix(r, "a1 OK") {
		t.Errorf("IMAP alice\\info: %s", r)
	}
	if r := imapLogin(`bob@contoso.com\info@contoso.com`, "Bob-Pass-1"); !strings.Contains(r, "NO") {
		t.Errorf("IMAP bob\\info without Full Access: %s", r)
	}
	c := dialLines(t, in.addrs["imaps"], in.tlsConfig())
	c.line()
	c.imap("a1", `LOGIN "alice@contoso.com/info@contoso.com" "Alice-Pass-1"`)
	if r := c.imap("a2", "SELECT INBOX"); !strings.Contains(strings.Join(r, "\n"), "* 1 EXISTS") {
		t.Errorf("the shared Inbox: %v", r)
	}

	// The sign-ins are in the report, by protocol: alice for herself and,
	// as the actor, for the shared mailbox.
	imapReport := in.shell("Get-MailboxSignInReport -Protocol IMAP4 | Format-List")
	for _, want := range []string{"Mailbox              : alice@contoso.com", "Mailbox              : info@contoso.com", "AuthenticationMethod : Basic"} {
		if !strings.Contains(imapReport, want) {
			t.Errorf("the IMAP4 sign-in report lacks %q:\n%s", want, imapReport)
		}
	}
	if strings.Contains(in.admin("Get-MailboxSignInReport", "-Protocol", "POP3"), "alice@contoso.com") {
		t.Error("a POP3 sign-in is reported that never succeeded")
	}

	// An authentication policy without AllowBasicAuthImap blocks Basic for
	// IMAP only; POP3 follows its own switch.
	in.shell(`New-AuthenticationPolicy -Name "No IMAP" -AllowBasicAuthPop; Set-User -Identity alice@contoso.com -AuthenticationPolicy "No IMAP"`)
	if !waitUntil(30*time.Second, func() bool { return !strings.HasPrefix(imapLogin("alice@contoso.com", "Alice-Pass-1"), "a1 OK") }) {
		t.Error("IMAP Basic still signs in under a policy without AllowBasicAuthImap")
	}
	if r := popLogin("alice@contoso.com", "Alice-Pass-1"); !strings.HasPrefix(r, "+OK") {
		t.Errorf("POP3 under a policy with AllowBasicAuthPop: %s", r)
	}

	// Before TLS on 143: no LOGIN, no AUTHENTICATE.
	plain := dialLines(t, in.addrs["imap"], nil)
	plain.line()
	caps := strings.Join(plain.imap("c1", "CAPABILITY"), "\n")
	if !strings.Contains(caps, "LOGINDISABLED") || !strings.Contains(caps, "STARTTLS") || strings.Contains(caps, "AUTH=") {
		t.Errorf("CAPABILITY before TLS: %s", caps)
	}
	if r := plain.imap("c2", "LOGIN alice@contoso.com Alice-Pass-1"); !strings.Contains(r[len(r)-1], "NO") && !strings.Contains(r[len(r)-1], "BAD") {
		t.Errorf("LOGIN before TLS: %v", r)
	}
}

// TestMailAccessOAuth: IMAP and POP3 sign in with tokens for the scopes
// Exchange uses, with curl and a raw client; SMTP.Send is not enough.
func TestMailAccessOAuth(t *testing.T) {
	curl := requireTool(t, "curl")
	in, idp := oauthInstance(t)
	in.start()
	in.submitAs(t, "scanner@contoso.com", "Scan-Pass-1", "sean@contoso.com", "Token mail")
	waitFolder(t, in, "sean@contoso.com", "Inbox", 1)
	_, port := hostPort(t, in.addrs["imaps"])
	_, pport := hostPort(t, in.addrs["pop3s"])

	imapToken := idp.Token(testidp.Claims{"aud": m365Audience, "scp": "IMAP.AccessAsUser.All", "upn": "sean@contoso.com"})
	out, err := exec.Command(curl, "-sS", "--cacert", in.caFile(), "--url", "imaps://localhost:"+port+"/INBOX;UID=1",
		"--user", "sean@contoso.com", "--oauth2-bearer", imapToken).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Subject: Token mail") {
		t.Errorf("curl imaps with an IMAP.AccessAsUser.All token: %v\n%s", err, out)
	}
	popToken := idp.Token(testidp.Claims{"aud": m365Audience, "scp": "POP.AccessAsUser.All", "upn": "sean@contoso.com"})
	out, err = exec.Command(curl, "-sS", "--cacert", in.caFile(), "--url", "pop3s://localhost:"+pport+"/1",
		"--user", "sean@contoso.com", "--oauth2-bearer", popToken).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Subject: Token mail") {
		t.Errorf("curl pop3s with a POP.AccessAsUser.All token: %v\n%s", err, out)
	}

	xoauth2 := func(user, token string) string {
		return base64.StdEncoding.EncodeToString([]byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01"))
	}
	authenticate := func(token string) string {
		c := dialLines(t, in.addrs["imaps"], in.tlsConfig())
		c.line()
		c.send("a1 AUTHENTICATE XOAUTH2 " + xoauth2("sean@contoso.com", token))
		for {
			l := c.line()
			if strings.HasPrefix(l, "+") {
				c.send("") // the JSON error challenge: answer it empty
				continue
			}
			if strings.HasPrefix(l, "a1 ") {
				return l
			}
		}
	}
	if r := authenticate(imapToken); !strings.HasPrefix(r, "a1 OK") {
		t.Errorf("XOAUTH2 with an IMAP token: %s", r)
	}
	if r := authenticate(userToken(idp, "sean@contoso.com")); !strings.Contains(r, "AUTHENTICATE failed.") {
		t.Errorf("XOAUTH2 with an SMTP.Send token: %s", r)
	}
	// App-only: a service principal with Full Access opens the mailbox.
	app := idp.Token(testidp.Claims{"aud": m365Audience, "roles": []string{"IMAP.AccessAsApp"}, "appid": "app-1"})
	c := dialLines(t, in.addrs["imaps"], in.tlsConfig())
	c.line()
	c.send("a1 AUTHENTICATE XOAUTH2 " + xoauth2("scanner@contoso.com", app))
	if l := c.line(); !strings.HasPrefix(l, "a1 OK") {
		t.Errorf("XOAUTH2 app-only for scanner: %s", l)
	}
}

// TestMailAccessBadInput: hostile IMAP and POP3 input gets clean errors and
// leaves the server serving.
func TestMailAccessBadInput(t *testing.T) {
	in := accessInstance(t)
	in.start()
	c := dialLines(t, in.addrs["imaps"], in.tlsConfig())
	c.line()
	c.imap("a1", "LOGIN alice@contoso.com Alice-Pass-1")
	c.imap("a2", "SELECT INBOX")
	// A literal far past APPENDLIMIT is refused before a byte of it is read.
	c.send(`a3 APPEND INBOX {999999999999}`)
	if l := c.line(); !strings.HasPrefix(l, "a3 NO") && !strings.HasPrefix(l, "a3 BAD") && !strings.HasPrefix(l, "* BYE") {
		t.Errorf("huge literal: %s", l)
	}
	// 10,000 ranges in one FETCH.
	var ranges []string
	for i := 0; i < 10000; i++ {
		ranges = append(ranges, fmt.Sprintf("%d:%d", 2*i+1, 2*i+2))
	}
	d := dialLines(t, in.addrs["imaps"], in.tlsConfig())
	d.line()
	d.imap("b1", "LOGIN alice@contoso.com Alice-Pass-1")
	d.imap("b2", "SELECT INBOX")
	r := d.imap("b3", "FETCH "+strings.Join(ranges, ",")+" (FLAGS)")
	if l := r[len(r)-1]; !strings.HasPrefix(l, "b3 ") {
		t.Errorf("10,000 FETCH ranges: %s", l)
	}
	// An overlong POP3 line.
	p := dialLines(t, in.addrs["pop3s"], in.tlsConfig())
	p.line()
	p.send("USER " + strings.Repeat("x", 100000))
	if l := p.line(); !strings.HasPrefix(l, "-ERR") {
		t.Errorf("overlong POP3 line: %s", l)
	}
	// A mailbox at its ProhibitSendReceiveQuota takes no APPEND either.
	in.admin("Set-Mailbox", "-Identity", "alice@contoso.com", "-IssueWarningQuota", "1 KB", "-ProhibitSendQuota", "1 KB", "-ProhibitSendReceiveQuota", "2 KB")
	q := dialLines(t, in.addrs["imaps"], in.tlsConfig())
	q.line()
	q.imap("q1", "LOGIN alice@contoso.com Alice-Pass-1")
	big := strings.Repeat("x", 3000)
	q.send(fmt.Sprintf("q2 APPEND INBOX {%d+}", len(big)))
	q.send(big)
	if l := q.line(); !strings.HasPrefix(l, "q2 NO [OVERQUOTA]") {
		t.Errorf("APPEND over ProhibitSendReceiveQuota: %s", l)
	}

	// The server still serves.
	e := dialLines(t, in.addrs["imaps"], in.tlsConfig())
	e.line()
	if r := e.imap("z1", "LOGIN alice@contoso.com Alice-Pass-1"); !strings.HasPrefix(r[len(r)-1], "z1 OK") {
		t.Errorf("after bad input: %v", r)
	}
}
