package admin

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/directory"
)

// OutboundConnectorParams are New-/Set-OutboundConnector's parameters; nil
// means not given. The Auth and OAuth ones are Postern's extension for
// smart hosts that need a sign-in (Microsoft 365 after Basic auth ends).
type OutboundConnectorParams struct {
	Name               *string
	ConnectorType      *string
	RecipientDomains   *MultiValue
	SmartHosts         *MultiValue
	UseMXRecord        *bool
	TlsSettings        *string // "" for $null
	TlsDomain          *string
	Enabled            *bool
	Comment            *string
	AuthMechanism      *string
	SmtpUser           *string
	SmtpPassword       *string
	OAuthTokenEndpoint *string
	OAuthClientId      *string
	OAuthClientSecret  *string
	OAuthScope         *string
}

// OutboundConnectors lists the organization's outbound connectors, or the
// named one.
func (s *Service) OutboundConnectors(identity string) ([]*directory.OutboundConnector, error) {
	org := s.org()
	var out []*directory.OutboundConnector
	for _, c := range s.Dir.Load().Contents().Outbound {
		if c.OrgID == org.ID && (identity == "" || strings.EqualFold(c.Name, identity)) {
			out = append(out, c)
		}
	}
	if identity != "" && len(out) == 0 {
		return nil, NotFound(identity)
	}
	return out, nil
}

// NewOutboundConnector creates an outbound connector. Exchange's defaults:
// Partner, enabled, UseMXRecord $true, TlsSettings $null.
func (s *Service) NewOutboundConnector(ctx context.Context, p OutboundConnectorParams) (*directory.OutboundConnector, error) {
	c := &directory.OutboundConnector{ConnectorType: directory.Partner, Enabled: true, UseMXRecord: true,
		AuthMechanism: directory.AuthNone}
	err := s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		c.OrgID = org.ID
		if err := s.applyOutbound(c, p); err != nil {
			return err
		}
		if c.Name == "" {
			return fmt.Errorf("Cannot process command because of one or more missing mandatory parameters: Name.")
		}
		return storeError(s.Store.SaveOutboundConnector(ctx, c), "outbound connector", c.Name)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// SetOutboundConnector changes an outbound connector.
func (s *Service) SetOutboundConnector(ctx context.Context, identity string, p OutboundConnectorParams) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		cs, err := s.OutboundConnectors(identity)
		if err != nil {
			return err
		}
		c := *cs[0]
		if err := s.applyOutbound(&c, p); err != nil {
			return err
		}
		return storeError(s.Store.SaveOutboundConnector(ctx, &c), "outbound connector", c.Name)
	})
}

// RemoveOutboundConnector deletes an outbound connector; mail it would
// have carried goes by MX (or another connector) from then on.
func (s *Service) RemoveOutboundConnector(ctx context.Context, identity string) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		cs, err := s.OutboundConnectors(identity)
		if err != nil {
			return err
		}
		return storeError(s.Store.DeleteOutboundConnector(ctx, cs[0].ID), "outbound connector", cs[0].Name)
	})
}

