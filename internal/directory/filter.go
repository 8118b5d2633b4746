package directory

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Outbound spam policy actions (Set-HostedOutboundSpamFilterPolicy
// -ActionWhenThresholdReached; reference section 4.2).
const (
	// ActionAlert: the admin is told, the sender is not restricted.
	ActionAlert = "Alert"
	// ActionBlockUser: the sender is restricted until an admin releases it
	// (Remove-BlockedSenderAddress).
	ActionBlockUser = "BlockUser"
	// ActionBlockUserForToday: the sender is restricted until the next day
	// in UTC; Exchange's default.
	ActionBlockUserForToday = "BlockUserForToday"
)

// OutboundSpamActions lists the valid -ActionWhenThresholdReached values.
var OutboundSpamActions = []string{ActionAlert, ActionBlockUser, ActionBlockUserForToday}

// MaxOutboundSpamLimit is the largest value of the policy's recipient
// limits (UInt32, 0 to 10000; reference section 4.2).
const MaxOutboundSpamLimit = 10000

// DefaultPolicyName is the identity of an organization's one outbound spam
// and one connection filter policy, as Exchange names its default policies.
const DefaultPolicyName = "Default"

// OutboundSpamFilterPolicy is an organization's HostedOutboundSpamFilterPolicy
// (Default). A limit of 0 means "service defaults are used": no hourly
// limit, and for the day the recipient rate limit of 10,000 that every
// mailbox has anyway (reference sections 4.1 and 4.2).
type OutboundSpamFilterPolicy struct {
	OrgID                         int64
	RecipientLimitExternalPerHour int
	RecipientLimitInternalPerHour int
	RecipientLimitPerDay          int
	ActionWhenThresholdReached    string
	WhenChanged                   time.Time
}

// DefaultOutboundSpamFilterPolicy is the policy an organization has until an
// admin changes it: service defaults and BlockUserForToday (reference 4.2).
func DefaultOutboundSpamFilterPolicy(org int64) *OutboundSpamFilterPolicy {
	return &OutboundSpamFilterPolicy{OrgID: org, ActionWhenThresholdReached: ActionBlockUserForToday}
}

// ConnectionFilterPolicy is an organization's HostedConnectionFilterPolicy
// (Default): source addresses whose anonymous mail to the organization is
// always refused (IPBlockList) or exempt from filtering (IPAllowList). An
// address on both lists is allowed: "The IP Allow List takes precedence
// over the IP Block List" (defender-docs connection-filter-policies-configure.md).
type ConnectionFilterPolicy struct {
	OrgID       int64
	IPAllowList []IPRange
	IPBlockList []IPRange
	WhenChanged time.Time
}

// Allows reports whether ip is on the IP Allow List.
func (p *ConnectionFilterPolicy) Allows(ip netip.Addr) bool { return anyContains(p.IPAllowList, ip) }

// Blocks reports whether ip is on the IP Block List.
func (p *ConnectionFilterPolicy) Blocks(ip netip.Addr) bool { return anyContains(p.IPBlockList, ip) }

func anyContains(list []IPRange, ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, r := range list {
		if r.Contains(ip) {
			return true
		}
	}
	return false
}

// Limits of the connection filter lists. Exchange: "each support a maximum
// of 1273 entries", CIDR "valid network mask values are /24 through /32",
// and "IPv6 ranges aren't supported" (defender-docs
// connection-filter-policies-configure.md). Postern accepts IPv6 beyond
// Exchange, as single addresses or CIDR from /48 (a site) to /128, and caps
// a first-last range at 256 addresses, the size of the widest CIDR allowed.
const (
	MaxConnectionFilterEntries = 1273
	MinIPv4FilterPrefix        = 24
	MinIPv6FilterPrefix        = 48
	MaxFilterRangeAddresses    = 256
)

// IPRange is one entry of a connection filter list: a single address, a
// first-last range, or a CIDR prefix, kept as written (canonical form).
type IPRange struct {
	First, Last netip.Addr
	text        string
}

// String is the entry as Get-HostedConnectionFilterPolicy shows it.
func (r IPRange) String() string { return r.text }

// Contains reports whether ip is in the range (same address family only).
func (r IPRange) Contains(ip netip.Addr) bool {
	if ip.BitLen() != r.First.BitLen() {
		return false
	}
	return r.First.Compare(ip) <= 0 && ip.Compare(r.Last) <= 0
}

// Overlaps reports whether two entries share an address.
func (r IPRange) Overlaps(o IPRange) bool {
	return r.First.BitLen() == o.First.BitLen() && r.First.Compare(o.Last) <= 0 && o.First.Compare(r.Last) <= 0
}

// ParseIPRange reads a connection filter entry: "192.168.1.1",
// "192.168.0.1-192.168.0.254" or "192.168.0.0/25" (a CIDR's host bits are
// cleared, as Exchange stores 192.168.0.1/25 as 192.168.0.0/25), or the
// IPv6 forms Postern accepts beyond Exchange. The error says what is wrong
// in the admin's terms.
func ParseIPRange(s string) (IPRange, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return IPRange{}, errors.New("the entry is empty")
	}
	if len(s) > 100 {
		return IPRange{}, errors.New("the entry is too long to be an address, range or CIDR")
	}
	if first, last, ok := strings.Cut(s, "-"); ok {
		a, err1 := netip.ParseAddr(strings.TrimSpace(first))
		b, err2 := netip.ParseAddr(strings.TrimSpace(last))
		if err1 != nil || err2 != nil || a.Zone() != "" || b.Zone() != "" {
			return IPRange{}, errors.New("a range is two addresses joined by '-', such as 192.168.0.1-192.168.0.254")
		}
		a, b = a.Unmap(), b.Unmap()
		if a.BitLen() != b.BitLen() {
			return IPRange{}, errors.New("both ends of a range must be IPv4, or both IPv6")
		}
		if b.Less(a) {
			return IPRange{}, errors.New("the range's first address is after its last")
		}
		if n := rangeSize(a, b); n > MaxFilterRangeAddresses {
			return IPRange{}, fmt.Errorf("a range may hold at most %d addresses (a /24); split it or use CIDR entries", MaxFilterRangeAddresses)
		}
		return IPRange{First: a, Last: b, text: a.String() + "-" + b.String()}, nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return IPRange{}, errors.New("a CIDR entry is an address and a prefix length, such as 192.168.0.0/24")
		}
		if p.Addr().Is4In6() {
			return IPRange{}, errors.New("write an IPv4 CIDR entry in IPv4 form, such as 192.168.0.0/24")
		}
		minBits := MinIPv4FilterPrefix
		if p.Addr().Is6() {
			minBits = MinIPv6FilterPrefix
		}
		if p.Bits() < minBits {
			return IPRange{}, fmt.Errorf("the prefix length must be /%d through /%d", minBits, p.Addr().BitLen())
		}
		p = p.Masked()
		return IPRange{First: p.Addr(), Last: lastOf(p), text: p.String()}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return IPRange{}, errors.New("give a single IP address, a range (first-last) or a CIDR IP")
	}
	a = a.Unmap()
	return IPRange{First: a, Last: a, text: a.String()}, nil
}

