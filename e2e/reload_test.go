package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// startWithConfig runs postern serve with the configuration file and only
// the flags given (the harness's start passes listener flags, which would
// override the file), and waits until it is up.
func (in *instance) startWithConfig(file string, flags ...string) {
	in.t.Helper()
	in.log = &syncBuffer{}
	args := append([]string{"serve", "--config", file, "--data", in.data}, flags...)
	in.cmd = exec.Command(binary, args...)
	in.cmd.Stdout, in.cmd.Stderr = in.log, in.log
	if err := in.cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	in.t.Cleanup(func() { in.stop() })
	if !waitUntil(20*time.Second, func() bool { return strings.Contains(in.log.String(), `msg="postern started"`) }) {
		in.t.Fatalf("server did not start:\n%s", in.log.String())
	}
	in.addrs = map[string]string{}
	for _, m := range listening.FindAllStringSubmatch(in.log.String(), -1) {
		in.addrs[m[1]] = m[2]
	}
}

// sighup sends SIGHUP and waits for the reload to end, successful or not:
// the log gains one more line that says so.
func (in *instance) sighup() {
	in.t.Helper()
	done := func() int {
		log := in.log.String()
		return strings.Count(log, `msg="configuration reloaded"`) + strings.Count(log, `msg="configuration not reloaded`)
	}
	before := done()
	if err := in.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		in.t.Fatal(err)
	}
	if !waitUntil(30*time.Second, func() bool { return done() > before }) {
		in.t.Fatalf("no end of reload logged:\n%s", in.log.String())
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	// Replaced whole, as editors and configuration management do.
	if err := os.WriteFile(path+".new", []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// greet connects to addr and returns the first reply line ("220 ...",
// "421 ..."), or "" when the connection is refused.
func greet(addr string) (string, net.Conn) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", nil
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line, c
}

// admittedOf opens connections to addr until one is not greeted with 220
// (at most limit+1) and reports how many were; it closes them all.
func admittedOf(addr string, limit int) int {
	n := 0
	for range limit + 1 {
		line, c := greet(addr)
		if c != nil {
			defer c.Close()
		}
		if !strings.HasPrefix(line, "220 ") {
			break
		}
		n++
	}
	return n
}

// TestReloadConfiguration: SIGHUP applies an edited configuration file
// without a restart. The submission listener moves to another port (the
// new one accepts, the old one refuses), a session in the middle of a
// message on the old listener completes it (250), the lowered
// per-address cap applies to new connections, the log level changes, and
// a key that needs a restart is kept with a warning. Then an invalid file
// changes nothing and its error names the file and line.
func TestReloadConfiguration(t *testing.T) {
	in := newInstance(t)
	user := in.mailbox("scanner", "Scan-2-Mail!")
	file := filepath.Join(t.TempDir(), "postern.toml")
	oldSub, newSub := freeAddr(t), freeAddr(t)
	conf := func(sub string, perIP int, level string, hostname string) string {
		return fmt.Sprintf("hostname = %q\nsubmission = %q\nsubmissions = \"off\"\nmx = \"127.0.0.1:0\"\nresolver = %q\n"+
			"max_connections_per_ip = %d\nlog_level = %q\nadmin = \"127.0.0.1:0\"\nmetrics_token = %q\n"+accessOffTOML, hostname, sub, emptyDNS, perIP, level, metricsToken)
	}
	writeFile(t, file, conf(oldSub, 50, "info", "mail.contoso.com"))
	in.startWithConfig(file)
	if in.addrs["submission"] != oldSub {
		t.Fatalf("submission at %q, want %q", in.addrs["submission"], oldSub)
	}

	// A session in the middle of a message on the old listener.
	busy := dial(t, oldSub)
	if r := busy.login(in.tlsConfig(), user, "Scan-2-Mail!"); !strings.HasPrefix(r, "235") {
		t.Fatalf("AUTH: %q", r)
	}
	busy.expect("MAIL FROM:<"+user+">", "250")
	busy.expect("RCPT TO:<"+user+">", "250")
	busy.expect("DATA", "354")
	io.WriteString(busy.conn, "From: "+user+"\r\nTo: "+user+"\r\nSubject: across a reload\r\n\r\nfirst half\r\n")

	writeFile(t, file, conf(newSub, 2, "debug", "other.contoso.com"))
	in.sighup()
	log := in.log.String()
	for _, want := range []string{
		`msg="configuration reloaded" changed=submission,max_connections_per_ip,log_level kept=hostname`,
		`msg="hostname: change needs a restart; keeping mail.contoso.com"`,
		`msg=listening role=submission addr=` + newSub,
		`level=DEBUG msg="configuration key changed" key=max_connections_per_ip old=50 new=2`,
		`msg="listener closed; its open sessions go on" role=submission addr=` + oldSub,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}

	if line, c := greet(oldSub); c != nil {
		c.Close()
		t.Errorf("the old submission port still accepts: %q", line)
	}
	// The session from before finishes its message on the old connection.
	io.WriteString(busy.conn, "second half\r\n.\r\n")
	if r := busy.read(); !strings.HasPrefix(r, "250") {
		t.Fatalf("the message in progress across the reload: %q", r)
	}
	busy.expect("QUIT", "221")

	// The new port accepts, under the new cap of 2 connections per
	// address. Connections closed just before may take a moment to be
	// released, so the count is awaited.
	if !waitUntil(30*time.Second, func() bool { return admittedOf(newSub, 5) == 2 }) {
		t.Fatalf("new port: %d connections admitted, want 2 (max_connections_per_ip)", admittedOf(newSub, 5))
	}
	if got := in.folderCount(user, "Inbox"); got != 1 {
		t.Errorf("Inbox holds %d messages, want the one sent across the reload", got)
	}

	// An invalid file: nothing changes, and the error names file and line.
	writeFile(t, file, "hostname = \"mail.contoso.com\"\nsubmission = \"127.0.0.1:1\"\nmax_connections_per_ip = \"many\"\n")
	in.sighup()
	log = in.log.String()
	if !strings.Contains(log, `msg="configuration not reloaded; the running settings stay" file=`+file) ||
		!strings.Contains(log, file+":3:") {
		t.Fatalf("the refusal does not name the file and line:\n%s", log)
	}
	if line, c := greet(newSub); c == nil || !strings.HasPrefix(line, "220 ") {
		t.Fatalf("after an invalid file the server no longer serves on %s: %q", newSub, line)
	} else {
		c.Close()
	}
	if !waitUntil(30*time.Second, func() bool { return admittedOf(newSub, 5) == 2 }) {
		t.Fatalf("after an invalid file the cap changed: %d admitted", admittedOf(newSub, 5))
	}
	// A file that parses but fails check-config's checks is refused too.
	writeFile(t, file, conf(newSub, 2, "loud", "mail.contoso.com"))
	in.sighup()
	if !strings.Contains(in.log.String(), file+":7:13: log_level:") {
		t.Fatalf("a bad log level was not refused by line:\n%s", in.log.String())
	}

	m := in.scrape(t, in.addrs["admin"])
	if m[`postern_config_reloads_total{result="success"}`] != 1 || m[`postern_config_reloads_total{result="failure"}`] != 2 {
		t.Errorf("reload counters: success %v, failure %v; want 1 and 2",
			m[`postern_config_reloads_total{result="success"}`], m[`postern_config_reloads_total{result="failure"}`])
	}
	if ts := m["postern_config_last_reload_success_timestamp_seconds"]; ts < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("last successful reload at %v", ts)
	}
}

