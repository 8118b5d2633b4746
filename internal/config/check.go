package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2/unstable"

	"postern.dev/postern/internal/acmecert"
	"postern.dev/postern/internal/memlimit"
)

// Check validates a configuration file without starting anything, for
// `postern check-config FILE` (run before a restart or a reload, as
// `postfix check` or `nginx -t` are): the TOML syntax and key names (what
// Load already refuses), then every value that serve would otherwise
// refuse only once it starts, or act on wrongly: listener addresses, the
// log level and format, certificate files and their pairing, durations and counts.
// Each problem is one error "FILE:LINE:COL: message", pointing at the
// value in the file; the result is nil when the file is fine.
func Check(path string) []error {
	c := Defaults()
	if err := c.Load(path); err != nil {
		return []error{err}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return []error{err}
	}
	pos := keyPositions(b)
	var errs []error
	bad := func(key, format string, args ...any) {
		p, ok := pos[key]
		if !ok {
			p = [2]int{1, 1}
		}
		errs = append(errs, fmt.Errorf("%s:%d:%d: %s: %s", path, p[0], p[1], key, fmt.Sprintf(format, args...)))
	}
	for _, l := range []struct{ key, addr string }{
		{"submission", c.Submission}, {"submissions", c.Submissions}, {"submission_legacy", c.SubmissionLegacy}, {"mx", c.MX}, {"admin", c.Admin},
		{"imap", c.IMAP}, {"imaps", c.IMAPS}, {"pop3", c.POP3}, {"pop3s", c.POP3S},
	} {
		if err := checkListen(l.addr); err != nil {
			bad(l.key, "%v (want HOST:PORT, :PORT or %q)", err, Off)
		}
	}
	if c.Resolver != "" {
		if err := checkListen(c.Resolver); err != nil || strings.HasPrefix(c.Resolver, ":") {
			bad("resolver", "want HOST:PORT of a DNS server")
		}
	}
	if strings.TrimSpace(c.Hostname) == "" || strings.ContainsAny(c.Hostname, " \t/:@") {
		bad("hostname", "%q is not a host name", c.Hostname)
	}
	if strings.TrimSpace(c.Data) == "" {
		bad("data", "empty")
	}
	if c.Store.URL != "" {
		if err := CheckStoreURL(c.Store.URL); err != nil {
			bad("store.url", "%v", err)
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("public_url", "%q is not an https URL", c.PublicURL)
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		bad("log_level", "%q: want debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "", "text", "json":
	default:
		bad("log_format", "%q: want text or json", c.LogFormat)
	}
	switch {
	case c.TLSCert != "" && c.TLSKey == "":
		bad("tls_cert", "tls_key is missing (give both, or neither for a generated certificate)")
	case c.TLSCert == "" && c.TLSKey != "":
		bad("tls_key", "tls_cert is missing (give both, or neither for a generated certificate)")
	}
	for _, p := range acmeProblems(c) {
		bad(p.key, "%s", p.msg)
	}
	for _, p := range oidcProblems(c) {
		bad(p.key, "%s", p.msg)
	}
	for _, f := range []struct{ key, path string }{
		{"tls_cert", c.TLSCert}, {"tls_key", c.TLSKey}, {"tls_client_ca", c.TLSClientCA}, {"delivery.root_ca_file", c.Delivery.RootCAFile},
		{"acme.root_ca_file", c.ACME.RootCAFile},
	} {
		if f.path == "" {
			continue
		}
		if fh, err := os.Open(f.path); err != nil {
			bad(f.key, "%v", err)
		} else {
			fh.Close()
		}
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{
		{"idle_timeout", c.IdleTimeout}, {"trace_retention", c.TraceRetention},
		{"delivery.retry_min", c.Delivery.RetryMin}, {"delivery.retry_max", c.Delivery.RetryMax},
		{"delivery.retry_for", c.Delivery.RetryFor}, {"delivery.delay_notice", c.Delivery.DelayNotice},
		{"delivery.command_timeout", c.Delivery.CommandTimeout},
		{"auth.verify_wait", c.Auth.VerifyWait}, {"auth.lockout_duration", c.Auth.LockoutDuration},
		{"acme.renew_before", c.ACME.RenewBefore},
	} {
		if d.v.Duration < 0 {
			bad(d.key, "negative duration %s", d.v)
		}
	}
	if _, err := memlimit.ParseSize(c.MemoryLimit); err != nil {
		bad("memory_limit", "%v", err)
	}
	if c.Delivery.RetryMin.Duration > c.Delivery.RetryMax.Duration {
		bad("delivery.retry_min", "%s is longer than delivery.retry_max (%s)", c.Delivery.RetryMin, c.Delivery.RetryMax)
	}
	for _, n := range []struct {
		key string
		v   int
	}{
		{"max_connections", c.MaxConnections}, {"max_connections_per_ip", c.MaxConnectionsPerIP},
		{"connection_rate_per_ip", c.ConnectionRatePerIP}, {"delivery.workers", c.Delivery.Workers},
		{"delivery.per_destination", c.Delivery.PerDestination},
		{"auth.verify_concurrency", c.Auth.VerifyConcurrency}, {"auth.verify_queue", c.Auth.VerifyQueue},
		{"auth.verify_per_address", c.Auth.VerifyPerAddress}, {"auth.lockout_threshold", c.Auth.LockoutThreshold},
		{"throttle.direct_send_per_hour", c.Throttle.DirectSendPerHour}, {"throttle.relay_per_hour", c.Throttle.RelayPerHour},
	} {
		if n.v < 0 {
			bad(n.key, "negative count %d", n.v)
		}
	}
	if c.Delivery.MXPort < 1 || c.Delivery.MXPort > 65535 {
		bad("delivery.mx_port", "%d is not a port", c.Delivery.MXPort)
	}
	return errs
}

// keyProblem is one problem with the value of a key.
type keyProblem struct{ key, msg string }

// acmeProblems checks the [acme] settings. The names and the exclusion of
// tls_cert/tls_key matter only when ACME is enabled; the other values are
// checked in any case, so that turning it on later does not reveal them.
func acmeProblems(c Config) []keyProblem {
	var out []keyProblem
	a := c.ACME
	if u, err := url.Parse(a.DirectoryURL); err != nil || u.Scheme != "https" || u.Host == "" {
		out = append(out, keyProblem{"acme.directory_url", fmt.Sprintf("%q is not an https URL", a.DirectoryURL)})
	}
	if err := checkListen(a.HTTPListen); err != nil {
		out = append(out, keyProblem{"acme.http_listen", fmt.Sprintf("%v (want HOST:PORT, :PORT or %q)", err, Off)})
	}
	if a.Email != "" {
		if addr, err := mail.ParseAddress(a.Email); err != nil || addr.Address != a.Email {
			out = append(out, keyProblem{"acme.email", fmt.Sprintf("%q is not an email address", a.Email)})
		}
	}
	// autocert never renews earlier than 30 days before expiry.
	if a.RenewBefore.Duration > 30*24*time.Hour {
		out = append(out, keyProblem{"acme.renew_before", fmt.Sprintf("%s is longer than 720h (30 days), the most autocert renews ahead", a.RenewBefore)})
	}
	if !a.Enabled {
		return out
	}
	if c.TLSCert != "" || c.TLSKey != "" {
		out = append(out, keyProblem{"acme.enabled", "ACME and tls_cert/tls_key are mutually exclusive: remove tls_cert and tls_key to have the certificate issued by the CA, or disable ACME to serve the files"})
	}
	seen := map[string]bool{}
	if name, err := acmecert.CheckName(c.Hostname); err != nil {
		out = append(out, keyProblem{"hostname", "ACME needs a DNS name for it: " + err.Error()})
	} else {
		seen[name] = true
	}
	for _, n := range a.Names {
		name, err := acmecert.CheckName(n)
		switch {
		case err != nil:
			out = append(out, keyProblem{"acme.names", err.Error()})
		case seen[name]:
			out = append(out, keyProblem{"acme.names", fmt.Sprintf("%q is listed twice (hostname is always included)", n)})
		}
		seen[name] = true
	}
	return out
}

// claimName is what an ID token claim's name may be here: a JSON member
// name of the usual shape, no path or expression.
func claimName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.:/", r)) {
			return false
		}
	}
	return true
}

