package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"postern.dev/postern/internal/acmecert"
	"postern.dev/postern/internal/config"
	"postern.dev/postern/internal/smtpserver"
)

// tlsConfig loads the configured certificate, or generates (once) and loads
// a self-signed one in dir/tls. ECDSA P-256: a handshake costs about a third
// of RSA-2048's on these machines (DESIGN.md, performance facts).
//
// TLS 1.2 is the minimum, as Exchange Online requires for SMTP AUTH; Go's
// session tickets give resumption to clients that reconnect per message.
// The certificate is served through GetCertificate from a certificate that
// can be reloaded while the server runs (certbot renewals, an internal CA).
func tlsConfig(certFile, keyFile, dir, hostname string) (*tls.Config, error) {
	c, err := loadCertificate(certFile, keyFile, dir, hostname)
	if err != nil {
		return nil, err
	}
	return c.config(), nil
}

func loadCertificate(certFile, keyFile, dir, hostname string) (*certificate, error) {
	if certFile == "" {
		certFile, keyFile = filepath.Join(dir, "tls", "cert.pem"), filepath.Join(dir, "tls", "key.pem")
		if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
			if err := generateCert(certFile, keyFile, hostname); err != nil {
				return nil, err
			}
		}
	}
	c := &certificate{certFile: certFile, keyFile: keyFile}
	if _, err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// certificate is the serving certificate, read from its PEM files again
// on SIGHUP or when they change on disk. A handshake takes whichever
// certificate is current when it starts, so a reload drops no connection;
// a pair that fails to load leaves the previous one in service.
type certificate struct {
	certFile, keyFile string

	mu      sync.Mutex // serialises reloads
	modTime time.Time  // of the newer of the two files, at the last load
	cur     atomic.Pointer[tls.Certificate]
}

// config is the TLS configuration serving c.
func (c *certificate) config() *tls.Config {
	// Client certificates are asked for, never required: a device with one
	// can match a certificate-based inbound connector; Go does not verify
	// it here, the SMTP layer does (against tls_client_ca or a pin).
	return &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.cur.Load(), nil },
		MinVersion:     tls.VersionTLS12, ClientAuth: tls.RequestClientCert,
	}
}

// reload reads the files again; it returns the new certificate's leaf.
func (c *certificate) reload() (*x509.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	mod := c.filesModTime()
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	pair.Leaf = leaf
	c.cur.Store(&pair)
	c.modTime = mod
	return leaf, nil
}

// changed reports whether either file is newer than the loaded pair.
func (c *certificate) changed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.filesModTime().After(c.modTime)
}

func (c *certificate) filesModTime() time.Time {
	var t time.Time
	for _, f := range []string{c.certFile, c.keyFile} {
		if fi, err := os.Stat(f); err == nil && fi.ModTime().After(t) {
			t = fi.ModTime()
		}
	}
	return t
}

// expiryWarning is how close to its notAfter a certificate is warned about.
const expiryWarning = 14 * 24 * time.Hour

// ReloadCertificate asks for the TLS certificate files to be read again
// (SIGHUP); the background goroutine does it. New handshakes use the new
// certificate; connections already open keep theirs.
func (s *Server) ReloadCertificate() {
	select {
	case s.certReload <- struct{}{}:
	default: // one is pending already
	}
}

