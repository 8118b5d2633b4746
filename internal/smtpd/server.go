// Package smtpd runs Postern's SMTP listeners. It is a thin adapter over
// package smtpserver, the protocol engine: it turns protocol events into
// questions to package policy and calls to package transport, and holds no
// business rules of its own.
package smtpd

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"postern.dev/postern/internal/connlog"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/limits"
	"postern.dev/postern/internal/metrics"
	"postern.dev/postern/internal/policy"
	"postern.dev/postern/internal/protolog"
	"postern.dev/postern/internal/senderauth"
	"postern.dev/postern/internal/signin"
	"postern.dev/postern/internal/smtpserver"
	"postern.dev/postern/internal/transport"
)

// Role is what a listener is for.
type Role int

const (
	// Submission is port 587's role: STARTTLS, then AUTH, then mail.
	Submission Role = iota
	// Submissions is port 465's role: implicit TLS (RFC 8314), beyond Exchange.
	Submissions
	// MX is port 25's role: anonymous mail for the organization's mailboxes,
	// and SMTP AUTH after STARTTLS as Exchange allows on 25.
	MX
	// SubmissionLegacy is the legacy-TLS endpoint (Exchange Online's
	// smtp-legacy.office365.com, seed 002): Submission, where STARTTLS also
	// negotiates TLS 1.0 and 1.1, and only mailboxes of organizations with
	// Set-TransportConfig -AllowLegacyTLSClients $true may authenticate.
	SubmissionLegacy
)

// String is the role's configuration key.
func (r Role) String() string {
	return [...]string{"submission", "submissions", "mx", "submission_legacy"}[r]
}

// legacyTLS is the legacy listener's TLS configuration: the server's, with
// TLS 1.0 and 1.1 allowed. Go's crypto/tls still implements them for
// servers but leaves them out unless MinVersion asks for them (GODEBUG
// tls10server=1 would lower the default for every listener; setting
// MinVersion here weakens this listener alone).
func legacyTLS(c *tls.Config) *tls.Config {
	if c == nil {
		return nil
	}
	c = c.Clone()
	c.MinVersion = tls.VersionTLS10
	return c
}

// requiresAuth reports whether MAIL FROM needs a prior successful AUTH.
func (r Role) requiresAuth() bool { return r != MX }

// Config is what the listeners share.
type Config struct {
	Hostname string
	TLS      *tls.Config
	// ReadTimeout is how long a client may stay silent (RFC 5321 section
	// 4.5.3.2 suggests 5 minutes).
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// MaxAuthFailures is how many failed AUTH attempts one connection may
	// make before it is closed.
	MaxAuthFailures int
	// ClientCAs verifies client certificates for certificate-based inbound
	// connectors; nil trusts only certificates pinned on a connector.
	ClientCAs *x509.CertPool
	// SenderAuth checks SPF, DKIM and DMARC of anonymous mail that no
	// connector admitted; nil skips the checks.
	SenderAuth *senderauth.Checker
	// ConnLog records refusals before acceptance; nil records none.
	ConnLog *connlog.Logger
	// Limits caps connections across every listener (global, per client
	// address, per address and minute).
	Limits smtpserver.Limits
	// ProtocolLog records the conversations on listeners set to Verbose
	// (Set-ReceiveConnector); nil records none.
	ProtocolLog *protolog.Log
	// Throttle is source throttling's limits at start (Live afterwards).
	Throttle policy.SourceLimits
}

// Server is the set of SMTP listeners.
type Server struct {
	cfg       Config
	dir       *directory.Current
	auth      *signin.Authenticator
	submitter *transport.Submitter
	slots     limits.ConnectionSlots
	log       *slog.Logger

	// insecureAuth lets tests authenticate without TLS; never set otherwise.
	insecureAuth bool

	admission *smtpserver.Admission
	// sources counts the Direct Send and connector relay messages each
	// source address (an IPv6 client's /64) sent in the last hour.
	sources *limits.Window[sourceKey]
	// now is the clock (tests may set it).
	now func() time.Time
	// live is what a configuration reload changes (Reconfigure); read
	// once per connection or per check, never held across a change.
	live    atomic.Pointer[Live]
	mu      sync.Mutex
	servers []*smtpserver.Server
}