// applyOutbound validates every given parameter, and the result as a
// whole, before changing c.
func (s *Service) applyOutbound(c *directory.OutboundConnector, p OutboundConnectorParams) error {
	// Smart hosts and token endpoints are places the queue connects to
	// (and reports on, in Get-QueueMessage and the trace).
	if p.SmartHosts != nil || p.OAuthTokenEndpoint != nil {
		if err := s.reachOut("-SmartHosts/-OAuthTokenEndpoint"); err != nil {
			return err
		}
	}
	next := *c
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	set(&next.Name, p.Name)
	set(&next.TlsDomain, p.TlsDomain)
	set(&next.SmtpUser, p.SmtpUser)
	set(&next.OAuthTokenEndpoint, p.OAuthTokenEndpoint)
	set(&next.OAuthClientId, p.OAuthClientId)
	set(&next.OAuthScope, p.OAuthScope)
	if p.Comment != nil {
		next.Comment = *p.Comment
	}
	if p.ConnectorType != nil {
		t, err := connectorType(*p.ConnectorType)
		if err != nil {
			return err
		}
		next.ConnectorType = t
	}
	if p.TlsSettings != nil {
		v := strings.TrimSpace(*p.TlsSettings)
		found := v == ""
		for _, t := range []directory.TlsSettings{directory.TlsEncryptionOnly, directory.TlsCertificateValidation, directory.TlsDomainValidation} {
			if strings.EqualFold(v, string(t)) {
				next.TlsSettings, found = t, true
			}
		}
		if !found {
			return fmt.Errorf("Cannot validate argument on parameter 'TlsSettings'. The argument \"%s\" does not belong to the set \"EncryptionOnly,CertificateValidation,DomainValidation\".", v)
		}
		if v == "" {
			next.TlsSettings = directory.TlsOpportunistic
		}
	}
	if p.AuthMechanism != nil {
		v := strings.TrimSpace(*p.AuthMechanism)
		found := false
		for _, m := range []directory.AuthMechanism{directory.AuthNone, directory.AuthBasic, directory.AuthXOAUTH2} {
			if strings.EqualFold(v, string(m)) {
				next.AuthMechanism, found = m, true
			}
		}
		if !found {
			return fmt.Errorf("Cannot validate argument on parameter 'AuthMechanism'. The argument \"%s\" does not belong to the set \"None,Basic,XOAUTH2\".", v)
		}
	}
	var err error
	if p.RecipientDomains != nil {
		if next.RecipientDomains, err = p.RecipientDomains.apply(next.RecipientDomains, domainPattern("RecipientDomains")); err != nil {
			return err
		}
	}
	if p.SmartHosts != nil {
		if next.SmartHosts, err = p.SmartHosts.apply(next.SmartHosts, smartHost); err != nil {
			return err
		}
	}
	for _, b := range []struct {
		v   *bool
		dst *bool
	}{{p.UseMXRecord, &next.UseMXRecord}, {p.Enabled, &next.Enabled}} {
		if b.v != nil {
			*b.dst = *b.v
		}
	}
	if p.SmtpPassword != nil {
		if next.SmtpPasswordSealed, err = s.seal(*p.SmtpPassword); err != nil {
			return err
		}
	}
	if p.OAuthClientSecret != nil {
		if next.OAuthClientSecretSealed, err = s.seal(*p.OAuthClientSecret); err != nil {
			return err
		}
	}
	// The whole, as Exchange checks it on New- and Set-.
	who := fmt.Sprintf("Outbound connector '%s'", next.Name)
	switch {
	case !next.UseMXRecord && len(next.SmartHosts) == 0:
		return fmt.Errorf("%s: SmartHosts must be given when UseMXRecord is $false.", who)
	case next.UseMXRecord && len(next.SmartHosts) > 0 && p.SmartHosts != nil:
		return fmt.Errorf("%s: SmartHosts can't be used while UseMXRecord is $true; add -UseMXRecord $false.", who)
	case next.TlsDomain != "" && next.TlsSettings != directory.TlsDomainValidation:
		return fmt.Errorf("%s: TlsDomain can only be set when TlsSettings is DomainValidation.", who)
	}
	if next.TlsDomain != "" {
		if next.TlsDomain, err = domainPattern("TlsDomain")(next.TlsDomain); err != nil || next.TlsDomain == "*" {
			return invalidValue("TlsDomain", next.TlsDomain, "give a domain such as mail.contoso.com or *.contoso.com")
		}
	}
	switch next.AuthMechanism {
	case directory.AuthBasic:
		if next.SmtpUser == "" || next.SmtpPasswordSealed == "" {
			return fmt.Errorf("%s: AuthMechanism Basic needs SmtpUser and SmtpPassword.", who)
		}
	case directory.AuthXOAUTH2:
		if next.SmtpUser == "" || next.OAuthTokenEndpoint == "" || next.OAuthClientId == "" || next.OAuthClientSecretSealed == "" {
			return fmt.Errorf("%s: AuthMechanism XOAUTH2 needs SmtpUser, OAuthTokenEndpoint, OAuthClientId and OAuthClientSecret.", who)
		}
		if err := s.urls().Check(next.OAuthTokenEndpoint); err != nil {
			return invalidValue("OAuthTokenEndpoint", next.OAuthTokenEndpoint, "give the https:// URL of the token endpoint: "+err.Error())
		}
	}
	if next.AuthMechanism != directory.AuthNone && next.UseMXRecord {
		return fmt.Errorf("%s: AuthMechanism %s needs SmartHosts (sign-in is for smart hosts, not MX delivery).", who, next.AuthMechanism)
	}
	if next.SmtpUser != "" {
		if _, err := address.Parse(next.SmtpUser); err != nil {
			return invalidValue("SmtpUser", next.SmtpUser, "give the mailbox address to sign in as")
		}
	}
	*c = next
	return nil
}

// seal encrypts a secret for storage.
func (s *Service) seal(v string) (string, error) {
	if s.Secrets == nil {
		return "", fmt.Errorf("no secret key is configured to store secrets with")
	}
	return s.Secrets.Seal(v)
}

// smartHost validates a smart host: a host name, an IPv4 or IPv6 address,
// each optionally with ":port" ("[v6]:port").
func smartHost(v string) (string, error) {
	v = strings.TrimSpace(v)
	bad := invalidValue("SmartHosts", v, "give a host name or IP address, optionally with :port")
	host, port := v, ""
	if h, p, err := net.SplitHostPort(v); err == nil {
		host, port = h, p
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", bad
		}
	}
	host = strings.Trim(host, "[]")
	if ip := net.ParseIP(host); ip != nil {
		if port != "" {
			return net.JoinHostPort(ip.String(), port), nil
		}
		return ip.String(), nil
	}
	d, err := address.NormalizeDomain(host)
	if err != nil {
		return "", bad
	}
	if port != "" {
		return d + ":" + port, nil
	}
	return d, nil
}
