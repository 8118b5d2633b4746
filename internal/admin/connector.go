package admin

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/directory"
)

// InboundConnectorParams are New-/Set-InboundConnector's parameters; nil
// means not given.
type InboundConnectorParams struct {
	Name                             *string
	ConnectorType                    *string
	SenderDomains                    *MultiValue
	SenderIPAddresses                *MultiValue
	TlsSenderCertificateName         *string
	TlsSenderCertificateFingerprints *MultiValue
	RequireTls                       *bool
	RestrictDomainsToIPAddresses     *bool
	RestrictDomainsToCertificate     *bool
	Enabled                          *bool
	Comment                          *string
	// ProtocolLoggingLevel is "Verbose" or "None" (protolog.go).
	ProtocolLoggingLevel *string
}

// InboundConnectors lists the organization's connectors, or the named one.
func (s *Service) InboundConnectors(identity string) ([]*directory.InboundConnector, error) {
	org := s.org()
	var out []*directory.InboundConnector
	for _, c := range s.Dir.Load().Contents().Connectors {
		if c.OrgID == org.ID && (identity == "" || strings.EqualFold(c.Name, identity)) {
			out = append(out, c)
		}
	}
	if identity != "" && len(out) == 0 {
		return nil, NotFound(identity)
	}
	return out, nil
}

// NewInboundConnector creates a connector. As in Exchange, it is enabled
// unless told otherwise, and does not require TLS (-RequireTls $false): a
// connector built by following Microsoft's relay steps (seed 002, which sets
// only the connector's direction and IP addresses, and lists TLS as
// optional for such devices) accepts a device that cannot use STARTTLS.
func (s *Service) NewInboundConnector(ctx context.Context, p InboundConnectorParams) (*directory.InboundConnector, error) {
	c := &directory.InboundConnector{ConnectorType: directory.Partner, Enabled: true, SenderDomains: []string{"*"}}
	err := s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		c.OrgID = org.ID
		if err := applyConnector(c, p); err != nil {
			return err
		}
		if strings.TrimSpace(c.Name) == "" {
			return fmt.Errorf("Cannot process command because of one or more missing mandatory parameters: Name.")
		}
		if err := checkConnectorClaims(dir, c); err != nil {
			return err
		}
		return storeError(s.Store.SaveConnector(ctx, c), "inbound connector", c.Name)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// SetInboundConnector changes a connector.
func (s *Service) SetInboundConnector(ctx context.Context, identity string, p InboundConnectorParams) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		cs, err := s.InboundConnectors(identity)
		if err != nil {
			return err
		}
		c := *cs[0]
		if err := applyConnector(&c, p); err != nil {
			return err
		}
		if err := checkConnectorClaims(dir, &c); err != nil {
			return err
		}
		return storeError(s.Store.SaveConnector(ctx, &c), "inbound connector", c.Name)
	})
}

// RemoveInboundConnector deletes a connector.
func (s *Service) RemoveInboundConnector(ctx context.Context, identity string) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		cs, err := s.InboundConnectors(identity)
		if err != nil {
			return err
		}
		return storeError(s.Store.DeleteConnector(ctx, cs[0].ID), "inbound connector", cs[0].Name)
	})
}

// checkConnectorClaims refuses a connector whose sender IP ranges overlap,
// or whose certificate name matches, one of another organization's
// connectors (enabled or not): a client must be attributable to at most
// one organization, and no organization may claim another's sources. The
// error names neither the other organization nor its connector.
func checkConnectorClaims(dir *directory.Snapshot, c *directory.InboundConnector) error {
	for _, other := range dir.Contents().Connectors {
		if other.OrgID == c.OrgID {
			continue
		}
		for _, p := range c.SenderIPAddresses {
			for _, q := range other.SenderIPAddresses {
				if p.Overlaps(q) {
					return &kindError{ErrExists, fmt.Sprintf("Inbound connector '%s': the sender IP range %s overlaps a range another organization's inbound connector uses; an address can belong to one organization only.", c.Name, p)}
				}
			}
		}
		if a, b := c.TlsSenderCertificateName, other.TlsSenderCertificateName; a != "" && b != "" && certificateNamesOverlap(a, b) {
			return &kindError{ErrExists, fmt.Sprintf("Inbound connector '%s': the certificate name %s is used by another organization's inbound connector; a certificate name can belong to one organization only.", c.Name, a)}
		}
	}
	return nil
}

// certificateNamesOverlap reports whether some certificate name would
// match both connector values ("*.contoso.com" covers mail.contoso.com).
func certificateNamesOverlap(a, b string) bool {
	base := func(p string) string { return strings.TrimPrefix(p, "*.") }
	return directory.DomainMatches(a, base(b)) || directory.DomainMatches(b, base(a))
}

