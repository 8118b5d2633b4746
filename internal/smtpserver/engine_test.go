package smtpserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"postern.dev/postern/internal/testcert"
	"postern.dev/postern/internal/testlog"
)

// recorder is a Session that records what it was asked and accepts all.
type recorder struct {
	mu     sync.Mutex
	events []string
	log    *testlog.Buffer
}

func (r *recorder) add(e string) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }
func (r *recorder) seen() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events, "|")
}

type recSession struct{ r *recorder }

func (s recSession) Reset()        {}
func (s recSession) Logout() error { return nil }
func (s recSession) Mail(from string, _ *smtp.MailOptions) error {
	s.r.add("MAIL " + from)
	return nil
}
func (s recSession) Rcpt(to string, _ *smtp.RcptOptions) error { s.r.add("RCPT " + to); return nil }
func (s recSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.r.add("DATA " + string(b))
	return nil
}

// startEngine serves on loopback with a recording backend.
func startEngine(t testing.TB, tune func(*Server)) (string, *recorder, *Server) {
	t.Helper()
	rec := &recorder{}
	rec.log = &testlog.Buffer{}
	srv := &Server{
		Log:             slog.New(slog.NewTextHandler(rec.log, nil)),
		Backend:         BackendFunc(func(*Conn) (Session, error) { return recSession{rec}, nil }),
		Hostname:        "mx.test",
		MaxMessageBytes: 1 << 20, MaxLineLength: 100, MaxAuthLineLength: 1000,
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
	}
	if tune != nil {
		tune(srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return l.Addr().String(), rec, srv
}

type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialEngine(t *testing.T, addr string) *client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	if got := c.read(); !strings.HasPrefix(got, "220 ") {
		t.Fatalf("greeting %q", got)
	}
	return c
}

// read returns one whole reply (its last line), or "" when the server
// closed the connection.
func (c *client) read() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return ""
		}
		if len(line) < 4 || line[3] != '-' {
			return strings.TrimRight(line, "\r\n")
		}
	}
}

func (c *client) expect(cmd, want string) string {
	c.t.Helper()
	io.WriteString(c.conn, cmd+"\r\n")
	got := c.read()
	if !strings.HasPrefix(got, want) {
		c.t.Fatalf("%q: got %q, want %q", cmd, got, want)
	}
	return got
}

func TestUnknownCommandsOfAnyLength(t *testing.T) {
	addr, _, _ := startEngine(t, nil)
	for _, verb := range []string{"X", "XY", "XYZ", "FROB", "FOOBAR", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGHIJ", "X Y", "\x01\x02"} {
		c := dialEngine(t, addr)
		// Exchange's reply, which echoes nothing of what the client sent.
		if got := c.expect(verb, "500 5.3.3 Unrecognized command"); got != "500 5.3.3 Unrecognized command" {
			t.Errorf("%q echoed as %q", verb, got)
		}
	}
}

func TestTooManyBadCommandsClose(t *testing.T) {
	addr, _, _ := startEngine(t, nil)
	c := dialEngine(t, addr)
	for i := 0; i < 3; i++ {
		c.expect("FROB", "500 5.3.3")
	}
	io.WriteString(c.conn, "FROB\r\n")
	c.read()
	if got := c.read(); got != "421 4.7.0 Too many errors on this connection, closing transmission channel" {
		t.Fatalf("after 4 bad commands: %q", got)
	}
	if got := c.read(); got != "" {
		t.Fatalf("connection still open: %q", got)
	}
}

// Half a command line is never executed: not when the idle timeout ends
// it, not when the client closes.
func TestHalfACommandIsNeverRun(t *testing.T) {
	addr, rec, _ := startEngine(t, func(s *Server) { s.ReadTimeout = 300 * time.Millisecond })
	c := dialEngine(t, addr)
	c.expect("EHLO x", "250")
	io.WriteString(c.conn, "MAIL FROM:<a@b.example>")
	if got := c.read(); !strings.HasPrefix(got, "451 4.7.0 Timeout waiting for client input") {
		t.Fatalf("after half a line: %q", got)
	}
	c2 := dialEngine(t, addr)
	c2.expect("EHLO x", "250")
	io.WriteString(c2.conn, "MAIL FROM:<c@d.example>")
	c2.conn.(*net.TCPConn).CloseWrite()
	if got := c2.read(); got != "" {
		t.Fatalf("after half a line and EOF: %q", got)
	}
	if s := rec.seen(); strings.Contains(s, "MAIL") {
		t.Fatalf("half a line was run: %s", s)
	}
}

