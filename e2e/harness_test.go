// Package e2e holds Postern's end-to-end tests: they build the real binary,
// start it on loopback ports, administer it with its own cmdlets and talk to
// it over sockets, with a raw SMTP client (to assert exact replies) and with
// real clients (swaks, python3's smtplib).
package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"postern.dev/postern/internal/testdns"
	"postern.dev/postern/internal/testlog"
	"postern.dev/postern/internal/testpg"
)

var binary string

// emptyDNS answers NXDOMAIN for every name (SERVFAIL for MX); every instance resolves through
// it unless its test passes its own --resolver, so no test sends a DNS
// query off this machine.
var emptyDNS string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "postern-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "postern")
	build := exec.Command("go", "build", "-o", binary, "../cmd/postern")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building postern:", err)
		os.Exit(1)
	}
	dns, err := testdns.Start(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loopback DNS:", err)
		os.Exit(1)
	}
	// Outbound mail in tests that run no receiver stays queued (a DNS
	// failure defers it) instead of bouncing.
	dns.FailUnknownMX()
	emptyDNS = dns.Addr
	code := m.Run()
	testpg.Stop()
	dns.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// instance is one postern serve process on its own data directory.
type instance struct {
	t     *testing.T
	data  string
	cmd   *exec.Cmd
	addrs map[string]string // role -> address
	log   *syncBuffer
	extra []string
	// wrap runs the server under another command, such as prlimit with
	// its arguments: wrap[0] wrap[1:]... postern serve ...
	wrap []string
}

// syncBuffer collects a server's or a tool's output while it runs.
type syncBuffer = testlog.Buffer

// newInstance prepares a data directory with contoso.com; the server is not
// started yet, so cmdlets run directly on the directory.
func newInstance(t *testing.T, extraFlags ...string) *instance {
	t.Helper()
	in := &instance{t: t, data: t.TempDir(), extra: extraFlags}
	in.admin("New-AcceptedDomain", "-Name", "contoso.com", "-DomainName", "contoso.com", "-DomainType", "Authoritative")
	return in
}

