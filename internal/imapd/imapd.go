// Package imapd is Postern's IMAP4rev2/IMAP4rev1 server over its mail
// store: the protocol is github.com/emersion/go-imap/v2's imapserver;
// this package is the backend (folders, UIDs, flags, search, IDLE) and the
// connection policy (TLS before any credential, time and size caps).
//
// Listeners: Serve(l, true) for implicit TLS (993), Serve(l, false) for
// STARTTLS (143), where LOGIN and AUTHENTICATE are refused until TLS
// (LOGINDISABLED, RFC 9051 section 6.2.3). Who may sign in is decided by
// an Authenticator the caller supplies (the sign-in service); failures
// answer as Exchange Online does: "NO [AUTHENTICATIONFAILED] LOGIN
// failed." and "NO [AUTHENTICATIONFAILED] AUTHENTICATE failed.".
//
// Limits, each spent by a client only after it is capped: a command line
// is at most 50 KiB and a literal inside a command 4 KiB (imapserver's
// caps); an APPEND literal at most the account's MaxAppendSize (refused
// before a byte of it is read, advertised as APPENDLIMIT); one command at a
// time per connection (imapserver reads the next command only after
// answering the last, so pipelined commands wait in the socket buffer);
// 30 s to send a command line before sign-in and 2 minutes in all to sign
// in; 35 minutes of idling once signed in (RFC 9051 section 5.4 asks at
// least 30); a SEARCH scans at most a fixed number of body bytes.
//
// Not offered, because go-imap v2's server lacks them: CONDSTORE/QRESYNC
// (RFC 7162) and QUOTA (RFC 9208). The store keeps MODSEQs already, so
// CONDSTORE needs only protocol support.
package imapd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"postern.dev/postern/internal/store"
)

// Authenticator decides sign-ins. The lead adapts the sign-in service
// (internal/signin) to it.
type Authenticator interface {
	// Basic checks a user name and password (LOGIN, AUTHENTICATE PLAIN).
	Basic(ctx context.Context, ip netip.Addr, username, password string) (Account, error)
	// OAuth checks a bearer token (AUTHENTICATE XOAUTH2 / OAUTHBEARER);
	// user is the SASL user name, "" when OAUTHBEARER names none.
	OAuth(ctx context.Context, ip netip.Addr, user, token string) (Account, error)
}

// Account is the mailbox a sign-in opens.
type Account struct {
	Mailbox int64  // the mailbox whose folders the session sees
	Address string // its primary address, for logs
	// Actor is who proved the credentials, when it is not the mailbox
	// (a delegate with Full Access); for logs.
	Actor string
	// MaxAppendSize caps one APPEND (Exchange's MaxReceiveSize of the
	// mailbox); 0 takes Options.MaxAppendSize.
	MaxAppendSize int64
	// Quota is the mailbox's ProhibitSendReceiveQuota: an APPEND that
	// would take the mailbox past it is refused. 0 for none.
	Quota int64
}

// AuthError is a refused sign-in. Any other error from the Authenticator
// is taken as temporary.
type AuthError struct {
	// Temporary: throttled, busy, identity provider unreachable; the
	// answer carries [UNAVAILABLE] instead of [AUTHENTICATIONFAILED].
	Temporary bool
	// Close: answer, then close the connection (a blocked address).
	Close bool
	// Text replaces the generic "LOGIN failed." / "AUTHENTICATE failed."
	// when Exchange answers this refusal with its own text.
	Text string
	// Err is the cause, for the log only.
	Err error
}

