// Package acmecert obtains and renews the server's TLS certificates from an
// ACME certificate authority (RFC 8555; Let's Encrypt by default) for the
// server's host name and any extra names, answering the CA's TLS-ALPN-01
// (RFC 8737) and HTTP-01 (RFC 8555 §8.3) challenges itself.
//
// The ACME work is golang.org/x/crypto/acme/autocert's. x/crypto is already
// a dependency (argon2id), so no new module comes in (go-acme/lego is not
// even reachable from here); it answers both challenge types; it keeps its
// state behind a small Cache interface (autocert.DirCache on DATA/acme, the
// ACME account key included); and it renews each certificate on its own
// timer, a third of the lifetime before expiry (30 days for Let's
// Encrypt's 90-day certificates) or RenewBefore.
//
// What this package adds around autocert:
//   - a handshake never waits for the CA: certificates are obtained
//     eagerly in the background, re-checked every minute, and until the
//     first one is issued the self-signed fallback is served;
//   - only the configured names are ever asked for (autocert.HostWhitelist),
//     whatever SNI a client sends: a client naming another host, or none,
//     gets the host name's certificate, never a new order at the CA;
//   - every issuance, renewal and failure is logged with its reason, which
//     autocert itself drops (its renewal timer retries silently).
package acmecert

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
	"golang.org/x/net/idna"
)

// Config configures a Manager.
type Config struct {
	// DirectoryURL is the CA's ACME directory; empty means Let's Encrypt's
	// production directory (autocert.DefaultACMEDirectory).
	DirectoryURL string
	// Email is the account's contact address (the CA's expiry notices).
	Email string
	// Names are the certificate names, the server's host name first: it
	// is served to clients that send no SNI or a name not listed. Each name
	// gets its own certificate (autocert orders one name per certificate).
	Names []string
	// CacheDir holds the account key, the certificates and their keys
	// (created with mode 0700).
	CacheDir string
	// RootCAs verifies the CA's HTTPS endpoint; nil means the system's.
	RootCAs *x509.CertPool
	// RenewBefore is how long before expiry a certificate is renewed; 0
	// is autocert's default, a third of its lifetime, at most 30 days.
	RenewBefore time.Duration
	// HTTP01 also answers HTTP-01 challenges, through HTTPHandler on an
	// HTTP listener the caller runs on port 80. TLS-ALPN-01 is always
	// answered (and tried first, as autocert does).
	HTTP01 bool
	// Fallback is the certificate served until the first one is issued.
	Fallback func() *tls.Certificate
	Log      *slog.Logger
}

// Manager serves ACME certificates to the TLS listeners.
type Manager struct {
	cfg    Config
	names  []string // normalised, the host name first
	ac     *autocert.Manager
	http01 http.Handler
	log    *slog.Logger

	mu    sync.Mutex // serialises installs (and their log lines)
	certs atomic.Pointer[map[string]*tls.Certificate]
	nudge chan struct{}
	// challengeConfig serves TLS-ALPN-01 validation connections.
	challengeConfig *tls.Config
}

// checkEvery is how often the certificates are re-checked: what autocert
// holds is picked up (a renewal stored by another instance sharing the
// cache), and a name still without a certificate is retried when due.
const checkEvery = time.Minute

// Retry after a failed issuance: from minRetry, doubling up to maxRetry.
// autocert forgets a failed order after a minute; the CA's rate limits
// (Let's Encrypt: 5 failed validations per name and hour) make quicker
// retries pointless.
const (
	minRetry = 2 * time.Minute
	maxRetry = time.Hour
)

