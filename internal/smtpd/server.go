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
	"sync"
	"time"

	"postern.dev/postern/internal/connlog"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/limits"
	"postern.dev/postern/internal/metrics"
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
)

func (r Role) String() string {
	return [...]string{"submission", "submissions", "mx"}[r]
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
}

// Server is the set of SMTP listeners.
type Server struct {
	cfg       Config
	dir       *directory.Current
	auth      *signin.Authenticator
	submitter *transport.Submitter
	slots     *limits.Slots
	log       *slog.Logger

	// insecureAuth lets tests authenticate without TLS; never set otherwise.
	insecureAuth bool

	admission *smtpserver.Admission
	mu        sync.Mutex
	servers   []*smtpserver.Server
}

// New builds a Server.
func New(cfg Config, dir *directory.Current, a *signin.Authenticator, sub *transport.Submitter, slots *limits.Slots, log *slog.Logger) *Server {
	if cfg.MaxAuthFailures == 0 {
		cfg.MaxAuthFailures = 3
	}
	return &Server{cfg: cfg, dir: dir, auth: a, submitter: sub, slots: slots, log: log,
		admission: smtpserver.NewAdmission(cfg.Limits)}
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
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		Admission:         s.admission,
		Log:               s.log,
		Observe:           metrics.Listener(role.String()),
	}
	if pl := s.cfg.ProtocolLog; pl != nil {
		identity := protolog.ForRole(role.String())
		// Asked once per connection: a listener not set to Verbose costs
		// one map lookup per connection and nothing per line.
		srv.Transcript = func(c *smtpserver.Conn) smtpserver.Transcript {
			if !pl.Verbose(identity) {
				return nil
			}
			return pl.Session(identity, c.RemoteIP())
		}
	}
	// The tracking layer sits under TLS, so sessions can find their
	// connection's state through the TLS layer.
	l = &trackingListener{Listener: l}
	s.mu.Lock()
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	err := srv.Serve(l)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// maxRecipientsPerTransaction is the engine's backstop above the policy's
// limits (RecipientLimits is at most 1,000 in Exchange Online).
const maxRecipientsPerTransaction = 1000

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
	if s.cfg.ClientCAs != nil {
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: s.cfg.ClientCAs, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		verified = err == nil
	}
	return names, verified, fingerprint
}
