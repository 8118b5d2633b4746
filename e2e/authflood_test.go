package e2e

// AUTH under attack (issue 11, "Bounded resources"): a flood of password
// attempts is answered within bounded memory while a legitimate device keeps
// working, password guessing for one account is stopped across addresses
// (smart lockout) while a familiar address keeps working, and parallel
// guesses from one address verify no more passwords than the documented
// budget.

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// authConfig writes a configuration file with an [auth] section and
// returns the flags that load it.
func authConfig(t *testing.T, section string) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "postern.toml")
	if err := os.WriteFile(p, []byte("[auth]\n"+section), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--config", p}
}

// rawConn is an SMTP client for many goroutines: errors are returned, never
// reported through t, and it binds to a chosen loopback source address.
type rawConn struct {
	conn net.Conn
	text *textproto.Conn
}

// dialAuth connects from source (a 127.0.0.0/8 address) to the implicit
// TLS listener, checks the greeting and says EHLO. A refusal at connect
// (421 greeting) is returned as the reply with a nil connection.
func dialAuth(source, addr string, cfg *tls.Config) (*rawConn, string, error) {
	d := &net.Dialer{Timeout: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, "", err
	}
	conn.SetDeadline(time.Now().Add(90 * time.Second))
	c := &rawConn{conn: conn, text: textproto.NewConn(conn)}
	if g, err := c.read(); err != nil || !strings.HasPrefix(g, "220") {
		conn.Close()
		return nil, g, err
	}
	if r, err := c.do("EHLO flood.test"); err != nil || !strings.HasPrefix(r, "250") {
		conn.Close()
		return nil, r, fmt.Errorf("EHLO: %q %v", r, err)
	}
	return c, "", nil
}

func (c *rawConn) read() (string, error) {
	var last string
	for {
		line, err := c.text.ReadLine()
		if err != nil {
			return last, err
		}
		last = line
		if len(line) < 4 || line[3] != '-' {
			return line, nil
		}
	}
}

func (c *rawConn) do(line string) (string, error) {
	if err := c.text.PrintfLine("%s", line); err != nil {
		return "", err
	}
	return c.read()
}

func (c *rawConn) auth(user, password string) (string, error) {
	return c.do("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password)))
}

func (c *rawConn) close() {
	c.text.PrintfLine("QUIT")
	c.conn.Close()
}

// attempt makes one connection from source and one AUTH; it returns the
// AUTH reply's first three characters, or "connect:<reply>" when the server
// refused the connection, or "error".
func attempt(source, addr string, cfg *tls.Config, user, password string) string {
	c, greet, err := dialAuth(source, addr, cfg)
	if c == nil {
		if greet != "" && err == nil {
			return "connect:" + greet[:min(3, len(greet))]
		}
		return "error"
	}
	defer c.close()
	r, err := c.auth(user, password)
	if err != nil || len(r) < 3 {
		return "error"
	}
	return r[:3]
}

// signInAndSend signs in from source and sends one message; it returns
// the first refusal or "" when the message was accepted.
func signInAndSend(source, addr string, cfg *tls.Config, user, password, to string) string {
	c, greet, err := dialAuth(source, addr, cfg)
	if c == nil {
		return fmt.Sprintf("connect: %q %v", greet, err)
	}
	defer c.close()
	if r, err := c.auth(user, password); err != nil || !strings.HasPrefix(r, "235") {
		return fmt.Sprintf("AUTH: %q %v", r, err)
	}
	for _, cmd := range []string{"MAIL FROM:<" + user + ">", "RCPT TO:<" + to + ">"} {
		if r, err := c.do(cmd); err != nil || !strings.HasPrefix(r, "250") {
			return fmt.Sprintf("%s: %q %v", cmd, r, err)
		}
	}
	if r, err := c.do("DATA"); err != nil || !strings.HasPrefix(r, "354") {
		return fmt.Sprintf("DATA: %q %v", r, err)
	}
	w := c.text.DotWriter()
	fmt.Fprint(w, message(user, to, "during the flood"))
	w.Close()
	if r, err := c.read(); err != nil || !strings.HasPrefix(r, "250") {
		return fmt.Sprintf("end of DATA: %q %v", r, err)
	}
	return ""
}

// counter counts replies by kind.
type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counter) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[k]++
}