// New prepares the manager; Run obtains the certificates.
func New(cfg Config) (*Manager, error) {
	if len(cfg.Names) == 0 {
		return nil, errors.New("acme: no certificate names")
	}
	if cfg.Fallback == nil {
		return nil, errors.New("acme: no fallback certificate")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.DirectoryURL == "" {
		cfg.DirectoryURL = autocert.DefaultACMEDirectory
	}
	var names []string
	for _, n := range cfg.Names {
		name, err := CheckName(n)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("acme cache directory: %w", err)
	}
	// The account key and the certificates' keys live here: owner only,
	// even if the directory was created looser by hand.
	if err := os.Chmod(cfg.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("acme cache directory: %w", err)
	}
	m := &Manager{cfg: cfg, names: names, log: cfg.Log, nudge: make(chan struct{}, 1)}
	empty := map[string]*tls.Certificate{}
	m.certs.Store(&empty)

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	whitelist := autocert.HostWhitelist(names...)
	m.ac = &autocert.Manager{
		// Enabling ACME is accepting the CA's terms of service (README).
		Prompt: autocert.AcceptTOS,
		Cache:  &cache{DirCache: autocert.DirCache(cfg.CacheDir), m: m},
		// HTTP-01 requests carry the port in Host when the CA is told to
		// use another port than 80 (tests); the policy is on the name.
		HostPolicy: func(ctx context.Context, host string) error {
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			return whitelist(ctx, strings.ToLower(strings.TrimSuffix(host, ".")))
		},
		RenewBefore: cfg.RenewBefore,
		Email:       cfg.Email,
		Client: &acme.Client{DirectoryURL: cfg.DirectoryURL, UserAgent: "postern",
			HTTPClient: &http.Client{Timeout: time.Minute, Transport: &observer{base: tr, log: m.log}}},
	}
	if cfg.HTTP01 {
		// Calling HTTPHandler is what makes autocert offer http-01; other
		// paths on port 80 answer 404 (autocert's default redirects to
		// https on 443, which may not be served here).
		m.http01 = m.ac.HTTPHandler(http.NotFoundHandler())
	}
	m.log.Info("ACME certificate issuance pending; the self-signed certificate is served until then",
		"names", strings.Join(names, ","), "directory", cfg.DirectoryURL)
	m.challengeConfig = &tls.Config{GetCertificate: m.ac.GetCertificate, NextProtos: []string{acme.ALPNProto},
		MinVersion: tls.VersionTLS12}
	return m, nil
}

// Names are the certificate names, normalised, the host name first.
func (m *Manager) Names() []string { return append([]string(nil), m.names...) }

// Configure makes c serve the ACME certificates and answer TLS-ALPN-01.
//
// acme.ALPNProto ("acme-tls/1") is added to NextProtos only for a
// ClientHello that offers exactly that protocol, as a validating CA does
// (RFC 8737 §3): with it in every connection's NextProtos, Go's server
// would fail the handshake of a mail client that offers an ALPN protocol
// of its own ("smtp", "imap"), since the two lists would not overlap.
func (m *Manager) Configure(c *tls.Config) {
	c.GetCertificate = m.GetCertificate
	c.GetConfigForClient = m.GetConfigForClient
}

// GetConfigForClient returns the TLS-ALPN-01 configuration for a CA's
// validation handshake, and nil (the listener's own) for every other.
func (m *Manager) GetConfigForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if isChallenge(hello) {
		return m.challengeConfig, nil
	}
	return nil, nil
}

// GetCertificate picks the certificate for a handshake: the challenge
// certificate for a CA's TLS-ALPN-01 validation, else the certificate of
// the name the client asked for, else the host name's, else (before the
// first issuance) the fallback. It never waits for the CA.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if isChallenge(hello) {
		return m.ac.GetCertificate(hello)
	}
	return m.pick(serverName(hello.ServerName)), nil
}

func (m *Manager) pick(name string) *tls.Certificate {
	certs := *m.certs.Load()
	if c := certs[name]; c != nil {
		return c
	}
	if c := certs[m.names[0]]; c != nil {
		return c
	}
	return m.cfg.Fallback()
}

// Leaf is the ACME certificate in service for name, nil before one is.
func (m *Manager) Leaf(name string) *x509.Certificate {
	if c := (*m.certs.Load())[serverName(name)]; c != nil {
		return c.Leaf
	}
	return nil
}

// RenewalWindow is how long before its expiry autocert renews leaf: the
// same rule as autocert's renewal timer.
func (m *Manager) RenewalWindow(leaf *x509.Certificate) time.Duration {
	return renewalWindow(m.cfg.RenewBefore, leaf.NotAfter.Sub(leaf.NotBefore))
}