// TestReloadUnderLoad: clients sending a message per connection while the
// configuration is reloaded several times (the MX listener moving back and
// forth, caps, idle timeout and log level changing) lose no session and
// no message.
func TestReloadUnderLoad(t *testing.T) {
	in := newInstance(t)
	user := in.mailbox("scanner", "Scan-2-Mail!")
	file := filepath.Join(t.TempDir(), "postern.toml")
	sub := freeAddr(t)
	mx := []string{freeAddr(t), freeAddr(t)}
	conf := func(i int) string {
		return fmt.Sprintf("hostname = \"mail.contoso.com\"\nsubmission = %q\nsubmissions = \"off\"\nmx = %q\nresolver = %q\n"+
			"connection_rate_per_ip = 0\nmax_connections_per_ip = %d\nidle_timeout = %q\nlog_level = %q\n"+accessOffTOML,
			sub, mx[i%2], emptyDNS, 40+i, fmt.Sprintf("%dm", 4+i%2), []string{"info", "debug"}[i%2])
	}
	writeFile(t, file, conf(0))
	in.startWithConfig(file)
	tlsCfg := in.tlsConfig()

	var sent, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := sendOnce(sub, tlsCfg, user, fmt.Sprintf("load %d-%d", w, i)); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				sent.Add(1)
			}
		})
	}
	for i := 1; i <= 6; i++ {
		// Each reload lands while messages are in flight.
		target := sent.Load() + 3
		if !waitUntil(60*time.Second, func() bool { return sent.Load() >= target || failed.Load() > 0 }) {
			t.Fatalf("the clients stalled at %d messages", sent.Load())
		}
		writeFile(t, file, conf(i))
		in.sighup()
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d sessions failed across reloads; first: %v\n%s", n, n+sent.Load(), firstErr.Load(), in.log.String())
	}
	if c := strings.Count(in.log.String(), `msg="configuration reloaded"`); c != 6 {
		t.Errorf("%d reloads logged, want 6", c)
	}
	// Every acknowledged message is in the store (the message trace; the
	// Inbox takes 30 a minute from one sender, the rest are paced).
	trace := in.shell("Get-MessageTrace -PageSize 5000 | Format-Table Subject")
	if got := strings.Count(trace, "load "); got != int(sent.Load()) {
		t.Errorf("the message trace holds %d messages, %d were acknowledged:\n%s", got, sent.Load(), trace)
	}
	if line, c := greet(mx[0]); c == nil || !strings.HasPrefix(line, "220 ") {
		t.Errorf("mx not back on %s after the last reload: %q", mx[0], line)
	} else {
		c.Close()
	}
	t.Logf("%d messages across 6 reloads", sent.Load())
}

