package policy

import (
	"net/netip"
	"slices"
	"strings"

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

// Attribute finds the enabled inbound connector of organization org that a
// client matches. Only that organization's connectors are consulted: every
// organization is a wall, and a connector one organization creates must
// never change how mail for another is judged (issue 11; Exchange attributes
// inbound mail to the recipient's tenant and applies only its connectors).
//
// The certificate comes first, then the IP address — Exchange's attribution
// order for connectors (reference section 7.2). A certificate counts only
// when it is trusted: chained to a configured CA, or pinned on the connector.
func Attribute(dir *directory.Snapshot, org int64, c ClientFacts) Attribution {
	return attribute(dir, c, func(ic *directory.InboundConnector) bool { return ic.OrgID == org })
}

// attributeAny is Attribute over every organization's connectors; it only
// tells "some connector matched" (ATTR36) from "none did" (5.7.64).
func attributeAny(dir *directory.Snapshot, c ClientFacts) Attribution {
	return attribute(dir, c, func(*directory.InboundConnector) bool { return true })
}

func attribute(dir *directory.Snapshot, c ClientFacts, consider func(*directory.InboundConnector) bool) Attribution {
	for _, ic := range dir.InboundConnectors() {
		if !consider(ic) {
			continue
		}
		trusted := c.CertVerified || (c.CertFingerprint != "" && slices.Contains(ic.TlsSenderCertificateFingerprints, c.CertFingerprint))
		if c.TLS && trusted && ic.MatchesCertificate(c.CertNames) {
			return Attribution{Connector: ic, ByCertificate: true}
		}
	}
	for _, ic := range dir.InboundConnectors() {
		if consider(ic) && ic.MatchesIP(c.IP) {
			return Attribution{Connector: ic}
		}
	}
	return Attribution{}
}

// SenderOrganization is the organization whose accepted domain the envelope
// sender uses, or nil (null sender, or a domain no organization accepts).
func SenderOrganization(dir *directory.Snapshot, from address.Address) *directory.Organization {
	if from.IsZero() {
		return nil
	}
	if d := dir.AcceptedDomain(from.Domain); d != nil {
		return dir.Organization(d.OrgID)
	}
	return nil
}

// RecipientOrganization is the organization a recipient belongs to: the
// organization of the mailbox holding the address, else the one whose
// accepted domain it is; nil for an address outside every organization.
func RecipientOrganization(dir *directory.Snapshot, rcpt address.Address) *directory.Organization {
	if m := dir.MailboxByAddress(rcpt.Key()); m != nil {
		return dir.Organization(m.OrgID)
	}
	if d := dir.AcceptedDomain(rcpt.Domain); d != nil {
		return dir.Organization(d.OrgID)
	}
	return nil
}

// CheckAnonymousSender decides MAIL FROM for an anonymous client. Before
// any RCPT TO no recipient organization is known, so the only decision made
// here is the sender organization's own: when the envelope sender is in an
// organization's accepted domain and the client matches that organization's
// connector with RequireTls, the client must use STARTTLS first (reference
// 7.2 attributes connector mail by the certificate, then the MAIL FROM
// domain). Everything that depends on the recipient's organization
// (RejectDirectSend, Partner restrictions, relay) is decided per recipient
// by JudgeAnonymous.
func CheckAnonymousSender(dir *directory.Snapshot, c ClientFacts, from address.Address) *reply.Reply {
	_, rep := JudgeAnonymousSender(dir, c, from)
	return rep
}

// JudgeAnonymousSender is CheckAnonymousSender that also returns the
// connector of the sender's organization the client matched, if any, so
// that a refusal can be told apart as made under that connector (protocol
// logging per connector).
func JudgeAnonymousSender(dir *directory.Snapshot, c ClientFacts, from address.Address) (Attribution, *reply.Reply) {
	if org := SenderOrganization(dir, from); org != nil {
		att := Attribute(dir, org.ID, c)
		if ic := att.Connector; ic != nil && ic.RequireTls && !c.TLS {
			return att, reply.TLSRequired
		}
		return att, nil
	}
	return Attribution{}, nil
}

// Verdict is the decision for one anonymous recipient: where its copy goes,
// which organization it belongs to (whose message trace, settings and
// filing apply), and the connector of that organization the client matched.
// A relay refused with ATTR36 has the connector that matched and no
// organization.
type Verdict struct {
	Route       Route
	Org         *directory.Organization
	Attribution Attribution
}

// JudgeAnonymous decides an anonymous session's recipient (RCPT TO).
//
// A recipient of an organization is inbound mail attributed to that
// organization (Exchange's tenant attribution, reference 7.2), judged only
// by its settings and its connectors, in this order:
//   - its matched connector with RequireTls and no STARTTLS: 530 5.7.0;
//   - RejectDirectSend: a sender in the organization's own accepted domains
//     from a client matching none of its connectors: 550 5.7.68 (a sender in
//     another domain is ordinary inbound mail, reference section 6);
//   - its Partner connectors with RestrictDomainsTo* covering the sender's
//     domain, when the client is not their source: 550 5.7.51;
//   - a mailbox: delivered; an unknown address of an Authoritative domain:
//     5.1.10; an unknown address of an InternalRelay domain: relayed out only
//     as below, through this organization's OnPremises connector.
//
// A recipient outside every organization is relay, allowed through an
// OnPremises connector when either of Exchange's ATTR36 conditions holds
// (reference 7.1, SA connectors/office-365-notice.md):
//   - the sender's domain is an accepted domain of the connector's
//     organization, the client matching that organization's connector by
//     address or certificate; or
//   - the client matched the connector by a trusted certificate and the
//     connector's TlsSenderCertificateName is one of its organization's
//     accepted domains ("*.contoso.com" names contoso.com): then any sender
//     domain may relay, since the certificate, not the sender, proves whose
//     server it is.
//
// The relayed copy is attributed to the connector's organization. A client
// that matches some OnPremises connector but meets neither condition gets
// ATTR36; one matching none gets 5.7.64. Postern is never an open relay.
func JudgeAnonymous(dir *directory.Snapshot, c ClientFacts, from, rcpt address.Address) (Verdict, *reply.Reply) {
	org := RecipientOrganization(dir, rcpt)
	if org == nil {
		return judgeRelay(dir, c, from)
	}
	att, rep := CheckAnonymousInbound(dir, org, c, from)
	v := Verdict{Org: org, Attribution: att}
	if rep != nil {
		return v, rep
	}
	sender := SenderOrganization(dir, from)
	ownSender := sender != nil && sender.ID == org.ID
	if m := dir.MailboxByAddress(rcpt.Key()); m != nil {
		v.Route = Route{Destination: Local, Mailbox: m}
		return v, nil
	}
	if d := dir.AcceptedDomain(rcpt.Domain); d != nil && d.DomainType == directory.Authoritative {
		// Directory-based edge blocking (reference section 3, 5.4.1).
		return v, reply.RecipientAccessDenied
	}
	if ic := att.Connector; ic == nil || ic.ConnectorType != directory.OnPremises {
		return v, reply.RelayDenied
	}
	if !ownSender && !CertificateRelay(dir, att) {
		return v, reply.RelayDeniedATTR36
	}
	v.Route = Route{Destination: Outbound}
	return v, nil
}

// CheckAnonymousInbound makes the decisions organization org takes about
// anonymous mail to its recipients, whoever they are: its connector the
// client matches, RequireTls, RejectDirectSend and its Partner connectors'
// restrictions (see JudgeAnonymous). It returns the attribution.
func CheckAnonymousInbound(dir *directory.Snapshot, org *directory.Organization, c ClientFacts, from address.Address) (Attribution, *reply.Reply) {
	att := Attribute(dir, org.ID, c)
	if ic := att.Connector; ic != nil && ic.RequireTls && !c.TLS {
		return att, reply.TLSRequired
	}
	sender := SenderOrganization(dir, from)
	if sender != nil && sender.ID == org.ID && att.Connector == nil && org.RejectDirectSend {
		return att, reply.DirectSendRejected
	}
	return att, checkPartnerConnectors(dir, org.ID, att, c, from)
}

// judgeRelay decides a recipient outside every organization.
func judgeRelay(dir *directory.Snapshot, c ClientFacts, from address.Address) (Verdict, *reply.Reply) {
	if org := SenderOrganization(dir, from); org != nil {
		att := Attribute(dir, org.ID, c)
		if ic := att.Connector; ic != nil && ic.ConnectorType == directory.OnPremises {
			v := Verdict{Org: org, Attribution: att, Route: Route{Destination: Outbound}}
			if ic.RequireTls && !c.TLS {
				return v, reply.TLSRequired
			}
			return v, nil
		}
	}
	att := attributeAny(dir, c)
	if CertificateRelay(dir, att) {
		// ATTR36's second condition: any sender, through the connector of
		// the organization whose accepted domain the certificate names.
		v := Verdict{Org: dir.Organization(att.Connector.OrgID), Attribution: att, Route: Route{Destination: Outbound}}
		if v.Org != nil {
			return v, nil
		}
	}
	if att.Connector != nil && att.Connector.ConnectorType == directory.OnPremises {
		// The refusal is made under that connector (ATTR36 says the
		// connector matched but the sender is not its organization's);
		// the verdict names no organization.
		return Verdict{Attribution: att}, reply.RelayDeniedATTR36
	}
	return Verdict{}, reply.RelayDenied
}

// CertificateRelay reports whether an attribution is ATTR36's certificate
// condition: an OnPremises connector matched by a trusted client
// certificate, whose TlsSenderCertificateName ("contoso.com" or
// "*.contoso.com") is an accepted domain of the connector's own
// organization. Such a connector may relay for any sender domain
// (reference 7.1). A name that is only a host of an accepted domain
// ("mail.contoso.com") does not count, as in Exchange, which asks for
// "*.contoso.com" for that reason (seed 002).
func CertificateRelay(dir *directory.Snapshot, att Attribution) bool {
	ic := att.Connector
	if ic == nil || !att.ByCertificate || ic.ConnectorType != directory.OnPremises {
		return false
	}
	name := strings.TrimSuffix(strings.ToLower(strings.TrimPrefix(ic.TlsSenderCertificateName, "*.")), ".")
	d := dir.AcceptedDomain(name)
	return d != nil && d.OrgID == ic.OrgID
}

// checkPartnerConnectors applies the organization's Partner connectors that
// reserve their sender domains to their own addresses or certificate
// (RestrictDomainsToIPAddresses, RestrictDomainsToCertificate).
func checkPartnerConnectors(dir *directory.Snapshot, org int64, att Attribution, c ClientFacts, from address.Address) *reply.Reply {
	if from.IsZero() {
		return nil
	}
	for _, ic := range dir.InboundConnectors() {
		if ic.OrgID != org || ic.ConnectorType != directory.Partner || ic == att.Connector || !ic.MatchesSenderDomain(from.Domain) {
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

// EnvelopeRecipientLimit is the most recipients one anonymous message may
// have for org (Set-TransportConfig -MaxRecipientEnvelopeLimit). Exchange
// Online's default is Unlimited, "which means the organizational limit of
// 1000 is used"; a custom value is 1 to 1000 (reference section 4.1).
func EnvelopeRecipientLimit(org *directory.Organization) int {
	if org == nil || org.MaxRecipientEnvelopeLimit <= 0 || org.MaxRecipientEnvelopeLimit > directory.MaxRecipientLimits {
		return directory.MaxRecipientLimits
	}
	return org.MaxRecipientEnvelopeLimit
}

// CheckEnvelopeRecipients tells whether an anonymous message with count
// recipients of org is over org's MaxRecipientEnvelopeLimit. Exchange
// refuses the whole message then, not the recipients past the limit
// (reference section 4.1): the session keeps accepting RCPT and refuses the
// message at end of DATA with this reply.
func CheckEnvelopeRecipients(org *directory.Organization, count int) *reply.Reply {
	if limit := EnvelopeRecipientLimit(org); count > limit {
		return reply.RecipientLimitExceeded
	}
	return nil
}

// ReceiveSizeLimit is the largest message m may receive (Set-Mailbox
// -MaxReceiveSize, default 36 MB, never above the 150 MB platform maximum).
func ReceiveSizeLimit(m *directory.Mailbox) int64 {
	if m.MaxReceiveSize <= 0 || m.MaxReceiveSize > directory.MaxMessageSize {
		return directory.MaxMessageSize
	}
	return m.MaxReceiveSize
}

// CheckReceiveSize refuses an anonymous message (size declared at MAIL FROM
// SIZE=, RFC 1870, or measured at end of DATA) larger than the recipient
// mailbox's MaxReceiveSize, with 552 5.3.4.
func CheckReceiveSize(m *directory.Mailbox, size int64) *reply.Reply {
	if limit := ReceiveSizeLimit(m); size > limit {
		return reply.RecipientMessageTooLarge(limit)
	}
	return nil
}