func renewalWindow(renewBefore, lifetime time.Duration) time.Duration {
	if renewBefore > 0 {
		return min(renewBefore, 30*24*time.Hour)
	}
	return min(lifetime/3, 30*24*time.Hour)
}

// HTTPHandler answers HTTP-01 challenges (nil unless Config.HTTP01); every
// other request gets 404.
func (m *Manager) HTTPHandler() http.Handler {
	if m.http01 == nil {
		return nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		m.http01.ServeHTTP(rec, r)
		// Only answers with a token are logged: anyone can make this
		// listener answer 404, and that must not fill the log.
		if rec.status == http.StatusOK && strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			m.log.Info("ACME http-01 challenge answered", "host", r.Host, "ip", r.RemoteAddr)
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Nudge makes Run check every name now (SIGHUP), a failing one included.
func (m *Manager) Nudge() {
	select {
	case m.nudge <- struct{}{}:
	default:
	}
}

// Run obtains a certificate for every name at once and re-checks them
// every minute until ctx ends. Renewal itself is autocert's timer, which
// starts once a certificate is obtained or loaded; Run sees its result
// when autocert stores the renewed certificate (cache.Put).
func (m *Manager) Run(ctx context.Context) {
	type attempt struct {
		next    time.Time
		backoff time.Duration
	}
	attempts := map[string]*attempt{}
	for _, n := range m.names {
		attempts[n] = &attempt{}
	}
	tick := time.NewTicker(checkEvery)
	defer tick.Stop()
	nudged := false
	for {
		for _, name := range m.names {
			a := attempts[name]
			if !nudged && time.Now().Before(a.next) {
				continue
			}
			cert, err := m.obtain(ctx, name)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				// An early try (SIGHUP) that fails does not lengthen the wait.
				if !nudged || a.backoff == 0 {
					a.backoff = min(max(2*a.backoff, minRetry), maxRetry)
				}
				a.next = time.Now().Add(a.backoff)
				m.log.Warn("ACME certificate not obtained; the current certificate stays in service",
					"name", name, "err", err, "retry_in", a.backoff.String())
				continue
			}
			a.backoff, a.next = 0, time.Time{}
			m.install(name, cert, false)
		}
		nudged = false
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-m.nudge:
			nudged = true
		}
	}
}

// obtain asks autocert for name's certificate: from its memory, from the
// cache, or (blocking, up to autocert's five minutes) from the CA. The
// wait ends with ctx, so that shutdown is not held up by a slow CA; the
// abandoned request ends by itself.
//
// Before a name's first order the CA's directory is fetched: an
// unreachable CA is then reported as such, and autocert, which refuses
// every request for a name for a minute after a failed order, is not
// involved, so that a SIGHUP once the CA is back is answered at once.
func (m *Manager) obtain(ctx context.Context, name string) (*tls.Certificate, error) {
	type result struct {
		cert *tls.Certificate
		err  error
	}
	done := make(chan result, 1)
	go func() {
		if (*m.certs.Load())[name] == nil {
			if _, err := m.ac.Cache.Get(ctx, name); err != nil {
				if _, err := m.ac.Client.Discover(ctx); err != nil {
					done <- result{nil, fmt.Errorf("the ACME directory %s: %w", m.cfg.DirectoryURL, err)}
					return
				}
			}
		}
		c, err := m.ac.GetCertificate(ecdsaHello(name))
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		return r.cert, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ecdsaHello is a ClientHello for name that supports ECDSA, so that
// autocert orders an ECDSA P-256 certificate: its handshakes cost a third
// of RSA-2048's (DESIGN.md, performance facts).
func ecdsaHello(name string) *tls.ClientHelloInfo {
	return &tls.ClientHelloInfo{ServerName: name,
		SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
		SupportedCurves:  []tls.CurveID{tls.CurveP256},
		CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}
}

// install puts c in service for name and logs what changed: issued says
// the CA just issued it (else it was found in the cache or in autocert's
// memory).
func (m *Manager) install(name string, c *tls.Certificate, issued bool) {
	if c == nil || len(c.Certificate) == 0 {
		return
	}
	leaf := c.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			m.log.Error("ACME certificate unreadable; not served", "name", name, "err", err)
			return
		}
		c.Leaf = leaf
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.certs.Load()
	prev := old[name]
	if prev != nil && bytes.Equal(prev.Certificate[0], c.Certificate[0]) {
		return
	}
	certs := make(map[string]*tls.Certificate, len(old)+1)
	for k, v := range old {
		certs[k] = v
	}
	certs[name] = c
	m.certs.Store(&certs)
	attrs := []any{"name", name, "serial", serialHex(leaf), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339),
		"issuer", leaf.Issuer.CommonName}
	switch {
	case prev != nil:
		m.log.Info("ACME certificate renewed", append(attrs, "previous_serial", serialHex(prev.Leaf))...)
	case issued:
		m.log.Info("ACME certificate issued", attrs...)
	default:
		m.log.Info("ACME certificate loaded", append(attrs, "dir", m.cfg.CacheDir)...)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); m.cfg.RenewBefore >= life {
		// autocert would renew such a certificate again at once, forever.
		m.log.Error("acme renew_before is not shorter than the certificate's lifetime: every certificate is due for renewal as soon as it is issued; lower renew_before",
			"renew_before", m.cfg.RenewBefore.String(), "lifetime", life.String())
	}
}