// reloadCertificate reads the files again; a pair that fails to load is
// logged and the current one stays. Only background() calls it.
func (s *Server) reloadCertificate() {
	leaf, err := s.cert.reload()
	certFile, _ := s.cert.files()
	if err != nil {
		s.log.Error("TLS certificate not reloaded; the current one stays", "cert", certFile, "err", err)
		return
	}
	s.log.Info("TLS certificate loaded", "cert", certFile, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
	s.expiryWarned = time.Time{} // a new certificate: say at once if it expires soon
	s.checkExpiry(time.Now())
}

// checkExpiry warns about the certificate served for the host name.
func (s *Server) checkExpiry(now time.Time) {
	if s.acme != nil {
		if leaf := s.acme.Leaf(s.acme.Names()[0]); leaf != nil {
			// An ACME certificate is renewed within its renewal window
			// (30 days for Let's Encrypt's): halfway through it, renewal
			// has been failing for long enough to say so.
			s.warnExpiry(leaf, "acme:"+s.acme.Names()[0], min(expiryWarning, s.acme.RenewalWindow(leaf)/2), now)
			return
		}
	}
	certFile, _ := s.cert.files()
	s.warnExpiry(s.cert.cur.Load().Leaf, certFile, expiryWarning, now)
}

// warnExpiry logs, once a day at most, a certificate that expires within
// within.
func (s *Server) warnExpiry(leaf *x509.Certificate, source string, within time.Duration, now time.Time) {
	if left := leaf.NotAfter.Sub(now); left < within && now.Sub(s.expiryWarned) >= 24*time.Hour {
		s.expiryWarned = now
		round := time.Hour
		if left < 2*time.Hour {
			round = time.Second
		}
		s.log.Warn("TLS certificate expires soon", "cert", source, "not_after", leaf.NotAfter, "left", left.Round(round).String())
	}
}

// newACME prepares the ACME certificates for the host name and the
// configured names, kept in DATA/acme.
func (s *Server) newACME() (*acmecert.Manager, error) {
	a := s.cfg.ACME
	roots, err := rootCAs(a.RootCAFile)
	if err != nil {
		return nil, fmt.Errorf("acme root_ca_file: %w", err)
	}
	m, err := acmecert.New(acmecert.Config{
		DirectoryURL: a.DirectoryURL, Email: a.Email, Names: append([]string{s.cfg.Hostname}, a.Names...),
		CacheDir: filepath.Join(s.cfg.Data, "acme"), RootCAs: roots, RenewBefore: a.RenewBefore.Duration,
		HTTP01:   a.HTTPListen != "" && a.HTTPListen != config.Off,
		Fallback: s.cert.cur.Load, Log: s.log,
	})
	if err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	return m, nil
}

// warnACMEReachability says when the CA may not reach this server: a CA
// validates TLS-ALPN-01 on port 443 (RFC 8737 §3) and HTTP-01 on port 80
// (RFC 8555 §8.3), whatever port the server listens on.
func (s *Server) warnACMEReachability() {
	if a := s.cfg.ACME.HTTPListen; a != "" && a != config.Off {
		return
	}
	for _, addr := range []string{s.cfg.Admin, s.cfg.Submissions} {
		if _, port, err := net.SplitHostPort(addr); err == nil && port == "443" {
			return
		}
	}
	s.log.Warn("ACME: the CA validates TLS-ALPN-01 on port 443 and HTTP-01 on port 80, and neither is a listener here; forward port 443 to the submissions or admin listener, or set admin = \":443\" or [acme] http_listen = \":80\"")
}

// listenHTTP01 starts the HTTP-01 challenge listener ([acme]
// http_listen). It answers challenge tokens only (404 otherwise), and its
// connections, headers and time are capped like every listener's.
func (s *Server) listenHTTP01() error {
	if s.acme == nil || s.acme.HTTPHandler() == nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.ACME.HTTPListen)
	if err != nil {
		return fmt.Errorf("acme http_listen: %w", err)
	}
	// A CA validates from a handful of addresses at once; 16 per address
	// and 128 in all leave room for that and nothing for a flood.
	ln = smtpserver.NewAdmission(smtpserver.Limits{MaxConnections: 128, MaxConnectionsPerIP: 16}).Listener(ln)
	s.http01 = &http.Server{Handler: s.acme.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 8 << 10,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	s.log.Info("listening", "role", "http01", "addr", ln.Addr().String())
	srv := s.http01
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("acme http-01 listener stopped", "err", err)
		}
	}()
	return nil
}

// clientCAs loads the CAs trusted for client certificates; nil for none.
func clientCAs(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New(file + ": no certificates found")
	}
	return pool, nil
}

// generateCert writes a self-signed certificate valid for hostname,
// localhost and the loopback addresses, for ten years.
func generateCert(certFile, keyFile, hostname string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname, Organization: []string{"Postern self-signed"}},
		DNSNames:              []string{hostname, "localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so clients can trust it directly as its own CA
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// rootCAs is the system's root pool plus the CAs in file, for verifying
// smart hosts; nil (the system's roots alone) when file is empty.
func rootCAs(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New(file + ": no certificates found")
	}
	return pool, nil
}
