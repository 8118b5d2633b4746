package directory

import (
	"net/netip"
	"strings"
	"time"
)

// ConnectorType of an inbound connector (New-InboundConnector -ConnectorType).
type ConnectorType string

const (
	// OnPremises: the organization's own servers and devices. A match
	// grants relay to any recipient for senders in the accepted domains.
	OnPremises ConnectorType = "OnPremises"
	// Partner: another organization's servers. A match attributes mail to
	// the organization and can restrict its sender domains to the
	// connector's addresses or certificate; it grants no relay.
	Partner ConnectorType = "Partner"
)

// InboundConnector is New-InboundConnector's object: how anonymous mail on
// the 25 role is recognised as coming from a known source.
type InboundConnector struct {
	ID            int64
	OrgID         int64
	Name          string
	ConnectorType ConnectorType
	// SenderDomains: "*", "contoso.com" or "*.contoso.com" (domain and
	// subdomains), lower case.
	SenderDomains []string
	// SenderIPAddresses are single addresses (as /32 or /128) and ranges;
	// IPv6 is accepted, beyond Exchange.
	SenderIPAddresses []netip.Prefix
	// TlsSenderCertificateName matches the client certificate's CN or a
	// DNS SAN: "mail.contoso.com" or "*.contoso.com".
	TlsSenderCertificateName string
	// TlsSenderCertificateFingerprints pin self-signed device certificates
	// by the SHA-256 of their public key (hex), beyond Exchange.
	TlsSenderCertificateFingerprints []string
	RequireTls                       bool
	RestrictDomainsToIPAddresses     bool
	RestrictDomainsToCertificate     bool
	Enabled                          bool
	Comment                          string
	WhenCreated                      time.Time
	// ProtocolLogging is Set-InboundConnector -ProtocolLoggingLevel
	// Verbose: the sessions this connector judged are written to its
	// organization's protocol log (package protolog).
	ProtocolLogging bool
}

// Protocol logging levels, as Exchange names them (-ProtocolLoggingLevel).
const (
	LoggingVerbose = "Verbose"
	LoggingNone    = "None"
)

// ProtocolLoggingLevel is the connector's level in Exchange's words.
func (c *InboundConnector) ProtocolLoggingLevel() string {
	if c.ProtocolLogging {
		return LoggingVerbose
	}
	return LoggingNone
}

// MatchesIP reports whether ip is in SenderIPAddresses.
func (c *InboundConnector) MatchesIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range c.SenderIPAddresses {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// MatchesCertificate reports whether one of a verified client
// certificate's names matches TlsSenderCertificateName. A wildcard
// "*.contoso.com" matches contoso.com and any name below it, as Exchange's
// connector value does.
func (c *InboundConnector) MatchesCertificate(names []string) bool {
	if c.TlsSenderCertificateName == "" {
		return false
	}
	for _, n := range names {
		if DomainMatches(c.TlsSenderCertificateName, n) {
			return true
		}
	}
	return false
}

// MatchesSenderDomain reports whether domain is covered by SenderDomains.
func (c *InboundConnector) MatchesSenderDomain(domain string) bool {
	for _, d := range c.SenderDomains {
		if d == "*" || DomainMatches(d, domain) {
			return true
		}
	}
	return false
}

// DomainMatches matches a domain against a pattern: an exact name, or
// "*.example.com" for example.com and every name below it.
func DomainMatches(pattern, domain string) bool {
	pattern, domain = strings.ToLower(pattern), strings.TrimSuffix(strings.ToLower(domain), ".")
	if base, ok := strings.CutPrefix(pattern, "*."); ok {
		return domain == base || strings.HasSuffix(domain, "."+base)
	}
	return pattern == domain
}
