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
		connector string // expected attribution of the recipient's copy
		mailFrom  *reply.Reply
		rcptReply *reply.Reply
		outbound  bool
	}{
		{name: "printer relays for the organization", client: printer, from: "scan@contoso.com", rcpt: "bob@outside.example", connector: "printers", outbound: true},
		{name: "printer relays for a subdomain sender", client: printer, from: "scan@relay.contoso.com", rcpt: "bob@outside.example", connector: "printers", outbound: true},
		{name: "printer with a foreign sender", client: printer, from: "x@outside.example", rcpt: "bob@outside.example", rcptReply: reply.RelayDeniedATTR36},
		{name: "printer with null sender", client: printer, from: "", rcpt: "bob@outside.example", rcptReply: reply.RelayDeniedATTR36},
		{name: "printer to a mailbox", client: printer, from: "scan@contoso.com", rcpt: "sean@contoso.com", connector: "printers"},
		{name: "printer to an InternalRelay address", client: printer, from: "scan@contoso.com", rcpt: "a@relay.contoso.com", connector: "printers", outbound: true},
		{name: "printer, InternalRelay, foreign sender", client: printer, from: "x@outside.example", rcpt: "a@relay.contoso.com", connector: "printers", rcptReply: reply.RelayDeniedATTR36},
		{name: "stranger, Direct Send blocked at RCPT", client: stranger, from: "scan@contoso.com", rcpt: "sean@contoso.com", rcptReply: reply.DirectSendRejected},
		{name: "stranger, inbound mail", client: stranger, from: "x@outside.example", rcpt: "sean@contoso.com"},
		{name: "stranger, relay", client: stranger, from: "x@outside.example", rcpt: "bob@outside.example", rcptReply: reply.RelayDenied},
		{name: "stranger, unknown local", client: stranger, from: "x@outside.example", rcpt: "nobody@contoso.com", rcptReply: reply.RecipientAccessDenied},
		{name: "stranger, InternalRelay domain is not relayed", client: stranger, from: "x@outside.example", rcpt: "a@relay.contoso.com", rcptReply: reply.RelayDenied},
		{name: "pinned certificate relays for the organization", client: relayCert, from: "app@contoso.com", rcpt: "bob@outside.example", connector: "relays", outbound: true},
		{name: "certificate connector of an accepted domain relays for a foreign sender", client: relayCert, from: "x@outside.example", rcpt: "bob@outside.example", connector: "relays", outbound: true},
		{name: "a certificate counts only over TLS", client: relayNoTLS, from: "x@contoso.com", rcpt: "sean@contoso.com", rcptReply: reply.DirectSendRejected},
		{name: "unpinned, unverified certificate", client: unpinned, from: "x@outside.example", rcpt: "bob@outside.example", rcptReply: reply.RelayDenied},
		{name: "CA-verified certificate, second name matches", client: caSigned, from: "app@contoso.com", rcpt: "bob@outside.example", connector: "relays", outbound: true},
		{name: "partner from its range", client: partner, from: "ceo@mail.fabrikam.com", rcpt: "sean@contoso.com", connector: "fabrikam"},
		{name: "partner domain from elsewhere", client: stranger, from: "ceo@fabrikam.com", rcpt: "sean@contoso.com", rcptReply: reply.PartnerConnectorMismatch},
		{name: "partner grants no relay", client: partner, from: "ceo@fabrikam.com", rcpt: "x@outside.example", rcptReply: reply.RelayDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var from address.Address
			if tt.from != "" {
				from, _ = address.Parse(tt.from)
			}
			if got := CheckAnonymousSender(dir, tt.client, from); describe(got) != describe(tt.mailFrom) {
				t.Fatalf("MAIL FROM: %s, want %s", describe(got), describe(tt.mailFrom))
			}
			if tt.mailFrom != nil || tt.rcpt == "" {
				return
			}
			rcpt, _ := address.Parse(tt.rcpt)
			v, rep := JudgeAnonymous(dir, tt.client, from, rcpt)
			if describe(rep) != describe(tt.rcptReply) {
				t.Fatalf("RCPT: %s, want %s", describe(rep), describe(tt.rcptReply))
			}
			if rep != nil {
				return
			}
			name := ""
			if v.Attribution.Connector != nil {
				name = v.Attribution.Connector.Name
			}
			if name != tt.connector {
				t.Fatalf("attributed to %q, want %q", name, tt.connector)
			}
			if (v.Route.Destination == Outbound) != tt.outbound {
				t.Fatalf("route %+v, outbound want %v", v.Route, tt.outbound)
			}
			if v.Org == nil || v.Org.Name != "contoso" {
				t.Fatalf("organization %+v", v.Org)
			}
		})
	}
}

