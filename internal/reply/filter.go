package reply

import (
	"fmt"
	"net/netip"
)

// Outbound spam policy, connection filtering and source throttling
// (reference sections 3, 4.2 and 4.4; issue 15).
var (
	// BadOutboundSender: the authenticated sender is on the restricted
	// entities list, blocked by the organization's outbound spam policy
	// (Set-HostedOutboundSpamFilterPolicy -ActionWhenThresholdReached
	// BlockUser or BlockUserForToday). Exchange's NDR table text; it
	// answers every submission until the restriction ends or an admin
	// runs Remove-BlockedSenderAddress.
	BadOutboundSender = r(550, 5, 1, 8, "Access denied, bad outbound sender")
	// SourceThrottled: the client's address sent more Direct Send or
	// connector relay mail in the last hour than the server allows
	// ([throttle] in the configuration file). Exchange's throttling reply
	// for a sending pattern it limits, 451 4.7.500-699 "Access denied,
	// please try again later" (reference section 3): temporary, so a
	// well-behaved sender retries later.
	SourceThrottled = r(451, 4, 7, 500, "Access denied, please try again later")
)

// BannedSendingIP: the client's address is on the IP Block List of the
// organization the recipient belongs to (Set-HostedConnectionFilterPolicy
// -IPBlockList). Exchange's 5.7.606-649 "banned sending IP" refusal, given
// at RCPT TO ("550 5.7.606 Access denied, banned sending IP [192.0.2.45].",
// seen on the wire in reply to RCPT TO). Exchange follows it with a pointer
// to Microsoft's delisting portal (sender.office.com), which cannot remove
// an address from an organization's own list, so Postern leaves it out.
func BannedSendingIP(ip netip.Addr) *Reply {
	return r(550, 5, 7, 606, fmt.Sprintf("Access denied, banned sending IP [%s]", ip.Unmap()))
}
