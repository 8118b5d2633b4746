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
	"time"

	"postern.dev/postern/internal/lineserver"
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

	// lines is the listeners, the open connections and their shutdown.
	lines lineserver.Server
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
	if !s.lines.AddListener(l) {
		return ErrServerClosed
	}
	defer s.lines.RemoveListener(l)
	for {
		nc, err := s.lines.Accept(l, s.log(), "pop3 accept failed; retrying")
		if errors.Is(err, lineserver.ErrServerClosed) {
			return ErrServerClosed
		}
		if err != nil {
			return err
		}
		c := newConn(s, nc, implicitTLS)
		if !s.lines.Go(&c.lc, c.serve) {
			nc.Close()
			return ErrServerClosed
		}
	}
}

// Shutdown stops accepting, tells every connection waiting for a command
// that the service is shutting down and closes it (deleting nothing: RFC
// 1939 §6 applies deletions only on QUIT), and lets a command in progress
// (a RETR, a QUIT applying deletions) finish until ctx ends; then it closes
// whatever is still open. It returns once every connection has ended.
func (s *Server) Shutdown(ctx context.Context) error { return s.lines.Shutdown(ctx) }

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