// twoOrganizations: contoso (RejectDirectSend on, no connectors) and
// fabrikam, whose admin created an OnPremises connector for all of
// 127.0.0.0/8 that requires no TLS, a Partner connector claiming
// contoso.com, and a certificate connector for *.contoso.com.
func twoOrganizations() *directory.Snapshot {
	return directory.NewSnapshot(directory.Contents{
		Organizations: []*directory.Organization{{ID: 1, Name: "contoso", RejectDirectSend: true}, {ID: 2, Name: "fabrikam", RejectDirectSend: true}},
		Domains: []*directory.AcceptedDomain{
			{ID: 1, OrgID: 1, DomainName: "contoso.com", DomainType: directory.Authoritative},
			{ID: 2, OrgID: 2, DomainName: "fabrikam.com", DomainType: directory.Authoritative},
		},
		Mailboxes: []*directory.Mailbox{
			{ID: 1, OrgID: 1, PrimarySmtpAddress: "sean@contoso.com"},
			{ID: 2, OrgID: 2, PrimarySmtpAddress: "kim@fabrikam.com"},
		},
		Connectors: []*directory.InboundConnector{
			{ID: 1, OrgID: 2, Name: "grab", ConnectorType: directory.OnPremises, Enabled: true, SenderIPAddresses: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
			{ID: 2, OrgID: 2, Name: "spoof", ConnectorType: directory.Partner, Enabled: true, SenderDomains: []string{"contoso.com"},
				SenderIPAddresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, RestrictDomainsToIPAddresses: true},
			{ID: 3, OrgID: 2, Name: "certs", ConnectorType: directory.OnPremises, Enabled: true, RequireTls: true, TlsSenderCertificateName: "*.contoso.com"},
		},
	})
}

// TestTenantIsolation: one organization's connectors never change how mail
// to another's recipients is judged; each recipient's copy belongs to its
// own organization; relay belongs to the sender's.
func TestTenantIsolation(t *testing.T) {
	dir := twoOrganizations()
	local := ClientFacts{IP: netip.MustParseAddr("127.0.0.9")}
	cert := ClientFacts{IP: netip.MustParseAddr("203.0.113.1"), TLS: true, CertVerified: true, CertNames: []string{"mx.contoso.com"}}
	plain := ClientFacts{IP: netip.MustParseAddr("203.0.113.1")}
	parse := func(s string) address.Address {
		if s == "" {
			return address.Address{}
		}
		a, err := address.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tt := range []struct {
		name      string
		client    ClientFacts
		from      string
		rcpt      string
		mailFrom  *reply.Reply
		want      *reply.Reply
		org       string
		connector string
	}{
		{name: "another organization's connector does not exempt from RejectDirectSend", client: local, from: "x@contoso.com", rcpt: "sean@contoso.com", want: reply.DirectSendRejected},
		{name: "its own organization's connector does", client: local, from: "x@fabrikam.com", rcpt: "kim@fabrikam.com", org: "fabrikam", connector: "grab"},
		{name: "mail from fabrikam to contoso belongs to contoso", client: plain, from: "x@fabrikam.com", rcpt: "sean@contoso.com", org: "contoso"},
		{name: "outside mail to fabrikam through fabrikam's connector", client: local, from: "x@tailspin.example", rcpt: "kim@fabrikam.com", org: "fabrikam", connector: "grab"},
		{name: "another organization's Partner restriction does not apply", client: plain, from: "ceo@contoso.com", rcpt: "sean@contoso.com", want: reply.DirectSendRejected},
		{name: "a Partner restriction applies to its own organization's mail", client: plain, from: "ceo@contoso.com", rcpt: "kim@fabrikam.com", want: reply.PartnerConnectorMismatch},
		{name: "another organization's connector relays nothing for contoso", client: local, from: "x@contoso.com", rcpt: "bob@outside.example", want: reply.RelayDeniedATTR36},
		{name: "relay belongs to the sender's organization", client: local, from: "x@fabrikam.com", rcpt: "bob@outside.example", org: "fabrikam", connector: "grab"},
		{name: "a certificate for contoso names claimed by fabrikam does not attribute contoso mail", client: cert, from: "app@contoso.com", rcpt: "sean@contoso.com", want: reply.DirectSendRejected},
		{name: "fabrikam's certificate connector attributes fabrikam's copy", client: cert, from: "x@tailspin.example", rcpt: "kim@fabrikam.com", org: "fabrikam", connector: "certs"},
		{name: "and leaves contoso's copy unattributed", client: cert, from: "x@tailspin.example", rcpt: "sean@contoso.com", org: "contoso"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			from, rcpt := parse(tt.from), parse(tt.rcpt)
			if got := CheckAnonymousSender(dir, tt.client, from); describe(got) != describe(tt.mailFrom) {
				t.Fatalf("MAIL FROM: %s, want %s", describe(got), describe(tt.mailFrom))
			}
			v, rep := JudgeAnonymous(dir, tt.client, from, rcpt)
			if describe(rep) != describe(tt.want) {
				t.Fatalf("RCPT: %s, want %s", describe(rep), describe(tt.want))
			}
			if rep != nil {
				return
			}
			name := ""
			if v.Attribution.Connector != nil {
				name = v.Attribution.Connector.Name
			}
			if v.Org == nil || v.Org.Name != tt.org || name != tt.connector {
				t.Fatalf("attributed to %v / %q, want %s / %q", v.Org, name, tt.org, tt.connector)
			}
		})
	}
}

func TestRequireTlsOnMatchedConnector(t *testing.T) {
	dir := connectors()
	c := ClientFacts{IP: netip.MustParseAddr("192.0.2.5")}
	att := Attribute(dir, 1, c)
	att.Connector.RequireTls = true
	defer func() { att.Connector.RequireTls = false }()
	from, _ := address.Parse("scan@contoso.com")
	if got := CheckAnonymousSender(dir, c, from); got != reply.TLSRequired {
		t.Fatalf("got %s", describe(got))
	}
	outside, _ := address.Parse("x@outside.example")
	if got := CheckAnonymousSender(dir, c, outside); got != nil {
		t.Fatalf("a sender outside the organization at MAIL FROM: %s", describe(got))
	}
	sean, _ := address.Parse("sean@contoso.com")
	if _, got := JudgeAnonymous(dir, c, outside, sean); got != reply.TLSRequired {
		t.Fatalf("at RCPT for the connector's organization: %s", describe(got))
	}
	c.TLS = true
	if got := CheckAnonymousSender(dir, c, from); got != nil {
		t.Fatalf("with TLS: %s", describe(got))
	}
}

func TestIPv6Attribution(t *testing.T) {
	dir := directory.NewSnapshot(directory.Contents{
		Organizations: []*directory.Organization{{ID: 1, Name: "contoso"}, {ID: 2, Name: "fabrikam"}},
		Connectors:    []*directory.InboundConnector{{ID: 1, OrgID: 2, Name: "f", Enabled: true, SenderIPAddresses: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}}},
	})
	c := ClientFacts{IP: netip.MustParseAddr("2001:db8:1::5")}
	if v6 := Attribute(dir, 2, c); v6.Connector == nil || v6.Connector.Name != "f" {
		t.Fatalf("IPv6 range not matched: %+v", v6)
	}
	if other := Attribute(dir, 1, c); other.Connector != nil {
		t.Fatalf("another organization's connector attributed: %+v", other)
	}
}

