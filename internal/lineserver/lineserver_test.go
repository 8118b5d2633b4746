package lineserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"postern.dev/postern/internal/testlog"
)

// patience bounds every wait on the other side of a pipe: generous, for a
// loaded machine; reaching it fails the test.
const patience = 20 * time.Second

func TestTemporaryAcceptError(t *testing.T) {
	opErr := func(err error) error {
		return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", err)}
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"descriptors out (EMFILE)", opErr(syscall.EMFILE), true},
		{"system descriptors out (ENFILE)", opErr(syscall.ENFILE), true},
		{"no buffers", opErr(syscall.ENOBUFS), true},
		{"no memory", opErr(syscall.ENOMEM), true},
		{"aborted before accepted", opErr(syscall.ECONNABORTED), true},
		{"reset before accepted", opErr(syscall.ECONNRESET), true},
		{"protocol error", opErr(syscall.EPROTO), true},
		{"timeout", &net.OpError{Op: "accept", Err: os.ErrDeadlineExceeded}, true},
		{"listener closed", fmt.Errorf("accept: %w", net.ErrClosed), false},
		{"invalid", opErr(syscall.EINVAL), false},
		{"other", errors.New("something else"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := temporaryAcceptError(tc.err); got != tc.want {
				t.Errorf("temporaryAcceptError(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// scriptedListener returns its errors in turn, then conns; with neither
// left it waits until closed.
type scriptedListener struct {
	errs   []error
	conns  []net.Conn
	mu     sync.Mutex
	closed chan struct{}
	once   sync.Once
}

func newScriptedListener(errs []error, conns ...net.Conn) *scriptedListener {
	return &scriptedListener{errs: errs, conns: conns, closed: make(chan struct{})}
}

func (l *scriptedListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	if len(l.conns) > 0 {
		c := l.conns[0]
		l.conns = l.conns[1:]
		l.mu.Unlock()
		return c, nil
	}
	l.mu.Unlock()
	<-l.closed
	return nil, net.ErrClosed
}

func (l *scriptedListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *scriptedListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func TestAcceptRidesOutTemporaryFailures(t *testing.T) {
	emfile := &net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	want, _ := net.Pipe()
	l := newScriptedListener([]error{emfile, emfile, emfile}, want)
	var logs testlog.Buffer
	var s Server
	got, err := s.Accept(l, slog.New(slog.NewTextHandler(&logs, nil)), "test accept failed")
	if err != nil || got != want {
		t.Fatalf("Accept = %v, %v; want the connection after the failures", got, err)
	}
	if n := strings.Count(logs.String(), `msg="test accept failed"`); n != 3 {
		t.Errorf("%d warnings logged, want 3:\n%s", n, logs.String())
	}
	// The back-off doubles from 5 ms.
	for _, in := range []string{"in=5ms", "in=10ms", "in=20ms"} {
		if !strings.Contains(logs.String(), in) {
			t.Errorf("no warning with %s:\n%s", in, logs.String())
		}
	}

	permanent := &net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EINVAL)}
	l = newScriptedListener([]error{permanent})
	if _, err := s.Accept(l, slog.New(slog.DiscardHandler), "unused"); err != permanent {
		t.Errorf("Accept on a permanent failure = %v, want it as the listener returned it", err)
	}
}

func TestNothingStartsAfterShutdown(t *testing.T) {
	var s Server
	l := newScriptedListener(nil)
	if !s.AddListener(l) {
		t.Fatal("AddListener refused before Shutdown")
	}
	accepted := make(chan error, 1)
	go func() {
		_, err := s.Accept(l, slog.New(slog.DiscardHandler), "unused")
		accepted <- err
	}()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown with nothing open: %v", err)
	}
	select {
	case err := <-accepted:
		if err != ErrServerClosed {
			t.Errorf("Accept after Shutdown = %v, want ErrServerClosed", err)
		}
	case <-time.After(patience):
		t.Fatal("Shutdown did not close the listener")
	}
	if s.AddListener(newScriptedListener(nil)) {
		t.Error("AddListener accepted a listener after Shutdown")
	}
	var c Conn
	nc, _ := net.Pipe()
	c.Init(nc, Command, Options{})
	if s.Go(&c, func() { t.Error("served after Shutdown") }) {
		t.Error("Go started a connection after Shutdown")
	}
}

// pipeConn returns a Conn over one end of a pipe, and the other end.
func pipeConn(t *testing.T, m Mode, o Options) (*Conn, net.Conn) {
	t.Helper()
	server, client := net.Pipe()
	t.Cleanup(func() { server.Close(); client.Close() })
	client.SetDeadline(time.Now().Add(patience))
	c := &Conn{}
	c.Init(server, m, o)
	return c, client
}

// waitUntil polls cond until it holds, failing the test at patience.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(patience); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestReadFlushesRepliesFirst(t *testing.T) {
	c, client := pipeConn(t, Command, Options{})
	got := make(chan string, 1)
	go func() {
		// net.Pipe is unbuffered: unless the reply is sent before the
		// server waits for the command, both sides wait for ever.
		r := bufio.NewReader(client)
		reply, _ := r.ReadString('\n')
		client.Write([]byte("NOOP\r\n"))
		got <- reply
	}()
	c.W.WriteString("+OK ready\r\n")
	c.AwaitCommand(time.Now().Add(patience))
	line, err := c.R.ReadString('\n')
	if err != nil || line != "NOOP\r\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	if reply := <-got; reply != "+OK ready\r\n" {
		t.Errorf("client read %q", reply)
	}
}

func TestCommandDeadlineCoversTheWholeLine(t *testing.T) {
	c, client := pipeConn(t, Command, Options{})
	go client.Write([]byte("NO")) // half a line, then silence
	c.AwaitCommand(time.Now().Add(50 * time.Millisecond))
	_, err := c.R.ReadString('\n')
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("half a line read to %v, want a timeout", err)
	}
	if c.Stopping() {
		t.Error("Stopping without a Shutdown")
	}
}