// Live is what a configuration reload changes while the listeners run.
// Connections accepted after the change get it; open ones keep their idle
// timeout and their admission.
type Live struct {
	ReadTimeout time.Duration
	ClientCAs   *x509.CertPool
	SenderAuth  *senderauth.Checker
	Limits      smtpserver.Limits
	// Throttle is the messages per hour one source may send as Direct
	// Send and as connector relay ([throttle]).
	Throttle policy.SourceLimits
}

// sourceKey is what source throttling counts: a class of mail from a
// source address.
type sourceKey struct {
	class  policy.SourceClass
	source netip.Prefix
}

// Sweep forgets the sources whose hour has emptied.
func (s *Server) Sweep(now time.Time) { s.sources.Sweep(now) }

// New builds a Server.
func New(cfg Config, dir *directory.Current, a *signin.Authenticator, sub *transport.Submitter, slots limits.ConnectionSlots, log *slog.Logger) *Server {
	if cfg.MaxAuthFailures == 0 {
		cfg.MaxAuthFailures = 3
	}
	s := &Server{cfg: cfg, dir: dir, auth: a, submitter: sub, slots: slots, log: log,
		admission: smtpserver.NewAdmission(cfg.Limits),
		// An hour in 60 one-minute buckets: a source's share comes back
		// minute by minute.
		sources: limits.NewWindow[sourceKey](time.Hour, 60, time.Hour), now: time.Now}
	s.live.Store(&Live{ReadTimeout: cfg.ReadTimeout, ClientCAs: cfg.ClientCAs, SenderAuth: cfg.SenderAuth, Limits: cfg.Limits, Throttle: cfg.Throttle})
	return s
}

// Reconfigure applies a configuration reload to every listener, those
// serving now and those started later.
func (s *Server) Reconfigure(l Live) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live.Store(&l)
	s.admission.SetLimits(l.Limits)
	for _, srv := range s.servers {
		srv.SetReadTimeout(l.ReadTimeout)
	}
}

