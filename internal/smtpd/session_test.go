package smtpd

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/internal/auth"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/limits"
	"postern.dev/postern/internal/signin"
	"postern.dev/postern/internal/store"
	"postern.dev/postern/internal/store/sqlite"
	"postern.dev/postern/internal/transport"
)

// testServer runs the MX role on loopback over a real SQLite store, with a
// directory of one organization (SMTP AUTH on) and sean@contoso.com
// (password "secret"). AUTH is allowed without TLS so that tests and the
// fuzzer reach every command without a handshake.
func testServer(tb testing.TB) (addr string, st store.Store, stop func()) {
	tb.Helper()
	return testServerWithSlots(tb, limits.NewSlots(3))
}

// testServerWithSlots is testServer counting connection slots in slots.
func testServerWithSlots(tb testing.TB, slots limits.ConnectionSlots) (addr string, st store.Store, stop func()) {
	tb.Helper()
	st, err := sqlite.Open(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	org := &directory.Organization{Name: "contoso", GUID: "g"}
	hash, _ := auth.HashPasswordWithParams("secret", auth.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16})
	sean := &directory.Mailbox{Name: "sean", PrimarySmtpAddress: "sean@contoso.com", UserPrincipalName: "sean@contoso.com",
		Type: directory.UserMailbox, PasswordHash: hash, RecipientLimits: 5, MaxSendSize: 1 << 16}
	must := func(err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(st.SaveOrganization(ctx, org))
	must(st.SaveDomain(ctx, &directory.AcceptedDomain{OrgID: org.ID, Name: "contoso.com", DomainName: "contoso.com", DomainType: directory.Authoritative}))
	sean.OrgID = org.ID
	must(st.SaveMailbox(ctx, sean))
	c, err := st.LoadDirectory(ctx)
	must(err)
	dir := &directory.Current{}
	dir.Store(directory.NewSnapshot(c))

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	throttle := auth.DefaultThrottleConfig
	throttle.SlowAfter, throttle.BlockAfter = 1000, 1000 // the fuzzer fails a lot
	a := &signin.Authenticator{Directory: dir, Cache: auth.NewLoginCache(time.Minute, 100), Throttle: auth.NewThrottle(throttle),
		Now: time.Now, Sleep: func(time.Duration) {}}
	sub := &transport.Submitter{Store: st, Hostname: "mx.test", Recipients: limits.NewRecipientWindow(24*time.Hour, 288),
		Pacer: limits.NewPacer(30, time.Minute), Log: log, Now: time.Now}
	srv := New(Config{Hostname: "mx.test", ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second}, dir, a, sub, slots, log)
	srv.insecureAuth = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	go srv.Serve(l, MX)
	return l.Addr().String(), st, func() {
		l.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		st.Close()
	}
}

// converse writes script (CRLF lines), half-closes, and returns everything
// the server said until it closed the connection.
func converse(tb testing.TB, addr string, script []byte) string {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		conn.Write(script)
		conn.(*net.TCPConn).CloseWrite()
	}()
	out, err := io.ReadAll(bufio.NewReader(conn))
	if err != nil && !strings.Contains(err.Error(), "reset") {
		tb.Fatalf("reading replies: %v (server wedged?)\nso far: %q", err, out)
	}
	return string(out)
}

func TestSessionConversation(t *testing.T) {
	addr, st, stop := testServer(t)
	defer stop()
	script := strings.Join([]string{
		"EHLO client.test",
		"MAIL FROM:<printer@contoso.com>",
		"RCPT TO:<someone@outside.example>",
		"RCPT TO:<nobody@contoso.com>",
		"RCPT TO:<sean@contoso.com>",
		"DATA",
		"From: printer@contoso.com",
		"Subject: anonymous to local",
		"",
		"hello",
		".",
		"AUTH PLAIN AHNlYW5AY29udG9zby5jb20Ac2VjcmV0",
		"MAIL FROM:<sean@contoso.com>",
		"RCPT TO:<a@x.example>", "RCPT TO:<b@x.example>", "RCPT TO:<c@x.example>", "RCPT TO:<d@x.example>", "RCPT TO:<e@x.example>",
		"RCPT TO:<f@x.example>",
		"DATA",
		"From: sean@contoso.com",
		"",
		"to six outside recipients: refused whole",
		".",
		"MAIL FROM:<sean@contoso.com>",
		"RCPT TO:<a@x.example>", "RCPT TO:<b@x.example>", "RCPT TO:<c@x.example>", "RCPT TO:<d@x.example>", "RCPT TO:<e@x.example>",
		"DATA",
		"From: sean@contoso.com",
		"",
		"to five outside recipients",
		".",
		"QUIT", ""}, "\r\n")
	got := converse(t, addr, []byte(script))
	for _, want := range []string{
		"550 5.7.64 TenantAttribution; Relay Access Denied",
		"550 5.4.1 Recipient address rejected: Access denied. AS(201806281)\r\n",
		"250 2.0.0 OK <",
		"235 2.7.0 Authentication successful\r\n",
		"550 5.5.3 RESOLVER.ADR.RecipLimit; too many recipients\r\n",
		"221 2.0.0 Service closing transmission channel\r\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("conversation lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "250 2.0.0 OK <"); n != 2 {
		t.Errorf("want 2 accepted messages, got %d:\n%s", n, got)
	}
	q, err := st.QueueItems(context.Background())
	if err != nil || len(q) != 5 {
		t.Fatalf("queue: %d items, err %v", len(q), err)
	}
}

