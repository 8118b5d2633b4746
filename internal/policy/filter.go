package policy

import (
	"fmt"
	"net/netip"
	"time"

	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/reply"
)

// CheckRestricted refuses a submission from a mailbox the outbound spam
// policy restricted: 550 5.1.8 "Access denied, bad outbound sender" while
// the restriction is in force (reference sections 3 and 4.4). The session
// asks at MAIL FROM, where the sender is first known, and again at end of
// DATA, in case another connection's message restricted it meanwhile.
func CheckRestricted(r *directory.RestrictedSender, now time.Time) *reply.Reply {
	if r.Blocking(now) {
		return reply.BadOutboundSender
	}
	return nil
}

// RecipientUsage is what a mailbox sent before the message being judged:
// recipients inside and outside its organization in the last hour, and
// all of them in the last 24 hours.
type RecipientUsage struct {
	InternalLastHour, ExternalLastHour, LastDay int
}

// RecipientCounts are the message's recipients inside and outside the
// sender's organization.
type RecipientCounts struct{ Internal, External int }

// OutboundSpamVerdict is the outbound spam policy's decision on one
// submission.
type OutboundSpamVerdict struct {
	// Limit names the policy limit the message takes the sender past
	// (RecipientLimitExternalPerHour, RecipientLimitInternalPerHour,
	// RecipientLimitPerDay); empty when it stays within them. Max is that
	// limit and Count the sender's count with this message.
	Limit      string
	Max, Count int
	// Action is the policy's ActionWhenThresholdReached.
	Action string
	// Block: refuse the message with 550 5.1.8 and restrict the sender,
	// until Until (BlockUserForToday) or until released (zero Until).
	Block bool
	Until time.Time
	// Alert: accept the message and tell the admin (log, metric, trace
	// event). Given once, to the message that crosses the limit.
	Alert bool
}

// Reason describes the exceeded limit for the restricted entities list and
// the message trace.
func (v OutboundSpamVerdict) Reason() string {
	if v.Limit == "" {
		return ""
	}
	return fmt.Sprintf("%s of %d exceeded (%d recipients); ActionWhenThresholdReached %s", v.Limit, v.Max, v.Count, v.Action)
}

// JudgeOutboundSpam applies an organization's outbound spam policy to an
// authenticated submission (reference section 4.2). The limits are checked
// in the order Exchange lists them: external recipients per hour, internal
// recipients per hour, recipients per day; a limit of 0 is the service
// default, which the policy does not enforce itself (the day's default is
// the recipient rate limit of 10,000, refused with 554 5.2.0 before this).
//
// A message that would take a count past its limit is over it. With
// BlockUser or BlockUserForToday that message is refused and the sender
// restricted; with Alert it is accepted, and the admin alerted once, by
// the message that crosses the limit. A sender an admin released today is
// not restricted again that day ("After an admin removes the user from the
// list, the user won't be restricted again for that day"): it is treated as
// Alert.
func JudgeOutboundSpam(p *directory.OutboundSpamFilterPolicy, used RecipientUsage, msg RecipientCounts, releasedToday bool, now time.Time) OutboundSpamVerdict {
	v := OutboundSpamVerdict{Action: p.ActionWhenThresholdReached}
	checks := []struct {
		name        string
		limit, used int
		n           int
	}{
		{"RecipientLimitExternalPerHour", p.RecipientLimitExternalPerHour, used.ExternalLastHour, msg.External},
		{"RecipientLimitInternalPerHour", p.RecipientLimitInternalPerHour, used.InternalLastHour, msg.Internal},
		{"RecipientLimitPerDay", p.RecipientLimitPerDay, used.LastDay, msg.Internal + msg.External},
	}
	for _, c := range checks {
		if c.limit <= 0 || c.n == 0 || c.used+c.n <= c.limit {
			continue
		}
		v.Limit, v.Max, v.Count = c.name, c.limit, c.used+c.n
		block := v.Action == directory.ActionBlockUser || v.Action == directory.ActionBlockUserForToday
		switch {
		case block && !releasedToday:
			v.Block = true
			if v.Action == directory.ActionBlockUserForToday {
				v.Until = directory.NextUTCDay(now)
			}
		case c.used <= c.limit:
			v.Alert = true
		default:
			// Already past the limit and alerted: nothing new to say.
			v = OutboundSpamVerdict{Action: p.ActionWhenThresholdReached}
			continue
		}
		return v
	}
	return v
}

// CountRecipients splits a submission's recipients into those of the
// sender's organization (its mailboxes and accepted domains) and the rest,
// for the outbound spam policy's hourly limits.
func CountRecipients(dir *directory.Snapshot, org int64, rcpts []address.Address) RecipientCounts {
	var c RecipientCounts
	for _, a := range rcpts {
		if o := RecipientOrganization(dir, a); o != nil && o.ID == org {
			c.Internal++
		} else {
			c.External++
		}
	}
	return c
}

// ConnectionFilter applies the connection filter policy of the
// organization an anonymous recipient was attributed to (the recipient's,
// or the relaying connector's). The connection has no organization until a
// recipient names one, so the decision is made per recipient, at RCPT TO,
// the stage where Exchange answers 5.7.606: an address on that
// organization's IP Block List is refused for its recipients, never for
// another organization's. An address on its IP Allow List is never refused
// by the block list ("The IP Allow List takes precedence") and skips the
// filtering after it (source throttling) — but not attribution: it still
// reaches only what its connector or Direct Send may reach.
func ConnectionFilter(dir *directory.Snapshot, org *directory.Organization, ip netip.Addr) (allowListed bool, rep *reply.Reply) {
	if org == nil {
		return false, nil
	}
	p := dir.ConnectionFilterPolicy(org.ID)
	if p.Allows(ip) {
		return true, nil
	}
	if p.Blocks(ip) {
		return false, reply.BannedSendingIP(ip)
	}
	return false, nil
}

// SourceClass is the kind of anonymous mail source throttling counts.
type SourceClass int

const (
	// Unthrottled: ordinary inbound mail (a sender outside the
	// organization's accepted domains, reference section 6), or a source
	// on the organization's IP Allow List.
	Unthrottled SourceClass = iota
	// DirectSend: unattributed anonymous mail from the organization's own
	// accepted domains to its mailboxes.
	DirectSend
	// ConnectorRelay: mail admitted by an inbound connector.
	ConnectorRelay
)

func (c SourceClass) String() string {
	return [...]string{"none", "direct_send", "relay"}[c]
}

// SourceClassOf classifies an accepted anonymous recipient for source
// throttling.
func SourceClassOf(dir *directory.Snapshot, v Verdict, from address.Address) SourceClass {
	if v.Attribution.Connector != nil {
		return ConnectorRelay
	}
	if v.Org != nil {
		if s := SenderOrganization(dir, from); s != nil && s.ID == v.Org.ID {
			return DirectSend
		}
	}
	return Unthrottled
}

// SourceLimits are the messages per hour one source address (an IPv6
// client's /64) may send as Direct Send and as connector relay; 0 or less
// is unlimited.
type SourceLimits struct {
	DirectSendPerHour int
	RelayPerHour      int
}

// CheckSourceRate refuses a recipient of a source that already sent its
// hour's share of messages of that class: 451 4.7.500, temporary.
func CheckSourceRate(class SourceClass, sent int, l SourceLimits) *reply.Reply {
	limit := 0
	switch class {
	case DirectSend:
		limit = l.DirectSendPerHour
	case ConnectorRelay:
		limit = l.RelayPerHour
	}
	if limit > 0 && sent >= limit {
		return reply.SourceThrottled
	}
	return nil
}