func (c *counter) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func (c *counter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprint(c.m)
}

// TestAuthFlood: 1,000 AUTH attempts at once from 250 loopback addresses
// (known and unknown users, wrong passwords), each worker trying up to three
// times; the server's peak RSS stays under 400 MiB, the excess gets
// "454 4.7.0 Temporary authentication failure", and a device at 127.0.0.9
// signs in and sends a message while the flood runs.
func TestAuthFlood(t *testing.T) {
	in := newInstance(t)
	in.mailbox("sean", "Sean-Pa55!")
	in.mailbox("chris", "Chris-Pa55!")
	scanner := in.mailbox("scanner", "Scanner-Pa55!")
	in.start()
	addr := in.addrs["submissions"]
	cfg := in.tlsConfig()
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(64)

	// The device signed in before (as a scanner does all day): its login
	// is cached and its address familiar.
	if r := signInAndSend("127.0.0.9", addr, cfg, scanner, "Scanner-Pa55!", scanner); r != "" {
		t.Fatalf("before the flood: %s", r)
	}
	baseline := in.procKiB("VmRSS")

	const workers, tries, addresses = 1000, 3, 250
	var replies counter
	var peakRSS atomic.Int64
	stop := make(chan struct{})
	samplerDone := make(chan struct{})
	go func() { // sample VmRSS besides the kernel's VmHWM
		defer close(samplerDone)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", in.cmd.Process.Pid)); err == nil {
				for _, l := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
						n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
						if n > peakRSS.Load() {
							peakRSS.Store(n)
						}
					}
				}
			}
		}
	}()

	users := func(w, try int) string {
		switch w % 3 {
		case 0:
			return "sean@contoso.com"
		case 1:
			return "chris@contoso.com"
		}
		return fmt.Sprintf("ghost%d-%d@contoso.com", w, try) // unknown, each name once
	}
	var wg sync.WaitGroup
	var attempts, unknownVerified atomic.Int64
	begin := make(chan struct{})
	floodStart := time.Now()
	for w := range workers {
		source := fmt.Sprintf("127.0.1.%d", 1+w%addresses)
		wg.Go(func() {
			<-begin
			for try := range tries {
				select {
				case <-stop:
					return
				default:
				}
				r := attempt(source, addr, cfg, users(w, try), fmt.Sprintf("guess-%d-%d", w, try))
				replies.add(r)
				if w%3 == 2 && r == "535" {
					unknownVerified.Add(1) // each unknown name is tried once: never locked, so verified
				}
				attempts.Add(1)
			}
		})
	}
	close(begin)

	// The device comes back once the server is refusing verifications
	// (the gate is full). A real client retries a 454; so does this one.
	deadline := time.Now().Add(2 * time.Minute)
	for replies.get("454") == 0 {
		if time.Now().After(deadline) || attempts.Load() == workers*tries {
			close(stop)
			t.Fatalf("the flood never filled the verification gate: %v", &replies)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var legit string
	for {
		legit = signInAndSend("127.0.0.9", addr, cfg, scanner, "Scanner-Pa55!", scanner)
		if legit == "" || !strings.Contains(legit, `"454`) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	atDevice := attempts.Load()
	close(stop)
	wg.Wait()
	elapsed := time.Since(floodStart)
	<-samplerDone
	hwm := in.procKiB("VmHWM")
	t.Logf("flood: %d attempts in %v, replies %v (%d verifications of unknown names, %.0f/s); device served after %d of them; RSS baseline %d KiB, sampled peak %d KiB, VmHWM %d KiB",
		attempts.Load(), elapsed.Round(time.Millisecond), &replies, unknownVerified.Load(), float64(unknownVerified.Load())/elapsed.Seconds(),
		atDevice, baseline, peakRSS.Load(), hwm)
	if legit != "" {
		t.Fatalf("the device was not served during the flood: %s", legit)
	}
	if hwm >= 400<<10 {
		t.Fatalf("peak RSS %d KiB, want under 400 MiB", hwm)
	}
	// Every attempt got a decided AUTH reply: 535 (verified, or locked
	// out), 454 (gate full), 421 (address throttled). Nothing else.
	answered := replies.get("535") + replies.get("454") + replies.get("421")
	if answered+replies.get("connect:421") != int(attempts.Load()) {
		t.Fatalf("unexpected replies: %v", &replies)
	}
	if replies.get("535") == 0 {
		t.Fatalf("nothing was verified: %v", &replies)
	}
	// The server is still answering normally afterwards.
	if r := signInAndSend("127.0.0.9", addr, cfg, scanner, "Scanner-Pa55!", scanner); r != "" {
		t.Fatalf("after the flood: %s", r)
	}
}

// TestAuthSmartLockout: ten wrong passwords for one account, each from a
// different address (the per-address throttle never triggers), lock the
// account for unfamiliar addresses — the right password from a new address
// gets the same 535 5.7.3 as a wrong one — while the address the device
// signed in from keeps working; the lockout ends after its duration.
func TestAuthSmartLockout(t *testing.T) {
	in := newInstance(t, authConfig(t, "lockout_duration = \"3s\"\n")...)
	sean := in.mailbox("sean", "Sean-Pa55!")
	in.start()
	addr := in.addrs["submissions"]
	cfg := in.tlsConfig()
	if r := signInAndSend("127.0.0.20", addr, cfg, sean, "Sean-Pa55!", sean); r != "" {
		t.Fatalf("familiar address, first sign-in: %s", r)
	}
	for i := range 10 {
		if r := attempt(fmt.Sprintf("127.0.2.%d", i+1), addr, cfg, sean, fmt.Sprint("guess", i)); r != "535" {
			t.Fatalf("guess %d: %s", i, r)
		}
	}
	c, _, err := dialAuth("127.0.2.50", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := c.auth(sean, "Sean-Pa55!"); r != "535 5.7.3 Authentication unsuccessful" {
		t.Fatalf("right password from an unfamiliar address during the lockout: %q", r)
	}
	c.close()
	if r := signInAndSend("127.0.0.20", addr, cfg, sean, "Sean-Pa55!", sean); r != "" {
		t.Fatalf("familiar address during the lockout: %s", r)
	}
	// The lockout is temporary: a new address gets in once it is over.
	for i := 0; ; i++ {
		r := attempt(fmt.Sprintf("127.0.3.%d", i+1), addr, cfg, sean, "Sean-Pa55!")
		if r == "235" {
			break
		}
		if r != "535" || i > 100 {
			t.Fatalf("after the lockout: %s (try %d)", r, i)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestAuthParallelGuesses: 30 wrong passwords for one account sent at
// once from one address verify at most 10 (the per-address budget, counted
// with the attempts in flight): at most ten 535 replies, the rest 421
// (address locked out) or 454 (budget held by attempts in flight). The gate
// is widened so that it cannot hide a non-atomic throttle.
func TestAuthParallelGuesses(t *testing.T) {
	in := newInstance(t, authConfig(t, "verify_per_address = 64\nverify_queue = 200\nverify_wait = \"1m\"\n")...)
	sean := in.mailbox("sean", "Sean-Pa55!")
	in.start()
	addr := in.addrs["submissions"]
	cfg := in.tlsConfig()
	const n = 30
	// Connect and say EHLO first, then send every AUTH at once.
	conns := make([]*rawConn, 0, n)
	for len(conns) < n {
		c, greet, err := dialAuth("127.0.4.1", addr, cfg)
		if err != nil || c == nil {
			t.Fatalf("connection %d: %q %v", len(conns), greet, err)
		}
		conns = append(conns, c)
	}
	var replies counter
	var wg sync.WaitGroup
	begin := make(chan struct{})
	for i, c := range conns {
		wg.Go(func() {
			defer c.close()
			<-begin
			r, err := c.auth(sean, fmt.Sprint("guess", i))
			if err != nil {
				replies.add("error")
				return
			}
			replies.add(r[:min(3, len(r))])
		})
	}
	close(begin)
	wg.Wait()
	t.Logf("replies: %v", &replies)
	if got := replies.get("535"); got < 1 || got > 10 {
		t.Fatalf("%d guesses verified (535), want 1..10: %v", got, &replies)
	}
	if replies.get("535")+replies.get("421")+replies.get("454") != n {
		t.Fatalf("unexpected replies: %v", &replies)
	}
	// The address is now locked out, even with the right password.
	if r := attempt("127.0.4.1", addr, cfg, sean, "Sean-Pa55!"); r != "421" {
		t.Fatalf("after ten failures: %s", r)
	}
}