// oidcProblems checks [webadmin.oidc]. Everything but the issuer is
// checked only when an issuer is set, since without one the section is
// unused.
func oidcProblems(c Config) []keyProblem {
	var out []keyProblem
	o := c.WebAdmin.OIDC
	if o.Issuer == "" {
		if o.ClientID != "" || o.ClientSecretFile != "" || o.Claim != "" {
			out = append(out, keyProblem{"webadmin.oidc.issuer", "missing: the other webadmin.oidc keys are set, but without an issuer OIDC sign-in stays off"})
		}
		return out
	}
	if err := checkIssuer(o.Issuer, c.AllowInsecureHTTPLoopback); err != nil {
		out = append(out, keyProblem{"webadmin.oidc.issuer", err.Error()})
	}
	if strings.TrimSpace(o.ClientID) == "" {
		out = append(out, keyProblem{"webadmin.oidc.client_id", "missing: the provider needs the client ID it knows the admin center by"})
	}
	if o.ClientSecretFile != "" {
		if _, err := ReadSecretFile(o.ClientSecretFile); err != nil {
			out = append(out, keyProblem{"webadmin.oidc.client_secret_file", err.Error()})
		}
	}
	if o.Claim != "" && !claimName(o.Claim) {
		out = append(out, keyProblem{"webadmin.oidc.claim", fmt.Sprintf("%q is not a claim name", o.Claim)})
	}
	return out
}

