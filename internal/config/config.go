// Package config reads Postern's configuration: a TOML file (strictly: an
// unknown key is an error with its line, so a typo never goes unnoticed)
// overridden by command-line flags.
//
// The TOML library is github.com/pelletier/go-toml/v2, chosen for its
// built-in strict decoding (DisallowUnknownFields) with positioned errors.
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Config is the whole configuration. Field comments are the documentation
// of each key (README, "Configuration").
type Config struct {
	// Data is the data directory: the database, the generated certificate
	// and the admin socket.
	Data string `toml:"data"`
	// Hostname is the name the server greets with and writes in Received
	// fields and Message-IDs.
	Hostname string `toml:"hostname"`
	// Listener addresses; "off" disables one.
	Submission  string `toml:"submission"`  // 587 role: STARTTLS + AUTH
	Submissions string `toml:"submissions"` // 465 role: implicit TLS + AUTH
	// SubmissionLegacy is the legacy-TLS submission listener (Exchange
	// Online's smtp-legacy.office365.com): the 587 role, where STARTTLS
	// also negotiates TLS 1.0 and 1.1, and only mailboxes of organizations
	// with Set-TransportConfig -AllowLegacyTLSClients $true may AUTH. Off
	// by default; the other listeners always require TLS 1.2 or later.
	SubmissionLegacy string `toml:"submission_legacy"`
	MX               string `toml:"mx"`    // 25 role: anonymous mail for local mailboxes; AUTH after STARTTLS
	Admin            string `toml:"admin"` // admin HTTPS listener: the built-in OAuth issuer and the REST API
	IMAP             string `toml:"imap"`  // 143 role: IMAP4 with STARTTLS (LOGINDISABLED before it)
	IMAPS            string `toml:"imaps"` // 993 role: IMAP4 over implicit TLS
	POP3             string `toml:"pop3"`  // 110 role: POP3 with STLS (no sign-in before it)
	POP3S            string `toml:"pop3s"` // 995 role: POP3 over implicit TLS
	// PublicURL is how clients reach the admin listener, and the built-in
	// issuer's identifier; default https://HOSTNAME:PORT.
	PublicURL string `toml:"public_url"`
	// TLSCert and TLSKey are PEM files; when empty, a self-signed ECDSA
	// P-256 certificate for Hostname is generated in the data directory
	// (or, with [acme] enabled, obtained from the CA). Not with [acme].
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// TLSClientCA is a PEM file of CAs whose client certificates may match
	// certificate-based inbound connectors; without it only certificates
	// pinned on a connector (-TlsSenderCertificateFingerprints) count.
	TLSClientCA string `toml:"tls_client_ca"`
	// Resolver is the DNS server (host:port) for SPF, DKIM and DMARC
	// lookups; empty uses the system's resolver. Tests point it at a
	// loopback server.
	Resolver string `toml:"resolver"`
	// SecretKeyFile holds the key that seals stored secrets (smart-host
	// passwords, OAuth client secrets, DKIM keys); empty means
	// DATA/secret.key, created on first start. Keep it out of database
	// backups to keep those backups free of usable secrets.
	SecretKeyFile string `toml:"secret_key_file"`
	// Store is where the shared state lives: SQLite in the data directory
	// (the default), or a PostgreSQL database several nodes share.
	Store Store `toml:"store"`
	// Delivery is outbound delivery: the queue's workers and retries.
	Delivery Delivery `toml:"delivery"`
	// Auth bounds password verification under attack.
	Auth Auth `toml:"auth"`
	// Throttle limits the anonymous mail one source address sends.
	Throttle Throttle `toml:"throttle"`
	// ACME obtains and renews the certificate automatically.
	ACME ACME `toml:"acme"`
	// WebAdmin is the web admin center on the admin listener.
	WebAdmin WebAdmin `toml:"webadmin"`
	// TraceRetention is how long message trace events and the connection
	// log are kept (Exchange keeps 90 days).
	TraceRetention Duration `toml:"trace_retention"`
	// IdleTimeout is how long an SMTP client may take to send a command
	// line, or stay silent inside a message.
	IdleTimeout Duration `toml:"idle_timeout"`
	// MaxConnections caps open SMTP connections on all listeners together
	// (Exchange's MaxInboundConnection); it is lowered to fit the
	// process's file descriptor limit. MaxConnectionsPerIP caps one client
	// address's (an IPv6 client's /64's) open connections (Exchange's
	// MaxInboundConnectionPerSource), and ConnectionRatePerIP how many it
	// may open per minute. 0 lifts a cap. Over any of them the client gets
	// "421 4.3.2 The maximum number of concurrent connections has exceeded
	// a limit, closing transmission channel".
	MaxConnections      int `toml:"max_connections"`
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	ConnectionRatePerIP int `toml:"connection_rate_per_ip"`
	// MemoryLimit is the Go runtime's soft memory limit ("512MiB",
	// "2GiB"; empty or "off": none): near it the collector works harder
	// to stay below, during a burst of argon2id verifications too. The
	// GOMEMLIMIT environment variable, when set, wins. A soft limit: a
	// heap that truly needs more gets it (no out-of-memory from it).
	MemoryLimit string `toml:"memory_limit"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `toml:"log_level"`
	// LogFormat is text (logfmt-style key=value lines) or json (one JSON
	// object per line, for log shippers).
	LogFormat string `toml:"log_format"`
	// MetricsToken is the bearer token that reads /metrics on the admin
	// listener ("Authorization: Bearer TOKEN"). Metrics are server-wide,
	// so no organization's API key reads them; empty (the default) keeps
	// /metrics off (404).
	MetricsToken string `toml:"metrics_token"`
	// AllowInsecureHTTPLoopback lets the URLs admins give (New-AuthServer
	// -AuthMetadataUrl, an outbound connector's -OAuthTokenEndpoint, and
	// the JWKS and token URLs fetched from them) be plain http to a
	// loopback address. Meant for tests' identity providers only: keys and
	// tokens fetched in the clear can be replaced or read. Off, every such
	// URL, and every redirect it answers with, must be https.
	AllowInsecureHTTPLoopback bool `toml:"allow_insecure_http_loopback"`
}

// Store chooses the store ([store] in the file).
type Store struct {
	// URL is a PostgreSQL database, postgres://USER[:PASSWORD]@HOST:PORT/DB
	// (libpq's URL form; ?sslmode=... and the other libpq parameters
	// apply), shared by every node; empty keeps the SQLite database in the
	// data directory. Each node still has its own data directory for its
	// certificate, spool and admin socket, and every node needs the same
	// secret key file (secret_key_file).
	URL string `toml:"url"`
}

// Delivery configures the outbound queue ([delivery] in the file).
type Delivery struct {
	// Workers is how many SMTP sessions deliver at once in all.
	Workers int `toml:"workers"`
	// PerDestination is how many of them may go to one destination (one
	// recipient domain, or one connector's smart hosts).
	PerDestination int `toml:"per_destination"`
	// RetryMin is the wait after the first temporary failure; it doubles
	// with each further one, up to RetryMax (±20% jitter).
	RetryMin Duration `toml:"retry_min"`
	RetryMax Duration `toml:"retry_max"`
	// RetryFor is how long a message is retried before it is returned to
	// the sender with a non-delivery report (Exchange's
	// MessageExpirationTimeout).
	RetryFor Duration `toml:"retry_for"`
	// DelayNotice is when the sender is told that delivery is delayed
	// (Exchange's DelayNotificationTimeout); 0 never.
	DelayNotice Duration `toml:"delay_notice"`
	// MXPort is the port MX hosts are contacted on. Only tests change it.
	MXPort int `toml:"mx_port"`
	// CommandTimeout bounds the wait for each reply of a remote server
	// (RFC 5321 §4.5.3.2 asks for 5 minutes).
	CommandTimeout Duration `toml:"command_timeout"`
	// RootCAFile adds PEM CAs to the system's roots for verifying smart
	// hosts (TlsSettings CertificateValidation and DomainValidation).
	RootCAFile string `toml:"root_ca_file"`
}

// Throttle limits, per source address (an IPv6 client's /64) and rolling
// hour, the messages accepted as Direct Send (anonymous mail from the
// organization's own accepted domains that no inbound connector admitted)
// and as connector relay (mail an inbound connector admitted), as Exchange
// throttles both ("standard throttling"). Past a limit each recipient gets
// "451 4.7.500 Access denied, please try again later" until the hour frees
// a share; sources on the organization's IP Allow List
// (Set-HostedConnectionFilterPolicy) are not throttled, and ordinary
// inbound mail from other domains is not counted. 0 lifts a limit.
type Throttle struct {
	// DirectSendPerHour defaults to 1800, the 30 messages a minute an SMTP
	// AUTH mailbox may send, kept up for an hour.
	DirectSendPerHour int `toml:"direct_send_per_hour"`
	// RelayPerHour defaults to 3600, Exchange's receiving limit of 3,600
	// messages an hour per recipient; relay has "higher sending limits"
	// than SMTP AUTH.
	RelayPerHour int `toml:"relay_per_hour"`
}

// Auth bounds password verification ([auth] in the file): argon2id costs
// 19 MiB and ~20 ms of a core per verification, so a flood of AUTH attempts
// is capped here, and password guessing per account is stopped by the
// smart lockout.
type Auth struct {
	// VerifyConcurrency is how many argon2id verifications run at once;
	// 0 means one per core, at most 8.
	VerifyConcurrency int `toml:"verify_concurrency"`
	// VerifyQueue is how many more may wait; past it AUTH gets
	// "454 4.7.0 Temporary authentication failure". Negative: none wait.
	// In this section a zero (or absent) number or duration means the
	// default.
	VerifyQueue int `toml:"verify_queue"`
	// VerifyWait is the longest a verification waits for its turn.
	VerifyWait Duration `toml:"verify_wait"`
	// VerifyPerAddress is how many verifications one client address (IPv6
	// per /64) may have running or waiting. More from the address wait,
	// outside the queue and up to verify_wait, for one of its own to
	// finish (the users of one print server signing in at once), so one
	// address never takes the queue from the others.
	VerifyPerAddress int `toml:"verify_per_address"`
	// LockoutThreshold is how many failed sign-ins for one account from
	// unfamiliar addresses lock it for them (smart lockout).
	LockoutThreshold int `toml:"lockout_threshold"`
	// LockoutDuration is the first lockout; each further one doubles it,
	// up to 15 minutes.
	LockoutDuration Duration `toml:"lockout_duration"`
}

// ACME obtains certificates for hostname and the names below from an ACME CA
// (Let's Encrypt by default) and renews them in the background ([acme] in
// the file); it replaces tls_cert/tls_key. Until the first certificate is
// issued the self-signed one is served. The CA validates TLS-ALPN-01 on
// port 443 and HTTP-01 on port 80: serve one of them (admin = ":443",
// http_listen = ":80", or a port forward to the submissions listener).
type ACME struct {
	// Enabled turns ACME on; enabling it accepts the CA's terms of service.
	Enabled bool `toml:"enabled"`
	// DirectoryURL is the CA's ACME directory (https).
	DirectoryURL string `toml:"directory_url"`
	// Email is the ACME account's contact address, for the CA's notices.
	Email string `toml:"email"`
	// Names are further certificate names besides hostname, one
	// certificate each; a client asking for another name (or none) gets
	// hostname's. No wildcards or IP addresses.
	Names []string `toml:"names"`
	// HTTPListen serves HTTP-01 challenges (":80"); "off" answers only
	// TLS-ALPN-01, on the submissions and admin listeners.
	HTTPListen string `toml:"http_listen"`
	// RootCAFile adds PEM CAs for the CA's HTTPS endpoint (a test CA).
	RootCAFile string `toml:"root_ca_file"`
	// RenewBefore is how long before expiry a certificate is renewed; 0 is
	// a third of its lifetime, at most 30 days (autocert's default).
	RenewBefore Duration `toml:"renew_before"`
}

// WebAdmin configures the web admin center ([webadmin] in the file).
type WebAdmin struct {
	// OIDC lets organizations' admins sign in with an identity provider.
	OIDC OIDC `toml:"oidc"`
}

// OIDC is an OpenID Connect identity provider the admin center's sign-in
// page offers ([webadmin.oidc] in the file): the authorization-code flow
// with PKCE (RFC 7636), the redirect URI being PUBLIC_URL/signin/oidc/callback.
// The ID token's address names a mailbox; its role group membership
// (Add-RoleGroupMember) grants the role, as with a password sign-in. The
// provider is trusted for every address it vouches for, in every
// organization: configure only one that owns all the server's domains.
type OIDC struct {
	// Issuer is the provider's issuer URL (https; its discovery document
	// is ISSUER/.well-known/openid-configuration); empty turns OIDC
	// sign-in off.
	Issuer string `toml:"issuer"`
	// ClientID is the admin center's client ID at the provider.
	ClientID string `toml:"client_id"`
	// ClientSecretFile holds the client secret (one line); empty for a
	// public client, which PKCE alone protects.
	ClientSecretFile string `toml:"client_secret_file"`
	// Claim names the ID token claim holding the mailbox address; empty
	// tries "email", then "preferred_username".
	Claim string `toml:"claim"`
}

// LetsEncrypt is Let's Encrypt's production ACME directory, the default
// (autocert.DefaultACMEDirectory).
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// Duration is a time.Duration written as "5m" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Off is the listener address that disables a listener.
const Off = "off"

// Defaults are the production defaults: the standard ports.
func Defaults() Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	return Config{
		Data:        "/var/lib/postern",
		Hostname:    host,
		Submission:  ":587",
		Submissions: ":465",
		// Off unless asked for: TLS 1.0 and 1.1 are weak.
		SubmissionLegacy: Off,
		MX:               ":25",
		Admin:            Off,
		IMAP:             ":143",
		IMAPS:            ":993",
		POP3:             ":110",
		POP3S:            ":995",
		IdleTimeout:      Duration{5 * time.Minute},
		// Exchange's receive connector defaults are 5,000 and 20; Postern
		// allows more per address, since offices put many devices behind
		// one NAT address, and a scanner that connects per page needs far
		// fewer than 600 a minute.
		MaxConnections:      5000,
		MaxConnectionsPerIP: 50,
		ConnectionRatePerIP: 600,
		TraceRetention:      Duration{90 * 24 * time.Hour},
		LogLevel:            "info",
		LogFormat:           "text",
		Throttle:            Throttle{DirectSendPerHour: 1800, RelayPerHour: 3600},
		Delivery: Delivery{
			Workers:        32,
			PerDestination: 4,
			RetryMin:       Duration{time.Minute},
			RetryMax:       Duration{time.Hour},
			RetryFor:       Duration{48 * time.Hour},
			DelayNotice:    Duration{4 * time.Hour},
			MXPort:         25,
			CommandTimeout: Duration{5 * time.Minute},
		},
		ACME: ACME{
			DirectoryURL: LetsEncrypt,
			Names:        []string{}, // as the example's `names = []` loads
			HTTPListen:   Off,
		},
		Auth: Auth{
			VerifyQueue:      64,
			VerifyWait:       Duration{5 * time.Second},
			VerifyPerAddress: 8,
			LockoutThreshold: 10,
			LockoutDuration:  Duration{time.Minute},
		},
	}
}

// Load reads the file at path (if not empty) over c.
func (c *Config) Load(path string) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		var serr *toml.StrictMissingError
		if errors.As(err, &serr) && len(serr.Errors) > 0 {
			e := serr.Errors[0]
			row, col := e.Position()
			return fmt.Errorf("%s:%d:%d: unknown key %q", path, row, col, strings.Join(e.Key(), "."))
		}
		var derr *toml.DecodeError
		if errors.As(err, &derr) {
			row, col := derr.Position()
			return fmt.Errorf("%s:%d:%d: %s", path, row, col, derr.Error())
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Flags defines flags for every key on fs, writing into c; parse the file
// first, then the flags, so that flags override it.
func (c *Config) Flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Data, "data", c.Data, "data directory")
	fs.StringVar(&c.Store.URL, "store", c.Store.URL, "PostgreSQL URL (postgres://USER@HOST:PORT/DB) shared by several nodes; default: SQLite in --data")
	fs.StringVar(&c.Hostname, "hostname", c.Hostname, "server host name (greeting, Received, Message-ID)")
	fs.StringVar(&c.Submission, "submission", c.Submission, "submission listener (587 role: STARTTLS + AUTH), or off")
	fs.StringVar(&c.Submissions, "submissions", c.Submissions, "submissions listener (465 role: implicit TLS), or off")
	fs.StringVar(&c.SubmissionLegacy, "submission-legacy", c.SubmissionLegacy, "legacy-TLS submission listener (587 role, TLS 1.0/1.1 allowed for organizations with AllowLegacyTLSClients), or off")
	fs.StringVar(&c.MX, "mx", c.MX, "MX listener (25 role), or off")
	fs.StringVar(&c.Admin, "admin", c.Admin, "admin HTTPS listener (built-in OAuth issuer, REST API), or off")
	fs.StringVar(&c.IMAP, "imap", c.IMAP, "IMAP listener (143 role: STARTTLS), or off")
	fs.StringVar(&c.IMAPS, "imaps", c.IMAPS, "IMAP listener (993 role: implicit TLS), or off")
	fs.StringVar(&c.POP3, "pop3", c.POP3, "POP3 listener (110 role: STLS), or off")
	fs.StringVar(&c.POP3S, "pop3s", c.POP3S, "POP3 listener (995 role: implicit TLS), or off")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "public URL of the admin listener (default https://HOSTNAME:PORT)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "TLS certificate PEM file (default: generated)")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "TLS key PEM file")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", c.TLSClientCA, "PEM CAs trusted for client certificates of inbound connectors")
	fs.StringVar(&c.Resolver, "resolver", c.Resolver, "DNS server host:port for SPF/DKIM/DMARC (default: the system's)")
	fs.DurationVar(&c.IdleTimeout.Duration, "idle-timeout", c.IdleTimeout.Duration, "how long an SMTP client may stay silent")
	fs.IntVar(&c.MaxConnections, "max-connections", c.MaxConnections, "open SMTP connections on all listeners together (0: no cap)")
	fs.IntVar(&c.MaxConnectionsPerIP, "max-connections-per-ip", c.MaxConnectionsPerIP, "open SMTP connections of one client address (0: no cap)")
	fs.IntVar(&c.ConnectionRatePerIP, "connection-rate-per-ip", c.ConnectionRatePerIP, "SMTP connections one client address may open per minute (0: no limit)")
	fs.StringVar(&c.MemoryLimit, "memory-limit", c.MemoryLimit, "soft memory limit of the Go runtime, e.g. 512MiB (default none; GOMEMLIMIT wins)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	fs.StringVar(&c.MetricsToken, "metrics-token", c.MetricsToken, "bearer token for /metrics on the admin listener (empty: /metrics off)")
	fs.DurationVar(&c.TraceRetention.Duration, "trace-retention", c.TraceRetention.Duration, "how long message trace and the connection log are kept")
	fs.StringVar(&c.SecretKeyFile, "secret-key-file", c.SecretKeyFile, "key file sealing stored secrets (default DATA/secret.key)")
	fs.IntVar(&c.Delivery.MXPort, "delivery-mx-port", c.Delivery.MXPort, "port MX hosts are contacted on (tests only)")
	fs.DurationVar(&c.Delivery.RetryMin.Duration, "delivery-retry-min", c.Delivery.RetryMin.Duration, "wait after the first temporary delivery failure")
	fs.DurationVar(&c.Delivery.RetryMax.Duration, "delivery-retry-max", c.Delivery.RetryMax.Duration, "longest wait between delivery attempts")
	fs.DurationVar(&c.Delivery.RetryFor.Duration, "delivery-retry-for", c.Delivery.RetryFor.Duration, "how long to retry before a non-delivery report")
	fs.DurationVar(&c.Delivery.DelayNotice.Duration, "delivery-delay-notice", c.Delivery.DelayNotice.Duration, "when to tell the sender of a delay (0 never)")
	fs.DurationVar(&c.Delivery.CommandTimeout.Duration, "delivery-command-timeout", c.Delivery.CommandTimeout.Duration, "wait for each reply of a remote server")
	fs.StringVar(&c.Delivery.RootCAFile, "delivery-root-ca", c.Delivery.RootCAFile, "PEM CAs trusted for smart hosts, besides the system's")
	fs.BoolVar(&c.AllowInsecureHTTPLoopback, "allow-insecure-http-loopback", c.AllowInsecureHTTPLoopback, "allow plain http identity providers and token endpoints on loopback (tests only)")
}
