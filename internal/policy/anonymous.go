package policy

import (
	"net/netip"
	"slices"

	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/reply"
)

// ClientFacts say how an anonymous client connected.
type ClientFacts struct {
	IP  netip.Addr
	TLS bool
	// CertNames are the CN and DNS SANs of the client certificate, if one
	// was presented; CertVerified says whether it chains to a CA the admin
	// configured; CertFingerprint is the SHA-256 of its public key (hex).
	CertNames       []string
	CertVerified    bool
	CertFingerprint string
}

// Attribution is the inbound connector an anonymous client matched, if any.
type Attribution struct {
	Connector     *directory.InboundConnector
	ByCertificate bool
}

// Attribute finds the enabled inbound connector a client matches. The
// certificate comes first, then the IP address — Exchange's attribution
// order for connectors (reference section 7.2). A certificate counts only
// when it is trusted: chained to a configured CA, or pinned on the connector.
func Attribute(dir *directory.Snapshot, c ClientFacts) Attribution {
	for _, ic := range dir.InboundConnectors() {
		trusted := c.CertVerified || (c.CertFingerprint != "" && slices.Contains(ic.TlsSenderCertificateFingerprints, c.CertFingerprint))
		if c.TLS && trusted && ic.MatchesCertificate(c.CertNames) {
			return Attribution{Connector: ic, ByCertificate: true}
		}
	}
	for _, ic := range dir.InboundConnectors() {
		if ic.MatchesIP(c.IP) {
			return Attribution{Connector: ic}
		}
	}
	return Attribution{}
}

// CheckAnonymousSender decides MAIL FROM for an anonymous client.
func CheckAnonymousSender(dir *directory.Snapshot, att Attribution, c ClientFacts, from address.Address) *reply.Reply {
	if ic := att.Connector; ic != nil && ic.RequireTls && !c.TLS {
		return reply.TLSRequired
	}
	if from.IsZero() {
		return nil
	}
	// RejectDirectSend: mail claiming one of the organization's accepted
	// domains must come through a connector (reference section 6; only the
	// envelope sender is checked, as in Exchange).
	if d := dir.AcceptedDomain(from.Domain); d != nil && att.Connector == nil {
		if o := dir.Organization(d.OrgID); o != nil && o.RejectDirectSend {
			return reply.DirectSendRejected
		}
	}
	// A Partner connector may reserve its sender domains to its own
	// addresses or certificate (RestrictDomainsTo*).
	for _, ic := range dir.InboundConnectors() {
		if ic.ConnectorType != directory.Partner || ic == att.Connector || !ic.MatchesSenderDomain(from.Domain) {
			continue
		}
		if ic.RestrictDomainsToIPAddresses && !ic.MatchesIP(c.IP) {
			return reply.PartnerConnectorMismatch
		}
		if ic.RestrictDomainsToCertificate && !(att.ByCertificate && att.Connector == ic) {
			return reply.PartnerConnectorMismatch
		}
	}
	return nil
}

// RouteAnonymous decides where an anonymous session's recipient goes:
//   - a mailbox of an organization: delivered (Direct Send, or inbound mail);
//   - an unknown address in an Authoritative accepted domain: 5.1.10;
//   - anything else only through an OnPremises connector, and then only for
//     senders in the connector organization's accepted domains (ATTR36
//     otherwise). Exchange also lets a certificate connector whose name is
//     an accepted domain relay for any sender (reference 7.1); Postern's
//     specification (issue 3) does not, which closes that path for abuse.
//     Otherwise 5.7.64: Postern is never an open relay.
func RouteAnonymous(dir *directory.Snapshot, att Attribution, from, rcpt address.Address) (Route, *reply.Reply) {
	if m := dir.MailboxByAddress(rcpt.Key()); m != nil {
		return Route{Destination: Local, Mailbox: m}, nil
	}
	if d := dir.AcceptedDomain(rcpt.Domain); d != nil && d.DomainType == directory.Authoritative {
		return Route{}, reply.RecipientNotFound(rcpt.String())
	}
	ic := att.Connector
	if ic == nil || ic.ConnectorType != directory.OnPremises {
		return Route{}, reply.RelayDenied
	}
	if d := dir.AcceptedDomain(from.Domain); from.IsZero() || d == nil || d.OrgID != ic.OrgID {
		return Route{}, reply.RelayDeniedATTR36
	}
	return Route{Destination: Outbound}, nil
}

// Organization is the organization anonymous mail is attributed to, in
// Exchange's order (reference section 7.2): the matched connector's, else
// the one whose accepted domain the envelope sender uses, else the first
// local recipient's.
func Organization(dir *directory.Snapshot, att Attribution, from address.Address, local []*directory.Mailbox) *directory.Organization {
	if att.Connector != nil {
		return dir.Organization(att.Connector.OrgID)
	}
	if d := dir.AcceptedDomain(from.Domain); d != nil && !from.IsZero() {
		return dir.Organization(d.OrgID)
	}
	for _, m := range local {
		return dir.Organization(m.OrgID)
	}
	return nil
}