func TestEnvelopeAndReceiveLimits(t *testing.T) {
	for _, tt := range []struct {
		org   *directory.Organization
		count int
		want  *reply.Reply
	}{
		{&directory.Organization{}, 1000, nil},
		{&directory.Organization{}, 1001, reply.RecipientLimitExceeded},
		{&directory.Organization{MaxRecipientEnvelopeLimit: 3}, 3, nil},
		{&directory.Organization{MaxRecipientEnvelopeLimit: 3}, 4, reply.RecipientLimitExceeded},
		{&directory.Organization{MaxRecipientEnvelopeLimit: 5000}, 1001, reply.RecipientLimitExceeded},
	} {
		if got := CheckEnvelopeRecipients(tt.org, tt.count); describe(got) != describe(tt.want) {
			t.Errorf("limit %d, count %d: %s, want %s", tt.org.MaxRecipientEnvelopeLimit, tt.count, describe(got), describe(tt.want))
		}
	}
	for _, tt := range []struct {
		max, size int64
		want      *reply.Reply
	}{
		{0, directory.MaxMessageSize, nil},
		{0, directory.MaxMessageSize + 1, reply.RecipientMessageTooLarge(directory.MaxMessageSize)},
		{1 << 20, 1 << 20, nil},
		{1 << 20, 1<<20 + 1, reply.RecipientMessageTooLarge(1 << 20)},
	} {
		if got := CheckReceiveSize(&directory.Mailbox{MaxReceiveSize: tt.max}, tt.size); describe(got) != describe(tt.want) {
			t.Errorf("MaxReceiveSize %d, size %d: %s, want %s", tt.max, tt.size, describe(got), describe(tt.want))
		}
	}
}

