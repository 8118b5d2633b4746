package policy

import (
	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/reply"
)

// Destination says where a recipient's copy goes.
type Destination int

const (
	// Local: into a mailbox Postern hosts.
	Local Destination = iota
	// Outbound: to another server, through the outbound queue.
	Outbound
)

// Route is the verdict for one recipient.
type Route struct {
	Destination Destination
	Mailbox     *directory.Mailbox // for Local
}

// RouteAuthenticated decides where an authenticated submission's recipient
// goes. SMTP AUTH may send to anyone (DESIGN.md, "The three ways in"):
//   - an address of a mailbox (primary or proxy) is delivered locally;
//   - an unknown address in an Authoritative accepted domain is refused at
//     RCPT with 5.1.10 (Exchange's NDR text for it, said at once);
//   - an unknown address in an InternalRelay domain, and any address outside
//     the accepted domains, is routed out.
func RouteAuthenticated(dir *directory.Snapshot, rcpt address.Address) (Route, *reply.Reply) {
	if m := dir.MailboxByAddress(rcpt.Key()); m != nil {
		return Route{Destination: Local, Mailbox: m}, nil
	}
	if d := dir.AcceptedDomain(rcpt.Domain); d != nil && d.DomainType == directory.Authoritative {
		return Route{}, reply.RecipientNotFound(rcpt.String())
	}
	return Route{Destination: Outbound}, nil
}

// RecipientLimit is the most recipients one message of m may have
// (Set-Mailbox -RecipientLimits, 1 to 1000, default 500).
func RecipientLimit(m *directory.Mailbox) int {
	if m.RecipientLimits <= 0 {
		return directory.DefaultRecipientLimits
	}
	return m.RecipientLimits
}

// CheckRecipientCount tells whether a message of m with count recipients
// is over the mailbox's RecipientLimits. As in Exchange, the whole message
// is refused, not the recipients past the limit (reference section 4.1):
// the session keeps accepting RCPT and refuses the message at end of DATA.
func CheckRecipientCount(m *directory.Mailbox, count int) *reply.Reply {
	if limit := RecipientLimit(m); count > limit {
		return reply.RecipientLimitExceeded
	}
	return nil
}

// SendSizeLimit is the largest message m may send (Set-Mailbox -MaxSendSize,
// default 35 MB, never above the 150 MB platform maximum).
func SendSizeLimit(m *directory.Mailbox) int64 {
	if m.MaxSendSize <= 0 || m.MaxSendSize > directory.MaxMessageSize {
		return directory.MaxMessageSize
	}
	return m.MaxSendSize
}

// CheckSize refuses a message (declared at MAIL FROM SIZE=, or measured at
// end of DATA) larger than the sender's MaxSendSize.
func CheckSize(m *directory.Mailbox, size int64) *reply.Reply {
	if limit := SendSizeLimit(m); size > limit {
		return reply.MessageTooLarge(limit)
	}
	return nil
}

// PostmasterAddress is the address RCPT TO:<postmaster> (no domain, which
// RFC 5321 section 4.5.1 requires every server to accept) stands for:
// postmaster at the default accepted domain of the server's first
// organization. It reaches the mailbox holding that address as its primary
// or a proxy address; false when that organization has no domain yet.
func PostmasterAddress(dir *directory.Snapshot) (address.Address, bool) {
	orgs := dir.Organizations()
	if len(orgs) == 0 {
		return address.Address{}, false
	}
	first := orgs[0].ID
	var domain string
	for _, d := range dir.Domains() {
		if d.OrgID != first {
			continue
		}
		if domain == "" || d.Default {
			domain = d.DomainName
		}
		if d.Default {
			break
		}
	}
	if domain == "" {
		return address.Address{}, false
	}
	return address.Address{Local: "postmaster", Domain: domain}, true
}