// applyConnector validates every given parameter before changing c, so a
// bad value leaves nothing half-applied.
func applyConnector(c *directory.InboundConnector, p InboundConnectorParams) error {
	next := *c
	if p.Name != nil {
		next.Name = strings.TrimSpace(*p.Name)
	}
	if p.ConnectorType != nil {
		t, err := connectorType(*p.ConnectorType)
		if err != nil {
			return err
		}
		next.ConnectorType = t
	}
	var err error
	if p.SenderDomains != nil {
		if next.SenderDomains, err = p.SenderDomains.apply(next.SenderDomains, domainPattern("SenderDomains")); err != nil {
			return err
		}
	}
	if p.SenderIPAddresses != nil {
		current := make([]string, len(next.SenderIPAddresses))
		for i, pr := range next.SenderIPAddresses {
			current[i] = pr.String()
		}
		list, err := p.SenderIPAddresses.apply(current, ipRange)
		if err != nil {
			return err
		}
		next.SenderIPAddresses = next.SenderIPAddresses[:0:0]
		for _, v := range list {
			next.SenderIPAddresses = append(next.SenderIPAddresses, netip.MustParsePrefix(v))
		}
	}
	if p.TlsSenderCertificateName != nil {
		next.TlsSenderCertificateName = ""
		if v := strings.TrimSpace(*p.TlsSenderCertificateName); v != "" {
			if next.TlsSenderCertificateName, err = domainPattern("TlsSenderCertificateName")(v); err != nil || v == "*" {
				return invalidValue("TlsSenderCertificateName", v, "give a domain such as mail.contoso.com or *.contoso.com")
			}
		}
	}
	if p.TlsSenderCertificateFingerprints != nil {
		if next.TlsSenderCertificateFingerprints, err = p.TlsSenderCertificateFingerprints.apply(next.TlsSenderCertificateFingerprints, fingerprint); err != nil {
			return err
		}
	}
	for _, b := range []struct {
		v   *bool
		dst *bool
	}{{p.RequireTls, &next.RequireTls}, {p.RestrictDomainsToIPAddresses, &next.RestrictDomainsToIPAddresses},
		{p.RestrictDomainsToCertificate, &next.RestrictDomainsToCertificate}, {p.Enabled, &next.Enabled}} {
		if b.v != nil {
			*b.dst = *b.v
		}
	}
	if p.Comment != nil {
		next.Comment = *p.Comment
	}
	if p.ProtocolLoggingLevel != nil {
		switch v := strings.TrimSpace(*p.ProtocolLoggingLevel); {
		case strings.EqualFold(v, LoggingVerbose):
			next.ProtocolLogging = true
		case strings.EqualFold(v, LoggingNone):
			next.ProtocolLogging = false
		default:
			return invalidValue("ProtocolLoggingLevel", v, `the level must be "Verbose" or "None"`)
		}
	}
	if next.RestrictDomainsToIPAddresses && len(next.SenderIPAddresses) == 0 {
		return fmt.Errorf("Inbound connector '%s': RestrictDomainsToIPAddresses needs SenderIPAddresses.", next.Name)
	}
	if next.RestrictDomainsToCertificate && next.TlsSenderCertificateName == "" {
		return fmt.Errorf("Inbound connector '%s': RestrictDomainsToCertificate needs TlsSenderCertificateName.", next.Name)
	}
	*c = next
	return nil
}

// connectorType reads -ConnectorType, which inbound and outbound
// connectors share.
func connectorType(v string) (directory.ConnectorType, error) {
	for _, t := range []directory.ConnectorType{directory.OnPremises, directory.Partner} {
		if strings.EqualFold(v, string(t)) {
			return t, nil
		}
	}
	return "", fmt.Errorf("Cannot validate argument on parameter 'ConnectorType'. The argument \"%s\" does not belong to the set \"OnPremises,Partner\".", v)
}

// domainPattern validates "*", "contoso.com" or "*.contoso.com"; Exchange
// allows no other wildcard.
func domainPattern(param string) func(string) (string, error) {
	return func(v string) (string, error) {
		v = strings.TrimSpace(v)
		if v == "*" {
			return v, nil
		}
		base, wild := strings.CutPrefix(v, "*.")
		d, err := address.NormalizeDomain(base)
		if err != nil || strings.Contains(base, "*") {
			return "", invalidValue(param, v, "give a domain, *.domain or *")
		}
		if wild {
			return "*." + d, nil
		}
		return d, nil
	}
}

// ipRange validates an address or CIDR range (IPv4 or IPv6) and returns it
// as a prefix: 192.168.0.1 becomes 192.168.0.1/32.
func ipRange(v string) (string, error) {
	v = strings.TrimSpace(v)
	if p, err := netip.ParsePrefix(v); err == nil {
		return p.Masked().String(), nil
	}
	if a, err := netip.ParseAddr(v); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()).String(), nil
	}
	return "", invalidValue("SenderIPAddresses", v, "give an IP address or a CIDR range such as 192.168.0.0/24")
}

// fingerprint validates a hex SHA-256 (colons allowed, as tools print it).
func fingerprint(v string) (string, error) {
	h := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(v), ":", ""))
	if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
		return "", invalidValue("TlsSenderCertificateFingerprints", v, "give the SHA-256 of the certificate's public key in hex")
	}
	return h, nil
}
