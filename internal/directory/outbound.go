package directory

import (
	"strings"
	"time"
)

// TlsSettings of an outbound connector (New-OutboundConnector -TlsSettings).
type TlsSettings string

const (
	// Opportunistic (Exchange's $null): STARTTLS when offered, any
	// certificate, plain text when not offered.
	TlsOpportunistic TlsSettings = ""
	// EncryptionOnly: TLS is required, any certificate will do.
	TlsEncryptionOnly TlsSettings = "EncryptionOnly"
	// CertificateValidation: TLS with a certificate that chains to a
	// trusted root and is not expired; the name is not checked.
	TlsCertificateValidation TlsSettings = "CertificateValidation"
	// DomainValidation: as CertificateValidation, and the certificate must
	// name TlsDomain (or, when empty, the smart host).
	TlsDomainValidation TlsSettings = "DomainValidation"
)

// AuthMechanism is how Postern signs in to a smart host, beyond Exchange.
type AuthMechanism string

const (
	AuthNone    AuthMechanism = "None"
	AuthBasic   AuthMechanism = "Basic"   // AUTH PLAIN, or LOGIN when PLAIN is not offered
	AuthXOAUTH2 AuthMechanism = "XOAUTH2" // OAuth 2.0 client-credentials token, SASL XOAUTH2
)

// OutboundConnector is New-OutboundConnector's object: how mail for some
// recipient domains leaves, through smart hosts or by MX.
type OutboundConnector struct {
	ID            int64
	OrgID         int64
	Name          string
	ConnectorType ConnectorType
	// RecipientDomains: "*", "contoso.com" or "*.contoso.com", lower case.
	RecipientDomains []string
	// SmartHosts: host names or IP addresses, each optionally with ":port"
	// (an extension; Exchange always uses 25).
	SmartHosts  []string
	UseMXRecord bool
	TlsSettings TlsSettings
	TlsDomain   string
	Enabled     bool
	Comment     string

	AuthMechanism AuthMechanism
	SmtpUser      string
	// The secrets are sealed (internal/secret); only the delivery code,
	// which holds the key, opens them.
	SmtpPasswordSealed      string
	OAuthTokenEndpoint      string
	OAuthClientId           string
	OAuthClientSecretSealed string
	OAuthScope              string

	WhenCreated time.Time
}

// MatchRank reports how specifically the connector's RecipientDomains
// cover domain: 0 not at all, 1 by "*", 2 by a "*.parent" pattern (longer
// parents rank higher), and the highest for the exact domain. Exchange
// routes by the most specific match, as mail routing does by longest
// address-space prefix.
func (c *OutboundConnector) MatchRank(domain string) int {
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	best := 0
	for _, p := range c.RecipientDomains {
		r := 0
		switch {
		case p == "*":
			r = 1
		case p == domain:
			r = 1 << 20
		case strings.HasPrefix(p, "*.") && DomainMatches(p, domain):
			r = 2 + len(p)
		}
		best = max(best, r)
	}
	return best
}

// DkimSigningConfig is New-DkimSigningConfig's object: a domain's two DKIM
// keys (selector1 and selector2, as Exchange has them) and which signs.
type DkimSigningConfig struct {
	ID      int64
	OrgID   int64
	Domain  string
	Enabled bool
	// Algorithm "RSA" or "Ed25519"; KeySize 1024/2048/4096 for RSA.
	Algorithm string
	KeySize   int
	// ActiveSelector is 1 or 2.
	ActiveSelector int
	// Private keys as sealed PKCS#8 PEM, public keys as the TXT record to
	// publish ("v=DKIM1; k=rsa; p=...").
	Selector1KeySealed, Selector2KeySealed string
	Selector1PublicKey, Selector2PublicKey string
	KeyCreationTime                        time.Time
	RotateOnDate                           time.Time
	WhenCreated                            time.Time
}

// SelectorName is the DNS selector for 1 or 2.
func SelectorName(n int) string {
	if n == 2 {
		return "selector2"
	}
	return "selector1"
}
