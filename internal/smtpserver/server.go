// Package smtpserver is Postern's SMTP protocol engine: the command loop of
// RFC 5321 with PIPELINING (RFC 2920), STARTTLS (RFC 3207), AUTH (RFC 4954),
// CHUNKING/BDAT (RFC 3030), 8BITMIME, SMTPUTF8, SIZE and ENHANCEDSTATUSCODES.
// It holds no business rules: every transaction command goes to a Session,
// and every reply text comes from package reply.
//
// It replaces go-smtp's server side because a server on the open internet
// must control what go-smtp does not let it: connection caps (server-wide,
// per address, per address rate) checked before a session exists; an idle
// timeout for commands that a client trickling half a line cannot extend,
// and that never executes the half line; a DATA reader that does not reset
// its timeout for the whole message but for each read that makes progress,
// never buffers the message, and passes the bare CR of ".\r" on instead of
// hiding it; unknown commands of any length answered alike; and a
// shutdown that ends idle connections at once. go-smtp's client is still
// used for outbound delivery.
package smtpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"postern.dev/postern/internal/lineserver"
)

// Backend makes a Session for a connection once it has said HELO or EHLO
// (again after STARTTLS, so the session sees the TLS state).
type Backend interface {
	NewSession(c *Conn) (Session, error)
}

// BackendFunc adapts a function to Backend.
type BackendFunc func(c *Conn) (Session, error)

// NewSession calls f.
func (f BackendFunc) NewSession(c *Conn) (Session, error) { return f(c) }

// Session receives a connection's transactions. A returned error that is a
// *reply.Reply (wrapped or not) is sent as it is; any other error becomes a
// temporary failure whose text reveals nothing.
type Session interface {
	// Reset ends the transaction (RSET, a new EHLO, or after DATA).
	Reset()
	// Logout ends the session (QUIT, STARTTLS, or a closed connection).
	Logout() error
	Mail(from string, opts *smtp.MailOptions) error
	Rcpt(to string, opts *smtp.RcptOptions) error
	// Data reads the message from r until io.EOF and returns the reply to
	// the end of data (a 250 *reply.Reply, or nil for a generic 250). r
	// streams from the connection; an error from it is the reply to give
	// (a *reply.Reply) or means the client is gone.
	Data(r io.Reader) error
}

// Transcript receives one connection's conversation, as Exchange's
// protocol log records it. The engine tells it what it alone knows: which
// lines are SASL responses (RFC 4954 section 4: every line after a 334),
// so that they can be masked, and where a message body was, which is
// given by size only. Its methods are called from the connection's
// goroutine, in order.
type Transcript interface {
	// Received is a line the client sent, without CRLF.
	Received(line string, sasl bool)
	// Sent is a reply as written, CRLF-terminated lines.
	Sent(reply string)
	// Message is a message body (DATA) or a BDAT chunk of this many bytes.
	Message(bytes int64)
	// Close is the end of the connection.
	Close()
}

// AuthSession is a Session that offers SASL mechanisms.
type AuthSession interface {
	AuthMechanisms() []string
	Auth(mech string) (sasl.Server, error)
}

// Server serves SMTP on one listener. Set its fields before Serve.
type Server struct {
	Backend Backend
	// Hostname is the name in the greeting.
	Hostname string
	// TLSConfig enables STARTTLS, or with ImplicitTLS, TLS from the first
	// byte (RFC 8314, port 465).
	TLSConfig   *tls.Config
	ImplicitTLS bool
	// AllowInsecureAuth offers AUTH without TLS (tests only).
	AllowInsecureAuth bool
	EnableSMTPUTF8    bool

	// MaxMessageBytes is the largest message accepted and advertised
	// (SIZE, RFC 1870). MaxRecipients caps a transaction's accepted
	// recipients, a backstop above the Session's own limits.
	MaxMessageBytes int64
	MaxRecipients   int
	// MaxLineLength caps command lines and DATA lines; MaxAuthLineLength
	// caps AUTH command lines and SASL responses, which carry OAuth
	// tokens (RFC 4954 section 4 asks servers to take at least 12,288).
	MaxLineLength     int
	MaxAuthLineLength int

	// ReadTimeout is the idle timeout: the longest a client may take to
	// send a whole command line, and the longest silence inside DATA or a
	// BDAT chunk. WriteTimeout bounds each reply.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration

	// Transcript, when set, is asked once per connection for where to
	// record its conversation (protocol logging); nil, or a nil result,
	// records nothing and costs nothing more per line than a nil check.
	Transcript func(c *Conn) Transcript

	// Admission caps connections; shared by the listeners of one server.
	Admission *Admission
	Log       *slog.Logger
	// Observe, when set, is told of connections and replies (metrics).
	Observe Observer

	// readTimeout, when set, replaces ReadTimeout for connections accepted
	// from then on (SetReadTimeout).
	readTimeout atomic.Pointer[time.Duration]

	// lines is the listener, the open connections and their shutdown.
	lines lineserver.Server
}

// SetReadTimeout changes the idle timeout for the connections accepted from
// now on (a configuration reload); open connections keep the one they
// started with.
func (s *Server) SetReadTimeout(d time.Duration) { s.readTimeout.Store(&d) }

func (s *Server) currentReadTimeout() time.Duration {
	if d := s.readTimeout.Load(); d != nil {
		return *d
	}
	return s.ReadTimeout
}

// Serve accepts connections on l until l is closed or the server shut down.
func (s *Server) Serve(l net.Listener) error {
	// l stays registered after Serve returns, so that Shutdown closes it
	// even when an accept failed for good.
	if !s.lines.AddListener(l) {
		return net.ErrClosed
	}
	for {
		nc, err := s.lines.Accept(l, s.log(), "accept failed; retrying")
		if err != nil {
			if errors.Is(err, lineserver.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		ip := remoteIP(nc)
		if !s.Admission.Admit(ip) {
			s.refuse(nc)
			continue
		}
		c := newConn(s, nc, ip)
		if s.Observe != nil {
			s.Observe.Opened()
		}
		if !s.lines.Go(&c.lc, func() {
			defer s.Admission.Release(ip)
			c.serve()
		}) {
			s.Admission.Release(ip)
			nc.Close()
			return nil
		}
	}
}

// refuse answers a connection over a cap with 421 and closes it, without
// making a session or spending more than one short write on it. On an
// implicit-TLS listener nothing can be said before a handshake, which is
// exactly what a cap saves, so the connection is just closed.
func (s *Server) refuse(nc net.Conn) {
	if !s.ImplicitTLS {
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		io.WriteString(nc, replyLine(tooManyConnections))
		if s.Observe != nil {
			s.Observe.Replied(tooManyConnections)
		}
	}
	if s.Observe != nil {
		s.Observe.Refused()
	}
	nc.Close()
}

// Shutdown stops accepting, tells every connection waiting for a command
// that the service is shutting down (421) and lets those in a transaction
// finish it, until ctx ends; then it closes whatever is still open. It
// returns once every connection has ended, so its duration is bounded by
// ctx plus the time a closed connection takes to unwind.
func (s *Server) Shutdown(ctx context.Context) error { return s.lines.Shutdown(ctx) }

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

func remoteIP(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
