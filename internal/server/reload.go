package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"postern.dev/postern/internal/auth"
	"postern.dev/postern/internal/config"
	"postern.dev/postern/internal/metrics"
	"postern.dev/postern/internal/policy"
	"postern.dev/postern/internal/queue"
	"postern.dev/postern/internal/senderauth"
	"postern.dev/postern/internal/smtpclient"
	"postern.dev/postern/internal/smtpd"
	"postern.dev/postern/internal/smtpserver"
)

// LogSwitch changes the server's log format and level while it runs
// (package logswitch); the command that made the logger owns it.
type LogSwitch interface {
	Set(format, level string) error
}

// ReloadResult is what a reload did.
type ReloadResult struct {
	// Applied are the keys now in force with their new values.
	Applied []config.Change
	// Kept are the keys whose new value did not take effect: those that
	// need a restart, and those whose new value failed (a listener that
	// could not bind, a certificate file that does not load); the running
	// value stays.
	Kept []config.Change
}

// Reload applies a new configuration (already validated, with the
// command-line flags laid over the file as at start) to the running
// server, and reads the TLS certificate files again.
//
//   - Listener addresses: the new listener is opened first; only once it
//     accepts does the old one stop accepting. Sessions on the old one
//     finish on the settings they started with; none is dropped. A
//     listener that cannot bind is logged and the old one stays.
//   - Keys that apply live (config.Live) take effect for what starts after
//     the reload: new connections, the next delivery attempt, the next log
//     line.
//   - Keys that need a restart (config.Restart) keep their running value,
//     with a warning naming the key.
//
// It logs one line summarising what changed; an error of one key never
// stops the others.
func (s *Server) Reload(next config.Config) ReloadResult {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	var res ReloadResult
	if s.closed {
		return res
	}
	cur := *s.live.Load()
	eff := next // what will be in force; keys that cannot apply are put back
	keep := func(c config.Change, err error) {
		eff.Keep(c.Key, cur)
		res.Kept = append(res.Kept, c)
		if err != nil {
			s.log.Error(fmt.Sprintf("%s: not changed; keeping %s", c.Key, c.Old), "key", c.Key, "err", err)
		}
	}
	changes := config.Diff(cur, next)
	changed := map[string]bool{}
	for _, c := range changes {
		changed[c.Key] = true
	}
	for _, c := range changes {
		switch {
		case c.Apply == config.Restart:
			s.log.Warn(fmt.Sprintf("%s: change needs a restart; keeping %s", c.Key, c.Old), "key", c.Key, "running", c.Old, "file", c.New)
			keep(c, nil)
		case c.Apply == config.Reopen:
			if err := s.reopen(c.Key, c.New); err != nil {
				keep(c, err)
				continue
			}
			res.Applied = append(res.Applied, c)
		default:
			res.Applied = append(res.Applied, c)
		}
	}

	// Values that are files or must build: a failure keeps the running
	// value of that key alone.
	failed := func(key string, err error) {
		for i, c := range res.Applied {
			if c.Key == key {
				res.Applied = append(res.Applied[:i], res.Applied[i+1:]...)
				keep(c, err)
				return
			}
		}
	}
	if changed["tls_cert"] || changed["tls_key"] {
		// loadCertificate generates the pair in the data directory when
		// the files are no longer named, as at start.
		c, err := loadCertificate(eff.TLSCert, eff.TLSKey, cur.Data, s.cfg.Hostname)
		if err == nil {
			err = s.cert.use(c.files())
		}
		if err != nil {
			failed("tls_cert", err)
			failed("tls_key", err)
		}
	}
	// CA files are read again even when their names did not change (as the
	// certificate is); one that no longer loads keeps the CAs in use.
	cas, err := clientCAs(eff.TLSClientCA)
	if err != nil {
		if changed["tls_client_ca"] {
			failed("tls_client_ca", err)
		} else {
			s.log.Error("tls_client_ca: not read again; keeping the CAs loaded before", "file", eff.TLSClientCA, "err", err)
		}
		cas = s.clientCAs
	}
	roots, err := rootCAs(eff.Delivery.RootCAFile)
	if err != nil {
		if changed["delivery.root_ca_file"] {
			failed("delivery.root_ca_file", err)
		} else {
			s.log.Error("delivery.root_ca_file: not read again; keeping the CAs loaded before", "file", eff.Delivery.RootCAFile, "err", err)
		}
		roots = s.rootCAs
	}
	if changed["log_level"] || changed["log_format"] {
		err := errors.New("the logger cannot change while the server runs")
		if s.Logging != nil {
			err = s.Logging.Set(eff.LogFormat, eff.LogLevel)
		}
		if err != nil {
			failed("log_level", err)
			failed("log_format", err)
		}
	}

	s.tune(eff, cas, roots, eff.Resolver != cur.Resolver)
	s.live.Store(&eff)
	// SIGHUP has always meant "read the certificate files again"
	// (certbot's deploy hook): do it whatever else changed.
	s.ReloadCertificate()
	metrics.ConfigReloads.WithLabelValues("success").Inc()
	metrics.ConfigReloadSuccess.SetToCurrentTime()
	for _, c := range res.Applied {
		s.log.Debug("configuration key changed", "key", c.Key, "old", c.Old, "new", c.New)
	}
	s.log.Info("configuration reloaded", "changed", keysOf(res.Applied), "kept", keysOf(res.Kept))
	return res
}

// ReloadFailed records a reload refused because the file is invalid: the
// running configuration stays, the certificate files are read again.
func (s *Server) ReloadFailed() {
	metrics.ConfigReloads.WithLabelValues("failure").Inc()
	s.ReloadCertificate()
}