func TestPostmasterAddress(t *testing.T) {
	dir := directory.NewSnapshot(directory.Contents{
		Organizations: []*directory.Organization{{ID: 1}, {ID: 2}},
		Domains: []*directory.AcceptedDomain{{OrgID: 2, DomainName: "fabrikam.com", Default: true},
			{OrgID: 1, DomainName: "a.contoso.com"}, {OrgID: 1, DomainName: "contoso.com", Default: true}},
	})
	if a, ok := PostmasterAddress(dir); !ok || a.Key() != "postmaster@contoso.com" {
		t.Fatalf("got %v %v", a, ok)
	}
	if _, ok := PostmasterAddress(directory.NewSnapshot(directory.Contents{})); ok {
		t.Fatal("an empty directory has a postmaster")
	}
}

// TestATTR36 is Exchange's rule for relay through an OnPremises connector
// (reference 7.1): the sender's domain is accepted, or the connector is
// identified by a certificate whose name is an accepted domain, and then
// any sender domain may relay.
func TestATTR36(t *testing.T) {
	pfx := func(s string) []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix(s)} }
	dir := directory.NewSnapshot(directory.Contents{
		Organizations: []*directory.Organization{{ID: 1, Name: "contoso"}, {ID: 2, Name: "fabrikam"}},
		Domains: []*directory.AcceptedDomain{
			{ID: 1, OrgID: 1, DomainName: "contoso.com", DomainType: directory.Authoritative},
			{ID: 2, OrgID: 1, DomainName: "relay.contoso.com", DomainType: directory.InternalRelay},
			{ID: 3, OrgID: 2, DomainName: "fabrikam.com", DomainType: directory.Authoritative},
		},
		Connectors: []*directory.InboundConnector{
			{ID: 1, OrgID: 1, Name: "by-ip", ConnectorType: directory.OnPremises, Enabled: true, SenderIPAddresses: pfx("192.0.2.0/28")},
			{ID: 2, OrgID: 1, Name: "wildcard", ConnectorType: directory.OnPremises, Enabled: true, TlsSenderCertificateName: "*.contoso.com", TlsSenderCertificateFingerprints: []string{"aa"}},
			{ID: 3, OrgID: 1, Name: "host", ConnectorType: directory.OnPremises, Enabled: true, TlsSenderCertificateName: "mail.contoso.com", TlsSenderCertificateFingerprints: []string{"bb"}},
			{ID: 4, OrgID: 2, Name: "fab-cert", ConnectorType: directory.OnPremises, Enabled: true, TlsSenderCertificateName: "fabrikam.com", TlsSenderCertificateFingerprints: []string{"cc"}},
			{ID: 5, OrgID: 1, Name: "partner-cert", ConnectorType: directory.Partner, Enabled: true, TlsSenderCertificateName: "partner.example", TlsSenderCertificateFingerprints: []string{"dd"}, SenderDomains: []string{"*"}},
		},
	})
	byIP := ClientFacts{IP: netip.MustParseAddr("192.0.2.3")}
	cert := func(name, fp string) ClientFacts {
		return ClientFacts{IP: netip.MustParseAddr("203.0.113.5"), TLS: true, CertNames: []string{name}, CertFingerprint: fp}
	}
	tests := []struct {
		name      string
		client    ClientFacts
		from      string
		rcpt      string
		org       string // the organization the relayed copy is attributed to
		connector string
		want      *reply.Reply
	}{
		{"IP connector, accepted sender domain", byIP, "scan@contoso.com", "x@outside.example", "contoso", "by-ip", nil},
		{"IP connector, accepted subdomain sender", byIP, "scan@relay.contoso.com", "x@outside.example", "contoso", "by-ip", nil},
		{"IP connector, foreign sender", byIP, "x@outside.example", "y@outside.example", "", "", reply.RelayDeniedATTR36},
		{"IP connector, null sender", byIP, "", "y@outside.example", "", "", reply.RelayDeniedATTR36},
		{"IP connector, another organization's sender", byIP, "a@fabrikam.com", "y@outside.example", "", "", reply.RelayDeniedATTR36},
		{"wildcard certificate of an accepted domain, foreign sender", cert("smtp.contoso.com", "aa"), "x@outside.example", "y@outside.example", "contoso", "wildcard", nil},
		{"wildcard certificate, null sender", cert("smtp.contoso.com", "aa"), "", "y@outside.example", "contoso", "wildcard", nil},
		{"wildcard certificate, another organization's sender", cert("smtp.contoso.com", "aa"), "a@fabrikam.com", "y@outside.example", "contoso", "wildcard", nil},
		{"wildcard certificate, InternalRelay recipient, foreign sender", cert("smtp.contoso.com", "aa"), "x@outside.example", "a@relay.contoso.com", "contoso", "wildcard", nil},
		{"certificate names a host, not an accepted domain: foreign sender refused", cert("mail.contoso.com", "bb"), "x@outside.example", "y@outside.example", "", "", reply.RelayDeniedATTR36},
		{"certificate names a host, accepted sender relays", cert("mail.contoso.com", "bb"), "scan@contoso.com", "y@outside.example", "contoso", "host", nil},
		{"other organization's certificate connector relays for it alone", cert("fabrikam.com", "cc"), "x@outside.example", "y@outside.example", "fabrikam", "fab-cert", nil},
		{"untrusted certificate is no certificate", cert("smtp.contoso.com", "zz"), "x@outside.example", "y@outside.example", "", "", reply.RelayDenied},
		{"Partner certificate connector never relays", cert("partner.example", "dd"), "x@outside.example", "y@outside.example", "", "", reply.RelayDenied},
		{"certificate without TLS does not count", ClientFacts{IP: netip.MustParseAddr("203.0.113.5"), CertNames: []string{"smtp.contoso.com"}, CertFingerprint: "aa"}, "x@outside.example", "y@outside.example", "", "", reply.RelayDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var from address.Address
			if tt.from != "" {
				from, _ = address.Parse(tt.from)
			}
			rcpt, _ := address.Parse(tt.rcpt)
			v, rep := JudgeAnonymous(dir, tt.client, from, rcpt)
			if describe(rep) != describe(tt.want) {
				t.Fatalf("RCPT: %s, want %s", describe(rep), describe(tt.want))
			}
			if rep != nil {
				return
			}
			if v.Route.Destination != Outbound || v.Org == nil || v.Org.Name != tt.org || v.Attribution.Connector == nil || v.Attribution.Connector.Name != tt.connector {
				t.Fatalf("verdict %+v org %+v connector %+v, want outbound for %s via %s", v.Route, v.Org, v.Attribution.Connector, tt.org, tt.connector)
			}
		})
	}
}