// rangeSize is the number of addresses from a to b, saturated just past
// MaxFilterRangeAddresses (only whether it exceeds that matters).
func rangeSize(a, b netip.Addr) int {
	n := 1
	for x := a; x.Less(b) && n <= MaxFilterRangeAddresses; x = x.Next() {
		n++
	}
	return n
}

// lastOf is the last address of a prefix.
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// RestrictedSender is a mailbox on the restricted entities list: the
// outbound spam policy blocked it (Get-BlockedSenderAddress). Every later
// submission gets 550 5.1.8 while it is in force.
type RestrictedSender struct {
	ID            int64
	OrgID         int64
	MailboxID     int64
	SenderAddress string
	// Reason names the limit that was exceeded, with the counts.
	Reason string
	// Action is BlockUser or BlockUserForToday.
	Action    string
	CreatedAt time.Time
	// ExpiresAt ends a BlockUserForToday restriction (the next UTC
	// midnight); zero for BlockUser, which lasts until released.
	ExpiresAt time.Time
	// ReleasedAt is when an admin removed it (Remove-BlockedSenderAddress);
	// zero while it is in force.
	ReleasedAt time.Time
}

// Blocking reports whether the restriction is in force at now.
func (r *RestrictedSender) Blocking(now time.Time) bool {
	return r != nil && r.ReleasedAt.IsZero() && (r.ExpiresAt.IsZero() || now.Before(r.ExpiresAt))
}

