// Package pop3 is Postern's POP3 server: RFC 1939 (USER, PASS, STAT, LIST,
// RETR, DELE, NOOP, RSET, QUIT, TOP, UIDL; APOP is not offered), RFC 2449
// (CAPA, RESP-CODES, PIPELINING), RFC 2595 (STLS) and RFC 5034 (AUTH with
// SASL PLAIN, XOAUTH2 and OAUTHBEARER), answering with Exchange Online's
// texts.
//
// It is written by hand because no maintained Go POP3 server library
// exists, and it holds no business rules: who may sign in, and which
// mailbox that opens, is the Authenticator's decision; the messages are the
// Maildrop's. What it does own is the protocol and the bounds a client on
// the open internet must not be able to push: command lines of 255 octets
// (32 KiB for SASL, which carries OAuth tokens), a whole line within the
// idle timeout (short before sign-in), three failed sign-ins or bad
// commands per connection, messages streamed through one fixed buffer
// whatever their size, and a shutdown that ends idle connections at once.
package pop3

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// Defaults for the Server's zero fields.
const (
	// DefaultPreAuthTimeout is Exchange's PreAuthenticatedConnectionTimeout
	// (60 s): how long a connection may wait, not signed in, for a line.
	DefaultPreAuthTimeout = 60 * time.Second
	// DefaultIdleTimeout is Exchange's AuthenticatedConnectionTimeout
	// (1800 s); RFC 1939 §3 asks for at least 10 minutes.
	DefaultIdleTimeout = 30 * time.Minute
	// DefaultWriteTimeout bounds each write to the client: a client that
	// stops reading in the middle of a message is dropped after it.
	DefaultWriteTimeout = 2 * time.Minute
	// DefaultMaxFailedLogins: the failed sign-in that closes the connection.
	DefaultMaxFailedLogins = 3
	// DefaultMaxMessages caps a session's snapshot of the Inbox.
	DefaultMaxMessages = 50000

	// MaxCommandLine is RFC 2449 §4's bound on a command line (255
	// octets; the CRLF is not counted here, a little more lenient).
	MaxCommandLine = 255
	// MaxAuthLine bounds an AUTH command with its initial response and
	// each SASL response line: OAuth tokens run to several KiB (RFC 5034
	// §4 lifts the 255-octet limit for them).
	MaxAuthLine = 32 << 10
)

// maxBadCommands: the bad command that closes the connection (Exchange
// closes on the third, "Connection is closed. 21").
const maxBadCommands = 3

// Server serves POP3. Set its fields before Serve; it may serve several
// listeners (110 and 995) at once.
type Server struct {
	// Auth signs clients in and opens their maildrop. Required.
	Auth Authenticator
	// TLSConfig is the certificate for STLS and for implicit TLS (995).
	// Without it, STLS is not offered.
	TLSConfig *tls.Config
	// AllowInsecureAuth offers USER, PASS and AUTH without TLS (tests,
	// or a listener on loopback only). Exchange's default (LoginType
	// SecureLogin) refuses them before STLS, and so does Postern's.
	AllowInsecureAuth bool
	// AuthRespCode advertises AUTH-RESP-CODE (RFC 3206) and puts [AUTH]
	// on every refusal of credentials. Off by default: Exchange's refusal
	// is "-ERR Logon failure: unknown user name or bad password." exactly.
	AuthRespCode bool

	PreAuthTimeout  time.Duration
	IdleTimeout     time.Duration
	WriteTimeout    time.Duration
	MaxFailedLogins int
	MaxMessages     int

	Log *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   bool
	wg        sync.WaitGroup
}

// ErrServerClosed is what Serve returns once Shutdown has been called.
var ErrServerClosed = errors.New("pop3: server closed")

// Serve accepts connections on l until l is closed or the server shuts
// down. With implicitTLS each connection starts with a TLS handshake (port
// 995, RFC 8314); otherwise it starts in plain text and offers STLS (110).
func (s *Server) Serve(l net.Listener, implicitTLS bool) error {
	if implicitTLS && s.TLSConfig == nil {
		return errors.New("pop3: implicit TLS needs a TLS configuration")
	}
	if s.Auth == nil {
		return errors.New("pop3: no Authenticator")
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[*conn]struct{})
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			if !temporaryAcceptError(err) {
				return err
			}
			// Out of descriptors, or a connection reset before it was
			// accepted: wait and go on, so the loop neither spins nor
			// stops.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log().Warn("pop3 accept failed; retrying", "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := newConn(s, nc, implicitTLS)
		if !s.track(c) {
			nc.Close()
			return ErrServerClosed
		}
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			c.serve()
		}()
	}
}

func temporaryAcceptError(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EPROTO} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown stops accepting, tells every connection waiting for a command
// that the service is shutting down and closes it (deleting nothing: RFC
// 1939 §6 applies deletions only on QUIT), and lets a command in progress
// (a RETR, a QUIT applying deletions) finish until ctx ends; then it closes
// whatever is still open. It returns once every connection has ended.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.interruptIfIdle()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.abort()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Server) preAuthTimeout() time.Duration {
	if s.PreAuthTimeout > 0 {
		return s.PreAuthTimeout
	}
	return DefaultPreAuthTimeout
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return DefaultIdleTimeout
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout > 0 {
		return s.WriteTimeout
	}
	return DefaultWriteTimeout
}

func (s *Server) maxFailedLogins() int {
	if s.MaxFailedLogins > 0 {
		return s.MaxFailedLogins
	}
	return DefaultMaxFailedLogins
}

func (s *Server) maxMessages() int {
	if s.MaxMessages > 0 {
		return s.MaxMessages
	}
	return DefaultMaxMessages
}

func remoteIP(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