// admin runs one cmdlet and returns its output; it fails the test on error.
func (in *instance) admin(args ...string) string {
	in.t.Helper()
	out, err := in.try(args...)
	if err != nil {
		in.t.Fatalf("postern %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// try runs one cmdlet and returns its combined output and error.
func (in *instance) try(args ...string) (string, error) {
	cmd := exec.Command(binary, append([]string{"--data", in.data}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// shell runs a script with shell -c.
func (in *instance) shell(script string) string {
	in.t.Helper()
	return in.admin("shell", "-c", script)
}

// mailbox creates a user mailbox with SMTP AUTH enabled for it.
func (in *instance) mailbox(name, password string) string {
	in.t.Helper()
	addr := name + "@contoso.com"
	in.admin("New-Mailbox", "-Name", name, "-PrimarySmtpAddress", addr, "-Password", password)
	in.admin("Set-CASMailbox", "-Identity", addr, "-SmtpClientAuthenticationDisabled", "$false")
	return addr
}

// accessLoopback and accessOff put the IMAP4 and POP3 listeners on free
// loopback ports, or turn them off, for tests that start serve without
// start(): their defaults are the standard ports on every address.
var (
	accessLoopback = []string{"--imap", "127.0.0.1:0", "--imaps", "127.0.0.1:0", "--pop3", "127.0.0.1:0", "--pop3s", "127.0.0.1:0"}
	accessOff      = []string{"--imap", "off", "--imaps", "off", "--pop3", "off", "--pop3s", "off"}
)

// accessOffTOML is accessOff in a configuration file.
const accessOffTOML = "imap = \"off\"\nimaps = \"off\"\npop3 = \"off\"\npop3s = \"off\"\n"

var listening = regexp.MustCompile(`msg=listening role=(\w+) addr=(\S+)`)

// start runs postern serve and waits until its listeners are up.
func (in *instance) start() {
	in.t.Helper()
	in.log = &syncBuffer{}
	args := []string{"serve", "--data", in.data, "--hostname", "mail.contoso.com",
		"--submission", "127.0.0.1:0", "--submissions", "127.0.0.1:0", "--mx", "127.0.0.1:0", "--resolver", emptyDNS,
	}
	args = append(args, accessLoopback...)
	args = append(args, in.extra...) // a test's own --resolver comes later and wins
	if len(in.wrap) > 0 {
		args = append(append(in.wrap[1:len(in.wrap):len(in.wrap)], binary), args...)
		in.cmd = exec.Command(in.wrap[0], args...)
	} else {
		in.cmd = exec.Command(binary, args...)
	}
	in.cmd.Stderr = in.log
	in.cmd.Stdout = in.log
	if err := in.cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	in.t.Cleanup(func() { in.stop() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		log := in.log.String()
		if strings.Contains(log, `msg="postern started"`) {
			ms := listening.FindAllStringSubmatch(log, -1)
			in.addrs = map[string]string{}
			for _, m := range ms {
				in.addrs[m[1]] = m[2]
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	in.t.Fatalf("server did not start:\n%s", in.log.String())
}

func (in *instance) stop() {
	if in.cmd == nil || in.cmd.Process == nil {
		return
	}
	in.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { in.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		in.cmd.Process.Kill()
		<-done
	}
	in.cmd = nil
}

// kill ends the server with SIGKILL: no shutdown code runs.
func (in *instance) kill() {
	in.cmd.Process.Kill()
	in.cmd.Wait()
	in.cmd = nil
}

func (in *instance) caFile() string { return filepath.Join(in.data, "tls", "cert.pem") }

func (in *instance) tlsConfig() *tls.Config {
	pem, err := os.ReadFile(in.caFile())
	if err != nil {
		in.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

// freeAddr returns a loopback address whose port was free a moment ago,
// for a listener the test starts (or leaves down) later.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// debianPython returns Debian's python3 (not one earlier on PATH, which
// lacks Debian's packages) when it can import the modules. Without them
// the test is skipped, except in CI, where .ci/run must have installed
// them.
func debianPython(t *testing.T, modules ...string) string {
	t.Helper()
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil || exec.Command(py, "-c", "import "+strings.Join(modules, ", ")).Run() != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Debian's python3 modules %v are not installed; .ci/run must install them", modules)
		}
		t.Skipf("Debian's python3 modules %v are not installed", modules)
	}
	return py
}

// folderCount returns ItemsInFolder for a mailbox folder.
func (in *instance) folderCount(identity, folder string) int {
	in.t.Helper()
	out := in.admin("shell", "-c", fmt.Sprintf("Get-MailboxFolderStatistics -Identity %s | Format-Table Name,ItemsInFolder", identity))
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, folder+" ") {
			f := strings.Fields(line)
			n, _ := strconv.Atoi(f[len(f)-1])
			return n
		}
	}
	in.t.Fatalf("folder %s not in:\n%s", folder, out)
	return 0
}

// smtpClient is a raw SMTP client that returns every reply verbatim.
type smtpClient struct {
	t    *testing.T
	conn net.Conn
	text *textproto.Conn
}

func dial(t *testing.T, addr string) *smtpClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, conn)
}

func dialTLS(t *testing.T, addr string, cfg *tls.Config) *smtpClient {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, conn)
}

func newClient(t *testing.T, conn net.Conn) *smtpClient {
	c := &smtpClient{t: t, conn: conn, text: textproto.NewConn(conn)}
	t.Cleanup(func() { c.conn.Close() })
	c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if got := c.read(); !strings.HasPrefix(got, "220 ") {
		t.Fatalf("greeting: %q", got)
	}
	return c
}

// read returns one reply; the lines of a multi-line reply joined by "\n".
func (c *smtpClient) read() string {
	c.t.Helper()
	var lines []string
	for {
		line, err := c.text.ReadLine()
		if err != nil {
			lines = append(lines, "ERR "+err.Error())
			return strings.Join(lines, "\n")
		}
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

// do sends a command line and returns the reply.
func (c *smtpClient) do(line string) string {
	c.t.Helper()
	if err := c.text.PrintfLine("%s", line); err != nil {
		return "ERR " + err.Error()
	}
	return c.read()
}

// expect sends a command and fails unless the reply starts with want.
func (c *smtpClient) expect(line, want string) string {
	c.t.Helper()
	got := c.do(line)
	if !strings.HasPrefix(got, want) {
		c.t.Fatalf("%s\n got: %q\nwant: %q...", line, got, want)
	}
	return got
}

func (c *smtpClient) startTLS(cfg *tls.Config) {
	c.t.Helper()
	c.expect("STARTTLS", "220 ")
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.conn = tc
	c.text = textproto.NewConn(tc)
	c.conn.SetDeadline(time.Now().Add(30 * time.Second))
}

// login does EHLO, STARTTLS, EHLO and AUTH PLAIN, returning the AUTH reply.
func (c *smtpClient) login(cfg *tls.Config, user, password string) string {
	c.t.Helper()
	c.expect("EHLO scanner.contoso.com", "250")
	c.startTLS(cfg)
	c.expect("EHLO scanner.contoso.com", "250")
	return c.do("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password)))
}

// send runs one transaction and returns the reply after the data.
func (c *smtpClient) send(from string, to []string, body string) string {
	c.t.Helper()
	if r := c.do("MAIL FROM:<" + from + ">"); !strings.HasPrefix(r, "250") {
		return r
	}
	for _, rc := range to {
		if r := c.do("RCPT TO:<" + rc + ">"); !strings.HasPrefix(r, "250") {
			c.do("RSET")
			return r
		}
	}
	if r := c.do("DATA"); !strings.HasPrefix(r, "354") {
		return r
	}
	w := c.text.DotWriter()
	io.WriteString(w, body)
	w.Close()
	return c.read()
}

// message builds a small message with CRLF line endings.
func message(from, to, subject string) string {
	return fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nHello from the copier.\r\n", from, to, subject)
}

// requireTool skips when an external client is missing (CI installs them).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; .ci/run must install it", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// lines returns the non-empty lines of s.
func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// messageHeader returns a header field of the message queued for (or
// delivered to) recipient, read from the database by python3's sqlite3.
// It is the one e2e read left on the SQLite schema: a queued message's
// content has no reader that does not depend on the store yet (Exchange
// Server's would be Export-Message); delivered mail is read over IMAP
// (deliveredHeader).
func (in *instance) messageHeader(t *testing.T, recipient, field string) string {
	t.Helper()
	py := requireTool(t, "python3")
	script := `import os, sqlite3, sys, email
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
row = db.execute("""SELECT COALESCE(b.data, m.body), m.body_seg, m.body_off, m.size FROM messages m
  LEFT JOIN message_bodies b ON b.message = m.id
  JOIN queue q ON q.message = m.id WHERE q.recipient = ? ORDER BY m.id DESC LIMIT 1""", (sys.argv[2],)).fetchone()
body = row[0] if row else b""
if row and row[1] is not None:  # a small body, in a segment file (README "Durability")
    with open(os.path.join(os.path.dirname(sys.argv[1]), "bodies", "%010d.seg" % row[1]), "rb") as f:
        f.seek(row[2])
        body = f.read(row[3])
print(email.message_from_bytes(body).get(sys.argv[3], "") if row else "")
`
	out, err := exec.Command(py, "-c", script, filepath.Join(in.data, "postern.db"), recipient, field).CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// deliveredHeader returns a header field of the newest message in a
// mailbox folder ("Inbox", "Junk Email"), read over IMAPS by python3's
// imaplib signed in as the mailbox: as a user reads it, not from the
// store's tables (which may change).
func (in *instance) deliveredHeader(t *testing.T, mailbox, password, folder, field string) string {
	t.Helper()
	py := requireTool(t, "python3")
	if strings.EqualFold(folder, "Inbox") {
		folder = "INBOX"
	}
	script := `import imaplib, ssl, sys, email
host, port, ca, user, pw, folder, field = sys.argv[1:8]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # the certificate names mail.contoso.com, not 127.0.0.1
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ctx)
m.login(user, pw)
typ, data = m.select('"%s"' % folder, readonly=True)
if typ != "OK":
    sys.exit("SELECT %s: %s" % (folder, data))
n = int(data[0])
if n > 0:
    typ, data = m.fetch(str(n), "(BODY.PEEK[HEADER])")
    print(email.message_from_bytes(data[0][1]).get(field, ""))
m.logout()
`
	host, port := hostPort(t, in.addrs["imaps"])
	out, err := exec.Command(py, "-c", script, host, port, in.caFile(), mailbox, password, folder, field).CombinedOutput()
	if err != nil {
		t.Fatalf("python3 imaplib: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// imapBodiesWithout reads every message of a mailbox's Inbox over IMAPS
// (python3's imaplib, signed in as the mailbox) and returns the sequence
// numbers of those whose whole text does not end with suffix, or "".
func (in *instance) imapBodiesWithout(t *testing.T, mailbox, password, suffix string) string {
	t.Helper()
	py := requireTool(t, "python3")
	script := `import imaplib, ssl, sys
host, port, ca, user, pw, suffix = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # the certificate names mail.contoso.com, not 127.0.0.1
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ctx)
m.login(user, pw)
typ, data = m.select("INBOX", readonly=True)
n = int(data[0])
bad = []
for i in range(1, n + 1):
    typ, data = m.fetch(str(i), "(BODY.PEEK[])")
    if typ != "OK" or not data[0][1].endswith(suffix.encode()):
        bad.append(str(i))
m.logout()
print(" ".join(bad) if bad else "")
print("read", n, file=sys.stderr)
`
	host, port := hostPort(t, in.addrs["imaps"])
	cmd := exec.Command(py, "-c", script, host, port, in.caFile(), mailbox, password, suffix)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3 imaplib: %v\n%s%s", err, out, stderr.String())
	}
	t.Logf("imaplib: %s", strings.TrimSpace(stderr.String()))
	return strings.TrimSpace(string(out))
}

// procStatus reads a field such as VmRSS or VmHWM (in KiB) of the server
// process from /proc; safe to call from any goroutine.
func (in *instance) procStatus(field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", in.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, in.cmd.Process.Pid)
}

// procKiB is procStatus for the test's own goroutine: a failure ends the test.
func (in *instance) procKiB(field string) int64 {
	in.t.Helper()
	n, err := in.procStatus(field)
	if err != nil {
		in.t.Fatal(err)
	}
	return n
}

// waitUntil polls cond until it holds or timeout passes, and reports
// whether it held: tests wait for a count or a condition with a generous
// deadline, never for a fixed wall-clock window.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