// tune pushes the live settings of c to the parts that hold them.
// reloadMu is held.
func (s *Server) tune(c config.Config, cas, roots *x509.CertPool, resolverChanged bool) {
	if resolverChanged {
		s.resolver = newResolver(c.Resolver)
	}
	resolver := s.resolver
	s.clientCAs, s.rootCAs = cas, roots
	s.smtp.Reconfigure(smtpd.Live{
		ReadTimeout: c.IdleTimeout.Duration,
		ClientCAs:   cas,
		SenderAuth:  &senderauth.Checker{Resolver: resolver, Hostname: s.cfg.Hostname},
		Limits: smtpserver.Limits{MaxConnections: s.fitToDescriptors(c.MaxConnections, c.Admin),
			MaxConnectionsPerIP: c.MaxConnectionsPerIP, ConnectionRatePerIP: c.ConnectionRatePerIP},
		Throttle: throttleLimits(c.Throttle),
	})
	s.authn.Gate.Reconfigure(gateConfig(c.Auth))
	s.authn.Lockout.Reconfigure(lockoutConfig(c.Auth))
	s.applyMemoryLimit(c.MemoryLimit)
	s.queue.Reconfigure(queueTuning(c.Delivery, roots, resolver))
}

func throttleLimits(t config.Throttle) policy.SourceLimits {
	return policy.SourceLimits{DirectSendPerHour: t.DirectSendPerHour, RelayPerHour: t.RelayPerHour}
}

func gateConfig(a config.Auth) auth.GateConfig {
	return auth.GateConfig{Concurrency: a.VerifyConcurrency, Queue: a.VerifyQueue, Wait: a.VerifyWait.Duration, PerAddress: a.VerifyPerAddress}
}

func lockoutConfig(a config.Auth) auth.LockoutConfig {
	return auth.LockoutConfig{Threshold: a.LockoutThreshold, Duration: a.LockoutDuration.Duration}
}

func queueTuning(d config.Delivery, roots *x509.CertPool, resolver *net.Resolver) queue.Tuning {
	return queue.Tuning{Workers: d.Workers, PerDestination: d.PerDestination, MXPort: d.MXPort, RootCAs: roots, Resolver: resolver,
		Schedule: queue.Schedule{Min: d.RetryMin.Duration, Max: d.RetryMax.Duration, For: d.RetryFor.Duration, DelayNotice: d.DelayNotice.Duration},
		Timeouts: smtpclient.Timeouts{Greeting: d.CommandTimeout.Duration, Command: d.CommandTimeout.Duration,
			DataLine: d.CommandTimeout.Duration, DataEnd: 2 * d.CommandTimeout.Duration}}
}

// reopen moves the listener of key ("submission", "submissions", "mx",
// "submission_legacy", "admin") to addr, or closes it ("off"). The new listener accepts before
// the old one stops; closing the old one ends only its accept loop, so
// sessions on it go on to their end.
func (s *Server) reopen(key, addr string) error {
	if isAccessRole(key) {
		return s.reopenAccess(key, addr)
	}
	role, smtp := map[string]smtpd.Role{"submission": smtpd.Submission, "submissions": smtpd.Submissions, "mx": smtpd.MX,
		"submission_legacy": smtpd.SubmissionLegacy}[key]
	s.lnMu.Lock()
	var old net.Listener
	if smtp {
		old = s.listeners[role]
	} else {
		old = s.adminLn
	}
	s.lnMu.Unlock()
	if on(addr) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s listener: %w; the old one stays", key, err)
		}
		if smtp {
			s.serveSMTP(ln, role)
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := s.serveHTTPS(ctx, ln)
			cancel()
			if err != nil {
				ln.Close()
				return fmt.Errorf("%s listener: %w; the old one stays", key, err)
			}
			s.warnIssuerURL(ln.Addr())
		}
	} else {
		s.lnMu.Lock()
		if smtp {
			delete(s.listeners, role)
		} else {
			s.adminLn = nil
		}
		s.lnMu.Unlock()
	}
	if old != nil {
		old.Close()
		s.log.Info("listener closed; its open sessions go on", "role", key, "addr", old.Addr().String())
	}
	return nil
}

// warnIssuerURL warns when the admin listener moved to another port while
// the built-in issuer's URL, derived from the first port (no public_url),
// still names the old one: tokens name their issuer, so it stays until a
// restart.
func (s *Server) warnIssuerURL(addr net.Addr) {
	s.lnMu.Lock()
	base := s.issuerBase
	s.lnMu.Unlock()
	_, port, _ := net.SplitHostPort(addr.String())
	if s.cfg.PublicURL == "" && !strings.HasSuffix(base, ":"+port) {
		s.log.Warn("admin: the built-in issuer keeps its URL until a restart (set public_url to name it)", "issuer", base, "addr", addr.String())
	}
}

// certFiles is the certificate pair a configuration names: the configured
// files, or the generated pair in the data directory.
func certFiles(cert, key, data string) (string, string) {
	if cert == "" {
		return filepath.Join(data, "tls", "cert.pem"), filepath.Join(data, "tls", "key.pem")
	}
	return cert, key
}

// files are the certificate's PEM files.
func (c *certificate) files() (certFile, keyFile string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.certFile, c.keyFile
}

// use switches to another pair of files once they load; a pair that does
// not load leaves the current one in service. The certificate itself is
// then read by the background reload, as on SIGHUP.
func (c *certificate) use(certFile, keyFile string) error {
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.certFile, c.keyFile = certFile, keyFile
	c.modTime = time.Time{}
	return nil
}

func keysOf(cs []config.Change) string {
	if len(cs) == 0 {
		return "none"
	}
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = c.Key
	}
	return strings.Join(keys, ",")
}