// checkIssuer allows an https issuer URL, and plain http to loopback with
// allow_insecure_http_loopback (a test's identity provider): keys fetched
// in the clear could be replaced by anyone on the path.
func checkIssuer(raw string, loopbackHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an issuer URL (https://HOST[/PATH])", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); loopbackHTTP && (ip != nil && ip.IsLoopback() || u.Hostname() == "localhost") {
			return nil
		}
	}
	return fmt.Errorf("%q must be an https URL (plain http only to loopback, with allow_insecure_http_loopback)", raw)
}

// ReadSecretFile reads a secret kept in a file of its own: its first
// line, which must not be empty.
func ReadSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if len(b) > 64<<10 {
		return "", fmt.Errorf("%s: larger than 64 KiB, not a secret", path)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSpace(line)
	if line == "" {
		return "", fmt.Errorf("%s: the first line is empty", path)
	}
	return line, nil
}

// CheckOIDC returns the first problem with [webadmin.oidc] that serve
// refuses to start with, nil when there is none.
func (c Config) CheckOIDC() error {
	if ps := oidcProblems(c); len(ps) > 0 {
		return fmt.Errorf("%s: %s", ps[0].key, ps[0].msg)
	}
	return nil
}

// CheckACME returns the first problem with the [acme] settings that
// serve refuses to start with (check-config lists them all), nil when
// there is none.
func (c Config) CheckACME() error {
	if ps := acmeProblems(c); len(ps) > 0 {
		return fmt.Errorf("%s: %s", ps[0].key, ps[0].msg)
	}
	return nil
}

// checkListen accepts "off" or an address net.Listen("tcp") takes.
func checkListen(addr string) error {
	if addr == Off {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q", port)
	}
	if host != "" && net.ParseIP(host) == nil && strings.ContainsAny(host, " /@") {
		return errors.New("invalid host " + strconv.Quote(host))
	}
	return nil
}

// keyPositions maps each dotted key of a TOML document ("delivery.retry_min")
// to the line and column of its value. Load has already parsed the
// document, so a parse error here only shortens the map.
func keyPositions(b []byte) map[string][2]int {
	out := map[string][2]int{}
	var p unstable.Parser
	p.Reset(b)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = keyParts(e.Key())
		case unstable.KeyValue:
			k := append(append([]string{}, table...), keyParts(e.Key())...)
			r := e.Value().Raw
			if r.Length == 0 {
				if it := e.Key(); it.Next() {
					r = it.Node().Raw
				}
			}
			s := p.Shape(r)
			out[strings.Join(k, ".")] = [2]int{s.Start.Line, s.Start.Column}
		}
	}
	return out
}

func keyParts(it unstable.Iterator) []string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}

// CheckStoreURL checks a [store] url (--store): a postgres:// or
// postgresql:// URL with a host and a database. The error never quotes the
// URL, which may hold a password.
func CheckStoreURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("not a URL (want postgres://USER@HOST:PORT/DATABASE)")
	case u.Scheme != "postgres" && u.Scheme != "postgresql":
		return fmt.Errorf("scheme %q: only PostgreSQL is supported (postgres://USER@HOST:PORT/DATABASE); leave it empty for SQLite in the data directory", u.Scheme)
	case u.Host == "" || strings.Trim(u.Path, "/") == "":
		return errors.New("want postgres://USER@HOST:PORT/DATABASE, with a host and a database")
	}
	return nil
}