// modes are the modes a connection is in, and whether Shutdown interrupts
// a read in it: only a wait for a command is, the others finish.
var modes = []struct {
	name        string
	mode        Mode
	interrupted bool
}{
	{"waiting for a command", Command, true},
	{"running a command", Busy, false},
	{"receiving a message", Stream, false},
}

// TestShutdown serves one connection in each mode and checks what
// Shutdown does to it: a connection waiting for a command is interrupted
// at once; one running a command or receiving a message is let finish.
func TestShutdown(t *testing.T) {
	for _, tc := range modes {
		t.Run(tc.name, func(t *testing.T) {
			c, client := pipeConn(t, tc.mode, Options{StreamTimeout: patience})
			var s Server
			var readErr, nextErr error
			if !s.Go(c, func() {
				if tc.mode == Command {
					// Far beyond patience: only Shutdown can end this
					// wait (AwaitCommand waits for the client itself).
					c.AwaitCommand(time.Now().Add(time.Hour))
				}
				_, readErr = c.R.ReadString('\n')
				c.AwaitCommand(time.Now().Add(patience))
				_, nextErr = c.R.ReadString('\n')
			}) {
				t.Fatal("Go refused before Shutdown")
			}
			shut := make(chan error, 1)
			go func() { shut <- s.Shutdown(context.Background()) }()
			waitUntil(t, "Shutdown to reach the connection", c.Stopping)
			if !tc.interrupted {
				client.Write([]byte("the rest of the command or message\n"))
			}
			select {
			case err := <-shut:
				if err != nil {
					t.Fatalf("Shutdown = %v", err)
				}
			case <-time.After(patience):
				t.Fatal("Shutdown still waits for the connection")
			}
			// Had Shutdown come before the read began, the read is
			// refused rather than interrupted.
			var ne net.Error
			if tc.interrupted && !(errors.As(readErr, &ne) && ne.Timeout()) && readErr != ErrStopping {
				t.Errorf("waiting read ended with %v, want a timeout or ErrStopping", readErr)
			}
			if !tc.interrupted && readErr != nil {
				t.Errorf("read in mode %v ended with %v, want it to finish", tc.mode, readErr)
			}
			if nextErr != ErrStopping {
				t.Errorf("next command read = %v, want ErrStopping", nextErr)
			}
		})
	}
}