func serialHex(leaf *x509.Certificate) string {
	if leaf == nil || leaf.SerialNumber == nil {
		return ""
	}
	return leaf.SerialNumber.Text(16)
}

// cache is autocert's DirCache, watched: a certificate autocert stores is
// one it just obtained (first issuance or renewal), and goes into service
// at once.
type cache struct {
	autocert.DirCache
	m *Manager
}

// Put stores data; a certificate for one of the names (autocert keys
// them by the bare name, its RSA and challenge variants and the account
// key by other keys) is then installed.
func (c *cache) Put(ctx context.Context, key string, data []byte) error {
	if err := c.DirCache.Put(ctx, key, data); err != nil {
		c.m.log.Error("ACME: storing in the cache directory failed", "dir", string(c.DirCache), "key", key, "err", err)
		return err
	}
	if slices.Contains(c.m.names, key) {
		// autocert writes the key and the chain as PEM blocks in one file;
		// X509KeyPair picks each by its block type.
		pair, err := tls.X509KeyPair(data, data)
		if err != nil {
			c.m.log.Error("ACME certificate stored unreadable; not served", "name", key, "err", err)
			return nil
		}
		c.m.install(key, &pair, true)
	}
	return nil
}

// isChallenge reports a CA's TLS-ALPN-01 validation handshake: the only
// protocol offered is acme-tls/1 (RFC 8737 §3), autocert's own test.
func isChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto
}

// serverName is the SNI name as the certificates are keyed.
func serverName(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// CheckName validates a certificate name and returns it normalised
// (lower case, A-labels, no final dot). ACME here issues for DNS names the
// CA can reach: no IP address, no wildcard (that needs DNS-01), and at
// least two labels (autocert refuses single-label names).
func CheckName(name string) (string, error) {
	n := strings.TrimSuffix(strings.TrimSpace(name), ".")
	if n == "" {
		return "", errors.New("empty certificate name")
	}
	if net.ParseIP(n) != nil {
		return "", fmt.Errorf("%q is an IP address; ACME certificates here are for DNS names", name)
	}
	if strings.Contains(n, "*") {
		return "", fmt.Errorf("%q: wildcard names need the DNS-01 challenge, which Postern does not answer", name)
	}
	a, err := idna.Lookup.ToASCII(n)
	if err != nil {
		return "", fmt.Errorf("%q is not a valid host name: %v", name, err)
	}
	a = strings.ToLower(a)
	if len(a) > 253 {
		return "", fmt.Errorf("%q is longer than 253 characters", name)
	}
	labels := strings.Split(a, ".")
	if len(labels) < 2 {
		return "", fmt.Errorf("%q is not a fully qualified name (ACME needs at least two labels)", name)
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("%q is not a valid host name (label %q)", name, l)
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return "", fmt.Errorf("%q is not a valid host name (label %q)", name, l)
			}
		}
	}
	return a, nil
}