// Serve accepts connections on l for a role until l is closed.
func (s *Server) Serve(l net.Listener, role Role) error {
	srv := &smtpserver.Server{
		Backend: smtpserver.BackendFunc(func(c *smtpserver.Conn) (smtpserver.Session, error) {
			return s.newSession(c, role), nil
		}),
		Hostname:          s.cfg.Hostname,
		TLSConfig:         s.cfg.TLS,
		ImplicitTLS:       role == Submissions,
		AllowInsecureAuth: s.insecureAuth,
		EnableSMTPUTF8:    true,
		MaxMessageBytes:   directory.MaxMessageSize,
		MaxRecipients:     maxRecipientsPerTransaction,
		MaxLineLength:     2000, // twice RFC 5321's 1000 (section 4.5.3.1.6), as is customary
		// OAuth tokens are capped at 16 KiB; base64 and the SASL framing
		// make that about 22 KiB on the line.
		MaxAuthLineLength: 32 << 10,
		WriteTimeout:      s.cfg.WriteTimeout,
		Admission:         s.admission,
		Log:               s.log,
		Observe:           metrics.Listener(role.String()),
	}
	if role == SubmissionLegacy {
		srv.TLSConfig = legacyTLS(s.cfg.TLS)
	}
	if pl := s.cfg.ProtocolLog; pl != nil {
		identity := protolog.ForRole(role.String())
		// Asked once per connection: a listener not set to Verbose costs
		// one map lookup per connection and nothing per line.
		srv.Transcript = func(c *smtpserver.Conn) smtpserver.Transcript {
			var tr smtpserver.Transcript
			if pl.Verbose(identity) {
				tr = pl.Session(identity, c.RemoteIP())
			}
			// Inbound connectors judge anonymous mail, which arrives on
			// the MX role only.
			if role == MX {
				if p := s.connectorTranscript(pl, c); p != nil {
					if tr == nil {
						return p
					}
					return teeTranscript{tr, p}
				}
			}
			return tr
		}
	}
	// The tracking layer sits under TLS, so sessions can find their
	// connection's state through the TLS layer.
	l = &trackingListener{Listener: l}
	s.mu.Lock()
	// Under mu, so that a Reconfigure cannot slip between reading the
	// timeout and this server joining the list it updates.
	srv.ReadTimeout = s.live.Load().ReadTimeout
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	err := srv.Serve(l)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// connectorTranscript starts holding the transcript of a connection whose
// client could match an inbound connector with protocol logging on: by its
// address, or, when STARTTLS is offered, by a certificate not yet seen.
// Whether it is written, and for whom, is decided at its end (see package
// protolog, Pending): a connector is matched per recipient, and one
// session can carry several organizations' recipients. With no logged
// connector, a connection costs one length check.
func (s *Server) connectorTranscript(pl *protolog.Log, c *smtpserver.Conn) *protolog.Pending {
	logged := s.dir.Load().LoggedInboundConnectors()
	if len(logged) == 0 {
		return nil
	}
	tc := trackedOf(c.Conn())
	if tc == nil {
		return nil
	}
	ip := c.RemoteIP()
	for _, ic := range logged {
		if ic.MatchesIP(ip) || ic.TlsSenderCertificateName != "" && s.cfg.TLS != nil {
			tc.pending = pl.Pending(c.SessionID(), ip)
			return tc.pending
		}
	}
	return nil
}

// teeTranscript gives a conversation to two transcripts: the listener's
// log and an inbound connector's held one.
type teeTranscript [2]smtpserver.Transcript

func (t teeTranscript) Received(line string, sasl bool) {
	t[0].Received(line, sasl)
	t[1].Received(line, sasl)
}

func (t teeTranscript) Sent(reply string) {
	t[0].Sent(reply)
	t[1].Sent(reply)
}

func (t teeTranscript) Message(bytes int64) {
	t[0].Message(bytes)
	t[1].Message(bytes)
}

func (t teeTranscript) Close() {
	t[0].Close()
	t[1].Close()
}

// maxRecipientsPerTransaction is the engine's backstop above the policy's
// limits (RecipientLimits and MaxRecipientEnvelopeLimit are at most 1,000 in
// Exchange Online). It is twice that, so that a message over any limit is
// still refused whole at end of DATA (RecipLimit) rather than cut short at
// RCPT; past it, RCPT gets 452 4.5.3 and the message is refused all the
// same. Only a count is kept for the recipients past the limits.
const maxRecipientsPerTransaction = 2 * directory.MaxRecipientLimits

// Admission is the connection admission of every SMTP listener (the global
// cap, per client address and per minute); the IMAP4 and POP3 listeners
// are admitted by it too, so a client has one budget whatever it speaks.
func (s *Server) Admission() *smtpserver.Admission { return s.admission }

// OpenConnections reports how many SMTP connections are open.
func (s *Server) OpenConnections() int { return s.admission.Open() }

// Shutdown stops accepting and waits for open sessions to end, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	servers := s.servers
	s.mu.Unlock()
	var first error
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// clientCertificate returns a client certificate's names (CN and DNS
// SANs), whether it chains to a configured client CA, and the SHA-256 of
// its public key, which connectors can pin.
func (s *Server) clientCertificate(chain []*x509.Certificate) (names []string, verified bool, fingerprint string) {
	leaf := chain[0]
	if leaf.Subject.CommonName != "" {
		names = append(names, leaf.Subject.CommonName)
	}
	names = append(names, leaf.DNSNames...)
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	fingerprint = hex.EncodeToString(sum[:])
	if cas := s.live.Load().ClientCAs; cas != nil {
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: cas, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		verified = err == nil
	}
	return names, verified, fingerprint
}