// TestInterruptIfIdle checks the interruption itself, which TestShutdown
// cannot tell from a refusal when Shutdown comes before the read: only a
// connection waiting for a command has its read deadline moved to now.
func TestInterruptIfIdle(t *testing.T) {
	for _, tc := range modes {
		t.Run(tc.name, func(t *testing.T) {
			c, client := pipeConn(t, tc.mode, Options{})
			c.InterruptIfIdle()
			if !c.Stopping() {
				t.Error("not Stopping after InterruptIfIdle")
			}
			if !tc.interrupted {
				go client.Write([]byte("x"))
			}
			read := make(chan error, 1)
			go func() {
				_, err := c.Accepted().Read(make([]byte, 1))
				read <- err
			}()
			select {
			case err := <-read:
				var ne net.Error
				if timedOut := errors.As(err, &ne) && ne.Timeout(); timedOut != tc.interrupted {
					t.Errorf("read after InterruptIfIdle = %v; want interrupted %v", err, tc.interrupted)
				}
			case <-time.After(patience):
				t.Fatal("read after InterruptIfIdle still waits")
			}
		})
	}
}

func TestShutdownAbortsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c, _ := pipeConn(t, Busy, Options{OnAbort: cancel})
	var s Server
	var readErr error
	s.Go(c, func() {
		<-ctx.Done() // a store query, say, ended by OnAbort
		c.SetMode(Stream)
		_, readErr = c.R.ReadByte()
	})
	over, stop := context.WithCancel(context.Background())
	stop()
	if err := s.Shutdown(over); err != context.Canceled {
		t.Errorf("Shutdown = %v, want context.Canceled", err)
	}
	if !errors.Is(readErr, io.ErrClosedPipe) {
		t.Errorf("read after abort = %v, want the connection closed", readErr)
	}
}

func TestSetTransportDropsBufferedInput(t *testing.T) {
	c, client := pipeConn(t, Command, Options{})
	go client.Write([]byte("STARTTLS\r\nMAIL FROM:<injected@example.test>\r\n"))
	c.AwaitCommand(time.Now().Add(patience))
	if line, err := c.R.ReadString('\n'); err != nil || line != "STARTTLS\r\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	// The second command is in R's buffer by now.
	if c.R.Buffered() == 0 {
		t.Fatal("nothing buffered after the first line")
	}
	tlsSide, tlsClient := net.Pipe()
	t.Cleanup(func() { tlsSide.Close(); tlsClient.Close() })
	tlsClient.SetDeadline(time.Now().Add(patience))
	c.SetTransport(tlsSide)
	go tlsClient.Write([]byte("EHLO after\r\n"))
	if line, err := c.R.ReadString('\n'); err != nil || line != "EHLO after\r\n" {
		t.Errorf("after SetTransport read %q, %v; want what the new transport sent", line, err)
	}
	if c.Transport() != tlsSide || c.Accepted() == tlsSide {
		t.Error("SetTransport did not switch the transport alone")
	}
}