// sendOnce sends one message over a new connection with Go's net/smtp
// client (STARTTLS, AUTH PLAIN), returning what went wrong rather than
// failing the test: it runs in the client goroutines.
func sendOnce(addr string, tlsCfg *tls.Config, user, subject string) error {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	c, err := smtp.NewClient(conn, "localhost")
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if err := c.Hello("scanner.contoso.com"); err != nil {
		return err
	}
	if err := c.StartTLS(tlsCfg); err != nil {
		return fmt.Errorf("STARTTLS: %w", err)
	}
	if err := c.Auth(smtp.PlainAuth("", user, "Scan-2-Mail!", "localhost")); err != nil {
		return fmt.Errorf("AUTH: %w", err)
	}
	if err := c.Mail(user); err != nil {
		return fmt.Errorf("MAIL: %w", err)
	}
	if err := c.Rcpt(user); err != nil {
		return fmt.Errorf("RCPT: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	io.WriteString(w, message(user, user, subject))
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of data: %w", err)
	}
	return c.Quit()
}

// TestReloadSystemdNotify: under a fake systemd, a reload is announced
// with RELOADING=1 and MONOTONIC_USEC (what Type=notify-reload requires)
// and its end with READY=1, so `systemctl reload` waits for it.
func TestReloadSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	in := newInstance(t)
	file := filepath.Join(t.TempDir(), "postern.toml")
	writeFile(t, file, fmt.Sprintf("submission = \"127.0.0.1:0\"\nsubmissions = \"off\"\nmx = \"off\"\nresolver = %q\n"+accessOffTOML, emptyDNS))
	in.startWithConfig(file)
	read := func() string {
		buf := make([]byte, 4096)
		l.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := l.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v\n%s", err, in.log.String())
		}
		return string(buf[:n])
	}
	if got := read(); !strings.HasPrefix(got, "READY=1\n") {
		t.Fatalf("at start: %q", got)
	}
	in.cmd.Process.Signal(syscall.SIGHUP)
	if got := read(); !strings.HasPrefix(got, "RELOADING=1\n") || !strings.Contains(got, "\nMONOTONIC_USEC=") {
		t.Fatalf("at reload: %q", got)
	}
	if got := read(); !strings.HasPrefix(got, "READY=1\n") {
		t.Fatalf("after the reload: %q", got)
	}
}