func (e *AuthError) Error() string {
	s := "sign-in refused"
	if e.Temporary {
		s = "sign-in temporarily refused"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *AuthError) Unwrap() error { return e.Err }

// Options configure a Server.
type Options struct {
	Store store.Store
	Auth  Authenticator
	// TLSConfig serves implicit TLS and STARTTLS; without it only
	// plaintext listeners work, and nobody can sign in on them.
	TLSConfig *tls.Config
	Logger    *slog.Logger
	// MaxAppendSize is the APPEND limit for accounts that carry none
	// (default 35 MB, Exchange Online's default message size).
	MaxAppendSize int64
	// PreAuthTimeout is how long a connection may stay without signing
	// in (default 2 minutes).
	PreAuthTimeout time.Duration
	// InsecureAuth allows LOGIN/AUTHENTICATE without TLS (tests only).
	InsecureAuth bool
	// SearchBudget caps the message bytes one SEARCH may read for its
	// header and text criteria (default 256 MiB).
	SearchBudget int64
}

// Server is an IMAP server over the mail store.
type Server struct {
	opts Options
	log  *slog.Logger
	imap *imapserver.Server

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	closed    bool
	wg        sync.WaitGroup // one per session

	// parts bounds the MIME-part extractions that hold a large message
	// section in memory at once (imapserver's extractors buffer a part).
	parts chan struct{}
}

// Defaults.
const (
	defaultMaxAppend      = 35 << 20
	defaultPreAuthTimeout = 2 * time.Minute
	defaultSearchBudget   = 256 << 20
	authTimeout           = 30 * time.Second
)

// New returns a server; it listens only when Serve is called.
func New(o Options) *Server {
	if o.MaxAppendSize <= 0 {
		o.MaxAppendSize = defaultMaxAppend
	}
	if o.PreAuthTimeout <= 0 {
		o.PreAuthTimeout = defaultPreAuthTimeout
	}
	if o.SearchBudget <= 0 {
		o.SearchBudget = defaultSearchBudget
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		opts:      o,
		log:       log.With("protocol", "IMAP4"),
		listeners: map[net.Listener]struct{}{},
		sessions:  map[*session]struct{}{},
		parts:     make(chan struct{}, 2),
	}
	s.imap = imapserver.New(&imapserver.Options{
		NewSession: s.newSession,
		Caps: imap.CapSet{
			imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {},
			// IMAP4rev1 clients see these listed; IMAP4rev2 includes them.
			imap.CapNamespace: {}, imap.CapUIDPlus: {}, imap.CapESearch: {}, imap.CapSearchRes: {},
			imap.CapListExtended: {}, imap.CapListStatus: {}, imap.CapMove: {}, imap.CapStatusSize: {},
			imap.CapChildren: {}, imap.CapSpecialUse: {}, imap.CapLiteralPlus: {},
		},
		TLSConfig:    o.TLSConfig,
		InsecureAuth: o.InsecureAuth,
		Logger:       libLogger{s.log},
	})
	return s
}

// libLogger takes imapserver's log lines at debug level: they are about
// one client's connection (a read timeout, a reset), not the server.
type libLogger struct{ l *slog.Logger }

func (l libLogger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if strings.Contains(msg, "panic") {
		l.l.Error("imap connection", "detail", msg)
		return
	}
	l.l.Debug("imap connection", "detail", msg)
}

// errServerClosed is Serve's answer after Shutdown.
var errServerClosed = errors.New("imapd: server closed")

// Serve accepts connections on l until Shutdown; implicitTLS wraps each in
// TLS first (port 993). The caller wraps l with its connection admission.
func (s *Server) Serve(l net.Listener, implicitTLS bool) error {
	if implicitTLS && s.opts.TLSConfig == nil {
		return errors.New("imapd: implicit TLS needs a TLS configuration")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	err := s.imap.Serve(&listener{Listener: l, srv: s, tls: implicitTLS})
	s.mu.Lock()
	delete(s.listeners, l)
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil
	}
	return err
}

// Shutdown stops accepting, tells every client "BYE" (RFC 9051 section
// 7.1.5) and waits for their sessions to end, until ctx is done; then it
// closes whatever is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	sessions := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.bye("Server shutting down")
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.imap.Close()
	return err
}

// listener wraps accepted connections in a guard (and TLS for 993).
type listener struct {
	net.Listener
	srv *Server
	tls bool
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	g := &guardConn{Conn: c}
	if l.tls {
		return tls.Server(g, l.srv.opts.TLSConfig), nil
	}
	return g, nil
}

// guardConn sits under TLS, on the raw connection: it can end a
// connection after its current answer (Close refusals) by failing the
// next read.
type guardConn struct {
	net.Conn
	closing atomic.Bool
}

var errClosing = errors.New("connection closed by policy")

func (g *guardConn) Read(b []byte) (int, error) {
	if g.closing.Load() {
		return 0, errClosing
	}
	return g.Conn.Read(b)
}

// guardOf finds the guard under a connection imapserver holds.
func guardOf(c net.Conn) *guardConn {
	switch c := c.(type) {
	case *guardConn:
		return c
	case *tls.Conn:
		g, _ := c.NetConn().(*guardConn)
		return g
	}
	return nil
}

func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Server shutting down"}
	}
	nc := c.NetConn()
	ss := &session{srv: s, conn: c, ip: remoteIP(nc)}
	ss.log = s.log.With("client", ss.ip.String())
	s.sessions[ss] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	// Sign in within PreAuthTimeout or be disconnected: imapserver's
	// 30 s per command would let a client keep a connection forever with
	// NOOPs without ever authenticating.
	ss.preAuth = time.AfterFunc(s.opts.PreAuthTimeout, func() {
		if !ss.signedIn.Load() {
			ss.bye("Autologout; idle for too long")
		}
	})
	return ss, nil, nil
}

func (s *Server) endSession(ss *session) {
	s.mu.Lock()
	if _, ok := s.sessions[ss]; ok {
		delete(s.sessions, ss)
		s.wg.Done()
	}
	s.mu.Unlock()
}
