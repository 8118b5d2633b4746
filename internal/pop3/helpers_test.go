package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// memStore is an in-memory Authenticator: users with passwords, tokens
// naming their user, refusals by user name, and one memBox per user.
type memStore struct {
	mu        sync.Mutex
	passwords map[string]string
	tokens    map[string]string // token -> user
	refusals  map[string]error  // user -> what Basic/OAuth return
	boxes     map[string]*memBox
	basicN    int // Basic calls
}

func newMemStore() *memStore {
	return &memStore{passwords: map[string]string{}, tokens: map[string]string{}, refusals: map[string]error{}, boxes: map[string]*memBox{}}
}

func (s *memStore) addUser(user, password string, msgs ...memMsg) *memBox {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.passwords[user] = password
	b := &memBox{msgs: msgs}
	s.boxes[user] = b
	return b
}

func (s *memStore) Basic(ctx context.Context, ip netip.Addr, username, password string) (Maildrop, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.basicN++
	if err, ok := s.refusals[username]; ok {
		return nil, err
	}
	if p, ok := s.passwords[username]; !ok || p != password {
		return nil, ErrBadCredentials
	}
	return s.boxes[username].open(), nil
}

func (s *memStore) OAuth(ctx context.Context, ip netip.Addr, user, token string) (Maildrop, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err, ok := s.refusals[user]; ok {
		return nil, err
	}
	owner, ok := s.tokens[token]
	if !ok || (user != "" && user != owner) {
		return nil, ErrBadCredentials
	}
	return s.boxes[owner].open(), nil
}

// memMsg is a stored message: its text, or a generator for big ones.
type memMsg struct {
	uid  string
	text string
	size int64                // for gen
	gen  func() io.ReadCloser // when set, Open streams from it
	gone bool                 // Open reports ErrMessageGone
}

type memBox struct {
	mu        sync.Mutex
	msgs      []memMsg
	deleted   []string
	seen      []string
	deleteErr error
	listErr   error
	opens     int // maildrops open
	closes    int
}

func (b *memBox) open() *memDrop {
	b.mu.Lock()
	b.opens++
	b.mu.Unlock()
	return &memDrop{box: b}
}

func (b *memBox) state() (deleted []string, opens, closes int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.deleted), b.opens, b.closes
}

type memDrop struct {
	box    *memBox
	closed bool
}

func (d *memDrop) Messages(ctx context.Context, limit int) ([]Message, error) {
	b := d.box
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.listErr != nil {
		return nil, b.listErr
	}
	var out []Message
	for _, m := range b.msgs {
		if len(out) == limit {
			break
		}
		size := int64(len(m.text))
		if m.gen != nil {
			size = m.size
		}
		out = append(out, Message{UID: m.uid, Size: size})
	}
	return out, nil
}

func (d *memDrop) Open(ctx context.Context, uid string) (io.ReadCloser, error) {
	b := d.box
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.msgs {
		if m.uid != uid {
			continue
		}
		switch {
		case m.gone:
			return nil, ErrMessageGone
		case m.gen != nil:
			return m.gen(), nil
		}
		return io.NopCloser(strings.NewReader(m.text)), nil
	}
	return nil, ErrMessageGone
}

func (d *memDrop) Delete(ctx context.Context, uids []string) error {
	b := d.box
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.deleteErr != nil {
		return b.deleteErr
	}
	b.deleted = append(b.deleted, uids...)
	return nil
}

func (d *memDrop) MarkSeen(ctx context.Context, uids []string) error {
	d.box.mu.Lock()
	defer d.box.mu.Unlock()
	d.box.seen = append(d.box.seen, uids...)
	return nil
}

func (d *memDrop) Close() error {
	if d.closed {
		return errors.New("maildrop closed twice")
	}
	d.closed = true
	d.box.mu.Lock()
	d.box.closes++
	d.box.mu.Unlock()
	return nil
}

// startServer serves s on a loopback listener (implicit TLS or not) and
// shuts it down at the end of the test.
func startServer(t testing.TB, s *Server, implicitTLS bool) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l, implicitTLS) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return l.Addr().String()
}

// client is a test POP3 client reading raw lines.
type client struct {
	t  testing.TB
	c  net.Conn
	r  *bufio.Reader
	tc *tls.Conn
}

func dial(t testing.TB, addr string, tlsConfig *tls.Config) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, c: c}
	if tlsConfig != nil {
		cl.tc = tls.Client(c, tlsConfig)
		cl.c = cl.tc
	}
	cl.r = bufio.NewReader(cl.c)
	cl.c.SetDeadline(time.Now().Add(30 * time.Second))
	return cl
}

func (cl *client) send(s string) {
	cl.t.Helper()
	if _, err := io.WriteString(cl.c, s); err != nil {
		cl.t.Fatalf("send %q: %v", s, err)
	}
}

// line reads one line without its CRLF; it fails the test on EOF.
func (cl *client) line() string {
	cl.t.Helper()
	s, err := cl.r.ReadString('\n')
	if err != nil {
		cl.t.Fatalf("read: %v (got %q)", err, s)
	}
	if !strings.HasSuffix(s, "\r\n") {
		cl.t.Fatalf("line %q does not end in CRLF", s)
	}
	return strings.TrimSuffix(s, "\r\n")
}

// lines reads n lines joined by CRLF.
func (cl *client) lines(n int) string {
	cl.t.Helper()
	out := make([]string, n)
	for i := range out {
		out[i] = cl.line()
	}
	return strings.Join(out, "\r\n")
}

// multi reads a multi-line response through its terminating ".".
func (cl *client) multi() string {
	cl.t.Helper()
	var out []string
	for {
		l := cl.line()
		out = append(out, l)
		if l == "." {
			return strings.Join(out, "\r\n")
		}
	}
}

// eof asserts that the server closed the connection.
func (cl *client) eof() {
	cl.t.Helper()
	s, err := cl.r.ReadString('\n')
	if err == nil || s != "" {
		cl.t.Fatalf("expected the connection closed, read %q, %v", s, err)
	}
}

// startTLS switches to TLS after "+OK Begin TLS negotiation.".
func (cl *client) startTLS(cfg *tls.Config) {
	cl.t.Helper()
	cl.tc = tls.Client(cl.c, cfg)
	if err := cl.tc.Handshake(); err != nil {
		cl.t.Fatalf("TLS handshake: %v", err)
	}
	cl.c = cl.tc
	cl.r = bufio.NewReader(cl.c)
}

// crlf turns "\n" line ends into CRLF.
func crlfText(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