// A client trickling a command byte by byte cannot extend the idle
// timeout; one sending a message steadily is never cut off, however long
// the message takes.
func TestTimeoutsCountProgress(t *testing.T) {
	addr, rec, _ := startEngine(t, func(s *Server) { s.ReadTimeout = time.Second })
	c := dialEngine(t, addr)
	c.expect("EHLO x", "250")
	go func() {
		for _, b := range []byte("NOOP NOOP NOOP NOOP NOOP NOOP\r\n") {
			if _, err := c.conn.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	if got := c.read(); !strings.HasPrefix(got, "451 4.7.0 Timeout waiting for client input") {
		t.Fatalf("trickled command: %q", got)
	}

	d := dialEngine(t, addr)
	d.expect("EHLO x", "250")
	d.expect("MAIL FROM:<a@b.example>", "250")
	d.expect("RCPT TO:<c@d.example>", "250")
	d.expect("DATA", "354")
	// 30 lines, one every 100 ms: three times the idle timeout in total,
	// and never silent for more than a tenth of it.
	for i := 0; i < 30; i++ {
		io.WriteString(d.conn, "line\r\n")
		time.Sleep(100 * time.Millisecond)
	}
	d.expect(".", "250")
	if !strings.Contains(rec.seen(), "DATA "+strings.Repeat("line\r\n", 30)) {
		t.Fatalf("message: %s", rec.seen())
	}
}

// SetReadTimeout (a reload) applies to connections accepted after it; one
// open before keeps the timeout it started with.
func TestSetReadTimeout(t *testing.T) {
	addr, _, srv := startEngine(t, func(s *Server) { s.ReadTimeout = time.Minute })
	before := dialEngine(t, addr)
	before.expect("EHLO x", "250")
	srv.SetReadTimeout(300 * time.Millisecond)
	after := dialEngine(t, addr)
	after.expect("EHLO x", "250")
	if got := after.read(); !strings.HasPrefix(got, "451 4.7.0 Timeout waiting for client input") {
		t.Fatalf("a connection after the change: %q, want the idle timeout", got)
	}
	// before has been idle longer than after was when it timed out.
	before.expect("NOOP", "250")
}

// Commands pipelined before STARTTLS are dropped, not run under TLS
// (RFC 3207 section 4.2).
func TestStartTLSDropsPipelinedCleartext(t *testing.T) {
	cfg := testcert.New(t, "mx.test").ServerConfig()
	addr, rec, _ := startEngine(t, func(s *Server) { s.TLSConfig = cfg })
	c := dialEngine(t, addr)
	c.expect("EHLO x", "250")
	io.WriteString(c.conn, "STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n")
	if got := c.read(); !strings.HasPrefix(got, "220") {
		t.Fatalf("STARTTLS: %q", got)
	}
	tc := tlsClient(c.conn)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c2 := &client{t: t, conn: tc, r: bufio.NewReader(tc)}
	c2.expect("EHLO x", "250")
	c2.expect("MAIL FROM:<real@good.example>", "250")
	if s := rec.seen(); strings.Contains(s, "injected") {
		t.Fatalf("injected command ran: %s", s)
	}
}

func TestBdat(t *testing.T) {
	addr, rec, _ := startEngine(t, nil)
	c := dialEngine(t, addr)
	c.expect("EHLO x", "250")
	io.WriteString(c.conn, "BDAT 3\r\nabc")
	if got := c.read(); got != "503 5.5.2 Need rcpt command" {
		t.Fatalf("BDAT before MAIL: %q", got)
	}
	c.expect("MAIL FROM:<a@b.example>", "250")
	c.expect("RCPT TO:<c@d.example>", "250")
	io.WriteString(c.conn, "BDAT 5\r\nhello")
	if got := c.read(); !strings.HasPrefix(got, "250 2.6.0 CHUNK received OK, 5 octets") {
		t.Fatalf("first chunk: %q", got)
	}
	io.WriteString(c.conn, "BDAT 8 LAST\r\n, world\n")
	if got := c.read(); !strings.HasPrefix(got, "250") {
		t.Fatalf("last chunk: %q", got)
	}
	if !strings.Contains(rec.seen(), "DATA hello, world\n") {
		t.Fatalf("message: %s", rec.seen())
	}
	c.expect("NOOP", "250")
}

func TestConnectionCaps(t *testing.T) {
	addr, _, _ := startEngine(t, func(s *Server) {
		s.Admission = NewAdmission(Limits{MaxConnectionsPerIP: 2})
	})
	a := dialEngine(t, addr)
	dialEngine(t, addr)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got, _ := bufio.NewReader(conn).ReadString('\n')
	if want := "421 4.3.2 The maximum number of concurrent connections has exceeded a limit, closing transmission channel\r\n"; got != want {
		t.Fatalf("third connection: %q", got)
	}
	// Another address is not affected.
	other, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if got, _ := bufio.NewReader(other).ReadString('\n'); !strings.HasPrefix(got, "220 ") {
		t.Fatalf("other address: %q", got)
	}
	// A slot comes free when a connection ends.
	a.expect("QUIT", "221")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if strings.HasPrefix(got, "220 ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot after QUIT: %q", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAdmission(t *testing.T) {
	now := time.Unix(1000, 0)
	ip := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	for _, tc := range []struct {
		name   string
		limits Limits
		steps  []string // "+addr" admit expected, "-addr" refusal expected, "r addr" release, "t30s" time passes
	}{
		{"global cap", Limits{MaxConnections: 2}, []string{"+10.0.0.1", "+10.0.0.2", "-10.0.0.3", "r 10.0.0.1", "+10.0.0.3"}},
		{"per address", Limits{MaxConnectionsPerIP: 1}, []string{"+10.0.0.1", "-10.0.0.1", "+10.0.0.2", "r 10.0.0.1", "+10.0.0.1"}},
		{"IPv6 by /64", Limits{MaxConnectionsPerIP: 1}, []string{"+2001:db8::1", "-2001:db8::2", "+2001:db8:0:1::1"}},
		{"IPv4-mapped is IPv4", Limits{MaxConnectionsPerIP: 1}, []string{"+10.0.0.1", "-::ffff:10.0.0.1"}},
		{"rate", Limits{ConnectionRatePerIP: 2}, []string{"+10.0.0.1", "r 10.0.0.1", "+10.0.0.1", "r 10.0.0.1", "-10.0.0.1", "+10.0.0.2", "t30s", "+10.0.0.1", "r 10.0.0.1", "-10.0.0.1"}},
		{"no limits", Limits{}, []string{"+10.0.0.1", "+10.0.0.1", "+10.0.0.1"}},
		// SetLimits (a reload): open connections stay; an address over a
		// lowered cap waits until enough of its own end.
		{"per address lowered", Limits{MaxConnectionsPerIP: 3}, []string{"+10.0.0.1", "+10.0.0.1", "s 0 1 0", "-10.0.0.1", "r 10.0.0.1", "-10.0.0.1", "r 10.0.0.1", "+10.0.0.1"}},
		{"per address raised", Limits{MaxConnectionsPerIP: 1}, []string{"+10.0.0.1", "-10.0.0.1", "s 0 2 0", "+10.0.0.1", "-10.0.0.1"}},
		{"global lowered", Limits{MaxConnections: 5}, []string{"+10.0.0.1", "+10.0.0.2", "s 1 0 0", "-10.0.0.3", "r 10.0.0.1", "-10.0.0.3", "r 10.0.0.2", "+10.0.0.3"}},
		{"rate introduced", Limits{}, []string{"+10.0.0.1", "+10.0.0.1", "s 0 0 1", "+10.0.0.1", "-10.0.0.1", "+10.0.0.2"}},
		{"rate lowered", Limits{ConnectionRatePerIP: 10}, []string{"+10.0.0.1", "s 0 0 1", "+10.0.0.1", "-10.0.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAdmission(tc.limits)
			a.now = func() time.Time { return now }
			for i, s := range tc.steps {
				switch {
				case s[0] == '+' || s[0] == '-':
					if got := a.Admit(ip(s[1:])); got != (s[0] == '+') {
						t.Fatalf("step %d %s: admitted %v", i, s, got)
					}
				case s[0] == 'r':
					a.Release(ip(s[2:]))
				case s[0] == 's':
					var l Limits
					if _, err := fmt.Sscanf(s, "s %d %d %d", &l.MaxConnections, &l.MaxConnectionsPerIP, &l.ConnectionRatePerIP); err != nil {
						t.Fatal(err)
					}
					a.SetLimits(l)
				case s[0] == 't':
					d, _ := time.ParseDuration(s[1:])
					now = now.Add(d)
				}
			}
		})
	}
}

// The admission's memory stays bounded whatever addresses connect.
func TestAdmissionForgets(t *testing.T) {
	a := NewAdmission(Limits{ConnectionRatePerIP: 10})
	for i := 0; i < 200000; i++ {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if a.Admit(ip) {
			a.Release(ip)
		}
	}
	if n := len(a.byAddr); n > maxSources+1 {
		t.Fatalf("%d sources remembered", n)
	}
}

// Running out of file descriptors does not stop the accept loop: once
// descriptors are free again, the clients that waited are served.
func TestAcceptSurvivesDescriptorExhaustion(t *testing.T) {
	logs := &testlog.Buffer{}
	srv := &Server{
		Backend:  BackendFunc(func(*Conn) (Session, error) { return recSession{&recorder{}}, nil }),
		Hostname: "mx.test", MaxMessageBytes: 1 << 20, MaxLineLength: 100,
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
		Log: slog.New(slog.NewTextHandler(logs, nil)),
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	// The kernel completes these connections in the listen backlog; the
	// server accepts none yet.
	var waiting []net.Conn
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		waiting = append(waiting, c)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = uint64(countOpenFiles(t))
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "too many open files") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	failed := strings.Contains(logs.String(), "too many open files")
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if !failed {
		t.Fatalf("the server never ran out of descriptors; log:\n%s", logs.String())
	}
	for _, c := range waiting {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if got, _ := bufio.NewReader(c).ReadString('\n'); !strings.HasPrefix(got, "220 ") {
			t.Fatalf("a client that waited got %q", got)
		}
	}
}

func countOpenFiles(t *testing.T) int {
	entries, err := readDirNames("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc")
	}
	return len(entries)
}

// Shutdown ends idle connections at once, with 421, and returns.
func TestShutdownEndsIdleConnections(t *testing.T) {
	addr, _, srv := startEngine(t, func(s *Server) { s.ReadTimeout = time.Hour })
	c := dialEngine(t, addr)
	c.expect("EHLO x", "250")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	if got := c.read(); !strings.HasPrefix(got, "421 4.3.2") {
		t.Fatalf("idle connection at shutdown: %q", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// Shutdown closes what is still busy once its context ends.
func TestShutdownIsBounded(t *testing.T) {
	addr, _, srv := startEngine(t, func(s *Server) { s.ReadTimeout = time.Hour })
	c := dialEngine(t, addr)
	c.expect("EHLO x", "250")
	c.expect("MAIL FROM:<a@b.example>", "250")
	c.expect("RCPT TO:<c@d.example>", "250")
	c.expect("DATA", "354")
	io.WriteString(c.conn, "half a message")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown: %v", err)
	}
	if got := c.read(); got != "" {
		t.Fatalf("busy connection after shutdown: %q", got)
	}
}

// Admission.Listener closes what it does not admit and gives a slot back
// when an admitted connection closes.
func TestAdmittingListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewAdmission(Limits{MaxConnectionsPerIP: 1}).Listener(raw)
	defer l.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	first, _ := net.Dial("tcp", raw.Addr().String())
	defer first.Close()
	server1 := <-accepted
	second, _ := net.Dial("tcp", raw.Addr().String())
	defer second.Close()
	second.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := second.Read(make([]byte, 1)); err == nil {
		t.Fatal("second connection from one address was not closed")
	}
	server1.Close()
	server1.Close() // a second Close must not give a second slot back
	third, _ := net.Dial("tcp", raw.Addr().String())
	defer third.Close()
	select {
	case <-accepted:
	case <-time.After(20 * time.Second):
		t.Fatal("no slot after the first connection closed")
	}
}