// TestIdleConnectionHoldsNoBuffer: once the replies are sent and every
// command read, a connection waiting for the next one holds neither a
// read nor a write buffer; what the client sends next, however it is cut
// up, is read whole, pipelined commands included.
func TestIdleConnectionHoldsNoBuffer(t *testing.T) {
	c, client := pipeConn(t, Command, Options{})
	long := "MAIL FROM:<" + strings.Repeat("a", 300) + "@example.test>\r\n"
	sent := []string{"EHLO x\r\n", long + "RCPT TO:<b@example.test>\r\nDATA\r\n", "QUIT\r\n"}
	replies := make(chan string, len(sent))
	go func() {
		r := bufio.NewReader(client)
		for _, s := range sent {
			client.Write([]byte(s))
			reply, _ := r.ReadString('\n')
			replies <- reply
		}
	}()
	var got []string
	for range 5 {
		c.AwaitCommand(time.Now().Add(patience))
		if c.R.Buffered() == 0 && len(c.pending) == 0 {
			t.Fatal("AwaitCommand returned with nothing to read")
		}
		line, err := c.R.ReadString('\n')
		if err != nil {
			t.Fatalf("read %q, %v", line, err)
		}
		got = append(got, line)
		if c.R.Buffered() == 0 {
			// The last of a batch: answer it.
			c.W.WriteString("250 ok\r\n")
			if c.W.Buffered() == 0 || c.w.buf == nil {
				t.Fatal("a reply written holds no buffer")
			}
		}
	}
	want := []string{"EHLO x\r\n", long, "RCPT TO:<b@example.test>\r\n", "DATA\r\n", "QUIT\r\n"}
	if strings.Join(got, "") != strings.Join(want, "") {
		t.Fatalf("read %q, want %q", got, want)
	}
	c.W.Flush()
	if c.w.buf != nil {
		t.Error("the write buffer is held after the replies were sent")
	}
	for range sent {
		if r := <-replies; r != "250 ok\r\n" {
			t.Errorf("client read %q", r)
		}
	}
	// Idle: the next wait gives R's buffer back before it blocks, and
	// takes one again when the client sends.
	held := readersHeld.Load()
	read := make(chan string, 1)
	go func() {
		c.AwaitCommand(time.Now().Add(patience))
		line, _ := c.R.ReadString('\n')
		read <- line
	}()
	waitUntil(t, "the idle connection to give its reader back", func() bool { return readersHeld.Load() == held-1 })
	client.Write([]byte("NOOP\r\n"))
	if line := <-read; line != "NOOP\r\n" {
		t.Errorf("after the idle wait read %q", line)
	}
	if n := readersHeld.Load(); n != held {
		t.Errorf("%d readers held after the idle wait, want %d", n, held)
	}
}

func TestWriter(t *testing.T) {
	var out strings.Builder
	w := &Writer{size: 8}
	w.Reset(&out)
	w.WriteString("abc")
	if out.Len() != 0 || w.Buffered() != 3 {
		t.Fatalf("sent %q, buffered %d", out.String(), w.Buffered())
	}
	w.WriteString("defghij") // fills the buffer: the first 8 go
	if out.String() != "abcdefgh" || w.Buffered() != 2 {
		t.Fatalf("sent %q, buffered %d", out.String(), w.Buffered())
	}
	w.Flush()
	w.Write([]byte("0123456789")) // larger than the buffer, nothing buffered: straight through
	if out.String() != "abcdefghij0123456789" || w.buf != nil {
		t.Fatalf("sent %q, buffer held %v", out.String(), w.buf != nil)
	}
	w.Write([]byte("x"))
	w.Reset(io.Discard) // a broken transfer: what is buffered is dropped
	w.Flush()
	if out.String() != "abcdefghij0123456789" || w.buf != nil {
		t.Fatalf("sent %q after Reset", out.String())
	}
	broken := &Writer{size: 8}
	broken.Reset(failingWriter{})
	broken.WriteString("abc")
	if err := broken.Flush(); err == nil {
		t.Fatal("Flush to a failing writer succeeded")
	}
	if _, err := broken.WriteString("more"); err == nil {
		t.Error("a write after a failed flush succeeded")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }
