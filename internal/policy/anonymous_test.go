package policy

import (
	"net/netip"
	"testing"

	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/reply"
)

// connectors builds contoso (RejectDirectSend on) with three connectors:
// printers by IP (OnPremises), relays by certificate (OnPremises, pinned
// fingerprint "ab..."), and fabrikam (Partner, restricted to its IPs), plus
// a disabled one that would match everything.
func connectors() *directory.Snapshot {
	pfx := func(s string) []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix(s)} }
	return directory.NewSnapshot(directory.Contents{
		Organizations: []*directory.Organization{{ID: 1, Name: "contoso", RejectDirectSend: true}},
		Domains: []*directory.AcceptedDomain{
			{ID: 1, OrgID: 1, DomainName: "contoso.com", DomainType: directory.Authoritative},
			{ID: 2, OrgID: 1, DomainName: "relay.contoso.com", DomainType: directory.InternalRelay},
		},
		Mailboxes: []*directory.Mailbox{{ID: 1, OrgID: 1, PrimarySmtpAddress: "sean@contoso.com", UserPrincipalName: "sean@contoso.com"}},
		Connectors: []*directory.InboundConnector{
			{ID: 1, OrgID: 1, Name: "printers", ConnectorType: directory.OnPremises, Enabled: true, SenderIPAddresses: pfx("192.0.2.0/28"), SenderDomains: []string{"*"}},
			{ID: 2, OrgID: 1, Name: "relays", ConnectorType: directory.OnPremises, Enabled: true, TlsSenderCertificateName: "*.contoso.com",
				TlsSenderCertificateFingerprints: []string{"ab"}, RequireTls: true, SenderDomains: []string{"*"}},
			{ID: 3, OrgID: 1, Name: "fabrikam", ConnectorType: directory.Partner, Enabled: true, SenderDomains: []string{"*.fabrikam.com"},
				SenderIPAddresses: pfx("198.51.100.0/24"), RestrictDomainsToIPAddresses: true},
			{ID: 4, OrgID: 1, Name: "off", ConnectorType: directory.OnPremises, Enabled: false, SenderIPAddresses: pfx("0.0.0.0/0")},
		},
	})
}

func TestAnonymousDecisions(t *testing.T) {
	dir := connectors()
	printer := ClientFacts{IP: netip.MustParseAddr("192.0.2.5")}
	stranger := ClientFacts{IP: netip.MustParseAddr("203.0.113.9")}
	relayCert := ClientFacts{IP: netip.MustParseAddr("203.0.113.10"), TLS: true, CertNames: []string{"smtp1.contoso.com"}, CertFingerprint: "ab"}
	relayNoTLS := relayCert
	relayNoTLS.TLS = false
	unpinned := ClientFacts{IP: netip.MustParseAddr("203.0.113.11"), TLS: true, CertNames: []string{"smtp1.contoso.com"}, CertFingerprint: "cd"}
	caSigned := ClientFacts{IP: netip.MustParseAddr("203.0.113.12"), TLS: true, CertNames: []string{"x.fabrikam.com", "mail.contoso.com"}, CertVerified: true}
	partner := ClientFacts{IP: netip.MustParseAddr("198.51.100.7")}

	tests := []struct {
		name      string
		client    ClientFacts
		from      string
		rcpt      string
		connector string // expected attribution
		mailFrom  *reply.Reply
		rcptReply *reply.Reply
		outbound  bool
	}{
		{name: "printer relays for the organization", client: printer, from: "scan@contoso.com", rcpt: "bob@outside.example", connector: "printers", outbound: true},
		{name: "printer relays for a subdomain sender", client: printer, from: "scan@relay.contoso.com", rcpt: "bob@outside.example", connector: "printers", outbound: true},
		{name: "printer with a foreign sender", client: printer, from: "x@outside.example", rcpt: "bob@outside.example", connector: "printers", rcptReply: reply.RelayDeniedATTR36},
		{name: "printer with null sender", client: printer, from: "", rcpt: "bob@outside.example", connector: "printers", rcptReply: reply.RelayDeniedATTR36},
		{name: "stranger, Direct Send blocked", client: stranger, from: "scan@contoso.com", rcpt: "sean@contoso.com", mailFrom: reply.DirectSendRejected},
		{name: "stranger, inbound mail", client: stranger, from: "x@outside.example", rcpt: "sean@contoso.com"},
		{name: "stranger, relay", client: stranger, from: "x@outside.example", rcpt: "bob@outside.example", rcptReply: reply.RelayDenied},
		{name: "stranger, unknown local", client: stranger, from: "x@outside.example", rcpt: "nobody@contoso.com", rcptReply: reply.RecipientNotFound("nobody@contoso.com")},
		{name: "stranger, InternalRelay domain is not relayed", client: stranger, from: "x@outside.example", rcpt: "a@relay.contoso.com", rcptReply: reply.RelayDenied},
		{name: "pinned certificate relays for the organization", client: relayCert, from: "app@contoso.com", rcpt: "bob@outside.example", connector: "relays", outbound: true},
		{name: "certificate connector with a foreign sender", client: relayCert, from: "x@outside.example", rcpt: "bob@outside.example", connector: "relays", rcptReply: reply.RelayDeniedATTR36},
		{name: "a certificate counts only over TLS", client: relayNoTLS, from: "x@contoso.com", mailFrom: reply.DirectSendRejected},
		{name: "unpinned, unverified certificate", client: unpinned, from: "x@outside.example", rcpt: "bob@outside.example", rcptReply: reply.RelayDenied},
		{name: "CA-verified certificate, second name matches", client: caSigned, from: "app@contoso.com", rcpt: "bob@outside.example", connector: "relays", outbound: true},
		{name: "partner from its range", client: partner, from: "ceo@mail.fabrikam.com", rcpt: "sean@contoso.com", connector: "fabrikam"},
		{name: "partner domain from elsewhere", client: stranger, from: "ceo@fabrikam.com", mailFrom: reply.PartnerConnectorMismatch},
		{name: "partner grants no relay", client: partner, from: "ceo@fabrikam.com", rcpt: "x@outside.example", connector: "fabrikam", rcptReply: reply.RelayDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			att := Attribute(dir, tt.client)
			name := ""
			if att.Connector != nil {
				name = att.Connector.Name
			}
			if name != tt.connector {
				t.Fatalf("attributed to %q, want %q", name, tt.connector)
			}
			var from address.Address
			if tt.from != "" {
				from, _ = address.Parse(tt.from)
			}
			if got := CheckAnonymousSender(dir, att, tt.client, from); describe(got) != describe(tt.mailFrom) {
				t.Fatalf("MAIL FROM: %s, want %s", describe(got), describe(tt.mailFrom))
			}
			if tt.mailFrom != nil || tt.rcpt == "" {
				return
			}
			rcpt, _ := address.Parse(tt.rcpt)
			route, rep := RouteAnonymous(dir, att, from, rcpt)
			if describe(rep) != describe(tt.rcptReply) {
				t.Fatalf("RCPT: %s, want %s", describe(rep), describe(tt.rcptReply))
			}
			if rep == nil && (route.Destination == Outbound) != tt.outbound {
				t.Fatalf("route %+v, outbound want %v", route, tt.outbound)
			}
		})
	}
}

func TestOrganizationAttribution(t *testing.T) {
	dir := directory.NewSnapshot(directory.Contents{
		Organizations: []*directory.Organization{{ID: 1, Name: "contoso"}, {ID: 2, Name: "fabrikam"}},
		Domains:       []*directory.AcceptedDomain{{ID: 1, OrgID: 1, DomainName: "contoso.com"}, {ID: 2, OrgID: 2, DomainName: "fabrikam.com"}},
		Connectors:    []*directory.InboundConnector{{ID: 1, OrgID: 2, Name: "f", Enabled: true, SenderIPAddresses: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}}},
	})
	sean := &directory.Mailbox{ID: 1, OrgID: 1}
	contoso, _ := address.Parse("scan@contoso.com")
	outside, _ := address.Parse("x@outside.example")
	v6 := Attribute(dir, ClientFacts{IP: netip.MustParseAddr("2001:db8:1::5")})
	if v6.Connector == nil || v6.Connector.Name != "f" {
		t.Fatalf("IPv6 range not matched: %+v", v6)
	}
	for _, tt := range []struct {
		name string
		att  Attribution
		from address.Address
		want string
	}{
		{"connector first", v6, contoso, "fabrikam"},
		{"then the sender's accepted domain", Attribution{}, contoso, "contoso"},
		{"then the recipient", Attribution{}, outside, "contoso"},
		{"null sender: the recipient", Attribution{}, address.Address{}, "contoso"},
	} {
		if got := Organization(dir, tt.att, tt.from, []*directory.Mailbox{sean}); got == nil || got.Name != tt.want {
			t.Errorf("%s: got %v, want %s", tt.name, got, tt.want)
		}
	}
}

func TestRequireTlsOnMatchedConnector(t *testing.T) {
	dir := connectors()
	c := ClientFacts{IP: netip.MustParseAddr("192.0.2.5")}
	att := Attribute(dir, c)
	att.Connector.RequireTls = true
	defer func() { att.Connector.RequireTls = false }()
	from, _ := address.Parse("scan@contoso.com")
	if got := CheckAnonymousSender(dir, att, c, from); got != reply.TLSRequired {
		t.Fatalf("got %s", describe(got))
	}
	c.TLS = true
	if got := CheckAnonymousSender(dir, att, c, from); got != nil {
		t.Fatalf("with TLS: %s", describe(got))
	}
}
