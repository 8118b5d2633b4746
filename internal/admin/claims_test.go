package admin

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"postern.dev/postern/internal/directory"
)

func TestExclusiveClaims(t *testing.T) {
	dir := directory.NewSnapshot(directory.Contents{
		Organizations: []*directory.Organization{{ID: 1, Name: "Contoso"}, {ID: 2, Name: "Fabrikam"}},
		Domains:       []*directory.AcceptedDomain{{ID: 1, OrgID: 1, DomainName: "contoso.com"}, {ID: 2, OrgID: 2, DomainName: "eu.fabrikam.com"}},
		Connectors: []*directory.InboundConnector{
			{ID: 1, OrgID: 1, Name: "Contoso printers", SenderIPAddresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/28")}},
			{ID: 2, OrgID: 1, Name: "Contoso relays", TlsSenderCertificateName: "*.contoso.com"},
			{ID: 3, OrgID: 1, Name: "Contoso v6", SenderIPAddresses: []netip.Prefix{netip.MustParsePrefix("2001:db8::/48")}},
		},
	})
	pfx := func(s string) []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix(s)} }
	for _, tt := range []struct {
		name string
		c    directory.InboundConnector
		ok   bool
	}{
		{"a range inside another organization's", directory.InboundConnector{OrgID: 2, SenderIPAddresses: pfx("192.0.2.4/32")}, false},
		{"a range containing another organization's", directory.InboundConnector{OrgID: 2, SenderIPAddresses: pfx("192.0.0.0/16")}, false},
		{"an IPv6 overlap", directory.InboundConnector{OrgID: 2, SenderIPAddresses: pfx("2001:db8:0:1::/64")}, false},
		{"a disjoint range", directory.InboundConnector{OrgID: 2, SenderIPAddresses: pfx("192.0.2.16/28")}, true},
		{"an overlap within one organization", directory.InboundConnector{OrgID: 1, SenderIPAddresses: pfx("192.0.2.0/24")}, true},
		{"the same certificate name", directory.InboundConnector{OrgID: 2, TlsSenderCertificateName: "*.contoso.com"}, false},
		{"a name under another's wildcard", directory.InboundConnector{OrgID: 2, TlsSenderCertificateName: "mail.contoso.com"}, false},
		{"a wildcard over another's name", directory.InboundConnector{OrgID: 2, TlsSenderCertificateName: "*.com"}, false},
		{"another name", directory.InboundConnector{OrgID: 2, TlsSenderCertificateName: "*.fabrikam.com"}, true},
		{"a look-alike name", directory.InboundConnector{OrgID: 2, TlsSenderCertificateName: "notcontoso.com"}, true},
	} {
		tt.c.Name = "new"
		err := checkConnectorClaims(dir, &tt.c)
		if (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.name, err)
		}
		if err != nil && (strings.Contains(err.Error(), "Contoso") || !errors.Is(err, ErrExists)) {
			t.Errorf("%s: %q names the other organization or is not ErrExists", tt.name, err)
		}
	}
	for _, tt := range []struct {
		org    int64
		domain string
		ok     bool
	}{
		{2, "sales.contoso.com", false},
		{2, "fabrikam.com", true},
		{1, "fabrikam.com", false},
		{1, "a.eu.fabrikam.com", false},
		{1, "notcontoso.com", true},
		{1, "sales.contoso.com", true},
	} {
		err := checkDomainClaim(dir, tt.org, tt.domain)
		if (err == nil) != tt.ok {
			t.Errorf("organization %d, %s: %v", tt.org, tt.domain, err)
		}
		if err != nil && (strings.Contains(err.Error(), "Contoso") || strings.Contains(err.Error(), "Fabrikam")) {
			t.Errorf("%q names an organization", err)
		}
	}
}

func TestEnvelopeLimitParameter(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
		ok   bool
	}{{"Unlimited", 0, true}, {"unlimited", 0, true}, {"1", 1, true}, {"1000", 1000, true}, {"0", 0, false}, {"1001", 0, false}, {"x", 0, false}} {
		got, err := parseEnvelopeLimit(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("%q: %d %v", tt.in, got, err)
		}
	}
	if envelopeLimitText(0) != "Unlimited" || envelopeLimitText(7) != "7" {
		t.Error("envelopeLimitText")
	}
}