// ReleasedToday reports whether an admin released the sender on now's UTC
// day: Exchange does not restrict a released user again "for that day"
// (reference 4.2).
func (r *RestrictedSender) ReleasedToday(now time.Time) bool {
	return r != nil && !r.ReleasedAt.IsZero() && sameUTCDay(r.ReleasedAt, now)
}

func sameUTCDay(a, b time.Time) bool {
	ay, am, ad := a.UTC().Date()
	by, bm, bd := b.UTC().Date()
	return ay == by && am == bm && ad == bd
}

// NextUTCDay is the midnight (UTC) that ends now's day: when a
// BlockUserForToday restriction ends ("until the following day, based on
// UTC time", reference 4.4).
func NextUTCDay(now time.Time) time.Time {
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}

// filterIndex finds an organization's filter policies and a mailbox's
// restriction with a map lookup.
type filterIndex struct {
	outbound   map[int64]*OutboundSpamFilterPolicy
	connection map[int64]*ConnectionFilterPolicy
	restricted map[int64]*RestrictedSender // by mailbox
}

func newFilterIndex(c Contents) filterIndex {
	x := filterIndex{
		outbound:   make(map[int64]*OutboundSpamFilterPolicy, len(c.OutboundSpamPolicies)),
		connection: make(map[int64]*ConnectionFilterPolicy, len(c.ConnectionFilters)),
		restricted: make(map[int64]*RestrictedSender, len(c.RestrictedSenders)),
	}
	for _, p := range c.OutboundSpamPolicies {
		x.outbound[p.OrgID] = p
	}
	for _, p := range c.ConnectionFilters {
		x.connection[p.OrgID] = p
	}
	for _, r := range c.RestrictedSenders {
		x.restricted[r.MailboxID] = r
	}
	return x
}

// OutboundSpamFilterPolicy returns org's policy; the default one when the
// admin never changed it.
func (s *Snapshot) OutboundSpamFilterPolicy(org int64) *OutboundSpamFilterPolicy {
	if p := s.filters.outbound[org]; p != nil {
		return p
	}
	return DefaultOutboundSpamFilterPolicy(org)
}

// ConnectionFilterPolicy returns org's policy; an empty one when the admin
// never changed it.
func (s *Snapshot) ConnectionFilterPolicy(org int64) *ConnectionFilterPolicy {
	if p := s.filters.connection[org]; p != nil {
		return p
	}
	return &ConnectionFilterPolicy{OrgID: org}
}

// RestrictedSender returns the mailbox's restriction record (in force,
// expired or released), or nil.
func (s *Snapshot) RestrictedSender(mailbox int64) *RestrictedSender {
	if s.ov != nil {
		if r := s.ov.restrictedByMailbox[mailbox]; r != nil {
			return r
		}
		if r := s.filters.restricted[mailbox]; r != nil {
			if _, changed := s.ov.restricted[r.ID]; changed {
				return nil
			}
			return r
		}
		return nil
	}
	return s.filters.restricted[mailbox]
}