// TestArrivalsEnd checks that every message counted among those the group
// committer waits for (store.Arrivals) stops being counted however its
// transfer ends: committed, refused at the end of DATA, or cut off. One
// left counted would make every later commit group wait its longest.
func TestArrivalsEnd(t *testing.T) {
	addr, st, stop := testServer(t)
	defer stop()
	big := strings.Repeat(strings.Repeat("x", 70)+"\r\n", 1000) // over sean's MaxSendSize
	// message is one transaction from sean up to its body's lines.
	message := func(body ...string) []string {
		return append([]string{"MAIL FROM:<sean@contoso.com>", "RCPT TO:<a@x.example>", "DATA", "From: sean@contoso.com", ""}, body...)
	}
	script := strings.Join(slices.Concat(
		[]string{"EHLO client.test", "AUTH PLAIN AHNlYW5AY29udG9zby5jb20Ac2VjcmV0"},
		message("accepted", "."),
		message(big, "."),
		message("cut off before its end", "")), "\r\n")
	got := converse(t, addr, []byte(script))
	if n := strings.Count(got, "250 2.0.0 OK <"); n != 1 {
		t.Fatalf("want 1 accepted message, got %d:\n%s", n, got)
	}
	if !strings.Contains(got, "552 ") {
		t.Fatalf("the message over the size limit was not refused:\n%s", got)
	}
	// The session ends its last arrival once it has seen the connection
	// close, which may be just after the client has.
	deadline := time.Now().Add(10 * time.Second)
	for st.Arrivals().Expected() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still counted as arriving", st.Arrivals().Expected())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// flakySlots is a store's connection slots that cannot be reached for the
// first failures acquisitions (a database several nodes share, down).
type flakySlots struct {
	mu       sync.Mutex
	failures int
	acquired []limits.Slot
	released []limits.Slot
}

func (f *flakySlots) Acquire(_ context.Context, mailbox int64) (limits.Slot, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures > 0 {
		f.failures--
		return limits.Slot{}, false, errors.New("database unreachable")
	}
	s := limits.Slot{Mailbox: mailbox, ID: int64(len(f.acquired) + 1)}
	f.acquired = append(f.acquired, s)
	return s, true, nil
}

func (f *flakySlots) Release(_ context.Context, s limits.Slot) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, s)
}

// TestSlotsUnreachable: when the connection slots cannot be counted (at
// sign-in and again at end of DATA), the message gets a temporary failure
// (451 4.3.0), never a 250 as if the connection held a slot; once they can
// be counted again the next message takes a slot and is accepted, and the
// slot taken is the one released when the session ends.
func TestSlotsUnreachable(t *testing.T) {
	slots := &flakySlots{failures: 2}
	addr, _, stop := testServerWithSlots(t, slots)
	defer stop()
	msg := []string{"MAIL FROM:<sean@contoso.com>", "RCPT TO:<a@x.example>", "DATA", "From: sean@contoso.com", "", "hi", "."}
	script := []string{"EHLO client.test", "AUTH PLAIN AHNlYW5AY29udG9zby5jb20Ac2VjcmV0"}
	script = append(append(append(script, msg...), msg...), "QUIT", "")
	got := converse(t, addr, []byte(strings.Join(script, "\r\n")))
	first := strings.Index(got, "451 4.3.0 ")
	second := strings.Index(got, "250 2.0.0 OK <")
	if first < 0 || second < first {
		t.Fatalf("want 451 4.3.0 for the first message, then 250 for the second:\n%s", got)
	}
	waitFor := time.Now().Add(10 * time.Second)
	for {
		slots.mu.Lock()
		acquired, released := slices.Clone(slots.acquired), slices.Clone(slots.released)
		slots.mu.Unlock()
		if len(released) > 0 || time.Now().After(waitFor) {
			if len(acquired) != 1 || !slices.Equal(acquired, released) {
				t.Fatalf("acquired %v, released %v; want the one slot taken released once", acquired, released)
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// FuzzSession feeds arbitrary client input to a real session over loopback:
// the server must never panic (go-smtp would answer "Internal server error")
// and never wedge (the conversation ends).
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"EHLO x\r\nMAIL FROM:<a@contoso.com>\r\nRCPT TO:<sean@contoso.com>\r\nDATA\r\nFrom: a@contoso.com\r\n\r\nhi\r\n.\r\nQUIT\r\n",
		"EHLO x\r\nAUTH PLAIN AHNlYW5AY29udG9zby5jb20Ac2VjcmV0\r\nMAIL FROM:<sean@contoso.com> SIZE=10\r\nRCPT TO:<x@y.example>\r\nDATA\r\nFrom: sean@contoso.com\r\n\r\nx\r\n.\r\n",
		"EHLO x\r\nAUTH LOGIN\r\nc2Vhbg==\r\nc2VjcmV0\r\nRSET\r\nNOOP\r\nVRFY x\r\n",
		"HELO x\r\nMAIL FROM:<@a:b@c>\r\nRCPT TO:<a%b@contoso.com>\r\nBDAT 5 LAST\r\nabcde",
		"EHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<sean@contoso.com>\r\nDATA\r\nx\nbare\r\n.\r\n",
		"\x00\xff\r\n\r\nAUTH\r\nAUTH PLAIN =\r\nAUTH LOGIN =\r\n*\r\n",
	} {
		f.Add([]byte(s))
	}
	addr, _, stop := testServer(f)
	defer stop()
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) > 1<<16 {
			return
		}
		got := converse(t, addr, script)
		if strings.Contains(got, "Internal server error") {
			t.Fatalf("panic in session for %q:\n%s", script, got)
		}
	})
}
