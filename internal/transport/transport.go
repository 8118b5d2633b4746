// Package transport turns an accepted SMTP transaction into durable delivery
// work: it adds the trace and identification headers an MSA owes the message
// (RFC 5321 section 4.4, RFC 6409 section 8), applies the per-mailbox
// recipient quota and message pacing, and commits the message with its Sent
// Items copy, its local deliveries and its outbound queue items in one
// durable write, before the client hears "250".
package transport

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/limits"
	"postern.dev/postern/internal/metrics"
	"postern.dev/postern/internal/policy"
	"postern.dev/postern/internal/reply"
	"postern.dev/postern/internal/store"
)

// Submitter commits accepted messages.
type Submitter struct {
	Store    store.Store
	Hostname string
	// Recipients is the rolling 24-hour recipient counter (10,000 per
	// mailbox), whose last hour the outbound spam policy also reads.
	Recipients *limits.RecipientWindow
	// Restrict puts a sender on the restricted entities list when the
	// outbound spam policy blocks it (durably, with an audit entry); nil
	// refuses the message without recording the restriction.
	Restrict func(ctx context.Context, r *directory.RestrictedSender) error
	// Pacer releases a mailbox's messages at no more than 30 per minute.
	Pacer *limits.Pacer
	// Limits, when set, counts instead of Recipients and Pacer: the
	// store's counters in the database when several nodes share it.
	Limits limits.Sending
	Log    *slog.Logger
	Now    func() time.Time
	// Queued, when set, is told that outbound work was committed, so the
	// delivery workers start on it without waiting for their next poll.
	Queued func()
	// SpoolDir holds messages over SpoolThreshold while they are read
	// (DATA/spool); it must be on the same file system as the store's
	// bodies, so that a commit links the spooled file instead of copying it.
	SpoolDir string
}

// Recipient is an accepted RCPT TO with its routing verdict.
type Recipient struct {
	Address address.Address
	Route   policy.Route
}

// Submission is one transaction as the SMTP session saw it.
type Submission struct {
	Org         *directory.Organization
	AuthMailbox *directory.Mailbox // nil for anonymous mail
	From        address.Address    // zero for the null reverse-path
	Recipients  []Recipient
	Message     *Message
	ClientIP    string
	Helo        string
	// SessionID is the SMTP connection's session ID: in the Received
	// field's "id" clause, the log and the message trace, so that a trace
	// entry leads to the session's log lines and back.
	SessionID string
	TLS       *tls.ConnectionState
	// InboundConnector names the connector that admitted anonymous mail.
	InboundConnector string
	// AuthenticationResults is the complete Authentication-Results header
	// line (RFC 8601) for anonymous mail checked with SPF, DKIM and DMARC.
	AuthenticationResults string
	// Junk files local copies in Junk Email instead of the Inbox.
	Junk bool
	// AuthProtocol ("Basic" or "OAuth") and TLSVersion of an authenticated
	// submission, for the SMTP AUTH clients report.
	AuthProtocol, TLSVersion string
	// For an authenticated submission: its recipients inside and outside
	// the organization, the organization's outbound spam policy (nil: the
	// default), and the mailbox's restriction record, if any.
	Counts      policy.RecipientCounts
	SpamPolicy  *directory.OutboundSpamFilterPolicy
	Restriction *directory.RestrictedSender
	// Arrival is the message's count among those being received
	// (Submitter.Arriving); the store ends it when the message reaches
	// its group committer.
	Arrival *store.Arrival
}

// Arriving counts a message whose transfer (DATA, BDAT) begins among
// those the store's group committer waits for (store.Arrivals). The
// caller passes it in Submission.Arrival and calls its Arrived when the
// transfer ends without a commit (refused, abandoned): a count left open
// would make every commit group wait its longest.
func (s *Submitter) Arriving() *store.Arrival {
	if s.Store == nil {
		return nil
	}
	return s.Store.Arrivals().Begin()
}

// Submit adds headers, applies the quota and pacing, and commits. It
// returns the reply for the end of DATA: Accepted on success.
func (s *Submitter) Submit(ctx context.Context, in *Submission) *reply.Reply {
	now := s.Now()
	head, messageID := s.finishHeaders(in, now)

	releaseAt := now
	var reservation limits.Reservation
	var alert policy.OutboundSpamVerdict
	n := limits.Count{Internal: in.Counts.Internal, External: in.Counts.External}
	if mb := in.AuthMailbox; mb != nil {
		if rep := policy.CheckRestricted(in.Restriction, now); rep != nil {
			return rep
		}
		var rrl bool
		var spam policy.OutboundSpamVerdict
		pol := in.SpamPolicy
		if pol == nil {
			pol = directory.DefaultOutboundSpamFilterPolicy(in.Org.ID)
		}
		// The recipient rate limit and the outbound spam policy are judged
		// on the same counts, in one step with recording them, so that
		// concurrent submissions cannot both slip under a limit.
		res, err := s.sending().Reserve(ctx, mb.ID, n, now, func(u limits.Usage) bool {
			// The recipient rate limit counts envelope recipients; the
			// message is refused outright when it would take the mailbox
			// past 10,000 in the last 24 hours ("can't send until the
			// number ... drops below").
			if u.Window.Total()+n.Total() > directory.RecipientRateLimit {
				rrl = true
				return false
			}
			used := policy.RecipientUsage{InternalLastHour: u.Recent.Internal, ExternalLastHour: u.Recent.External, LastDay: u.Window.Total()}
			spam = policy.JudgeOutboundSpam(pol, used, in.Counts, in.Restriction.ReleasedToday(now), now)
			return !spam.Block
		})
		if err != nil {
			// The shared counters are out of reach (the database is down):
			// a temporary failure, which the client retries; never a
			// message accepted without its limits.
			s.Log.Error("sending limits unavailable", "session", in.SessionID, "mailbox", mb.PrimarySmtpAddress, "err", err)
			return reply.StorageUnavailable
		}
		ok := res.OK
		reservation = res
		if !ok && rrl {
			return reply.SubmissionQuotaExceeded
		}
		if !ok {
			return s.restrict(ctx, in, spam, now)
		}
		if spam.Alert {
			alert = spam
			s.Log.Warn("outbound spam policy threshold reached", "session", in.SessionID, "mailbox", mb.PrimarySmtpAddress,
				"limit", spam.Limit, "max", spam.Max, "count", spam.Count, "action", spam.Action)
			metrics.OutboundSpamThreshold.WithLabelValues(spam.Action, "alert").Inc()
		}
		// Over 30 messages a minute are accepted and held back, never refused.
		releaseAt = res.ReleaseAt
	}

	sub := &store.Submission{
		Arrival:          in.Arrival,
		OrgID:            in.Org.ID,
		MessageID:        messageID,
		Subject:          in.Message.Subject(),
		ReceivedAt:       now,
		EnvelopeFrom:     in.From.Key(),
		ClientIP:         in.ClientIP,
		Body:             head,
		Recipients:       len(in.Recipients),
		InboundConnector: in.InboundConnector,
		AuthProtocol:     in.AuthProtocol,
		TLSVersion:       in.TLSVersion,
		SessionID:        in.SessionID,
	}
	if in.AuthMailbox != nil {
		sub.ExternalRecipients = in.Counts.External
	}
	if alert.Alert {
		// The alert goes with the message into its trace, where the admin
		// looking at the sender's mail finds it.
		sub.Events = append(sub.Events, store.TraceEvent{At: now, Event: store.EventAgentInfo,
			Detail: "Outbound spam policy: " + alert.Reason()})
	}
	// The headers Postern adds go in front of the message as received: a
	// small message is committed as one piece, a spooled one as the added
	// headers followed by the spool file, which the store links (or copies)
	// into its own body file. Nothing here holds the message in memory.
	if _, ok := in.Message.InMemory(); ok {
		sub.Body = in.Message.WithHead(head)
	} else {
		sub.BodyFile = in.Message.SpoolFile()
	}
	if in.From.IsZero() {
		sub.EnvelopeFrom = ""
	}
	if mb := in.AuthMailbox; mb != nil {
		// SMTP AUTH submissions are saved to the authenticating mailbox's
		// Sent Items, even when sent as another address (reference 4.6).
		sub.AuthMailbox, sub.SentItems = mb.ID, mb.ID
	}
	for _, r := range in.Recipients {
		switch r.Route.Destination {
		case policy.Local:
			folder := store.Inbox
			if in.Junk {
				folder = store.JunkEmail
			}
			sub.Local = append(sub.Local, store.LocalDelivery{Mailbox: r.Route.Mailbox.ID, Folder: folder, Recipient: r.Address.Key(), NotBefore: releaseAt})
		case policy.Outbound:
			sub.Remote = append(sub.Remote, store.RemoteDelivery{Recipient: r.Address.String(), NotBefore: releaseAt})
		}
	}
	if err := s.Store.Commit(ctx, sub); err != nil {
		if reservation.OK {
			s.sending().Release(context.WithoutCancel(ctx), reservation)
		}
		s.Log.Error("commit failed", "session", in.SessionID, "message_id", messageID, "err", err)
		return reply.StorageUnavailable
	}
	if len(sub.Remote) > 0 && s.Queued != nil && !releaseAt.After(now) {
		s.Queued()
	}
	s.Log.Info("accepted", "session", in.SessionID, "message_id", messageID, "id", sub.ID, "from", sub.EnvelopeFrom, "rcpts", len(in.Recipients),
		"local", len(sub.Local), "remote", len(sub.Remote), "size", int64(len(head))+in.Message.Size(), "paced_until", paced(releaseAt, now))
	return reply.Accepted(messageID, s.Hostname)
}

// sending is the counter the limits are judged on.
func (s *Submitter) sending() limits.Sending {
	if s.Limits != nil {
		return s.Limits
	}
	return limits.Memory{Recipients: s.Recipients, Pacer: s.Pacer}
}

// restrict refuses a message the outbound spam policy blocks, and puts its
// sender on the restricted entities list: every later submission gets
// 550 5.1.8 until the restriction ends (BlockUserForToday) or an admin
// releases it (BlockUser). Policy selection follows the organization of
// the authenticated sender, whose counts these are (reference 4.2).
func (s *Submitter) restrict(ctx context.Context, in *Submission, v policy.OutboundSpamVerdict, now time.Time) *reply.Reply {
	mb := in.AuthMailbox
	s.Log.Warn("outbound spam policy restricted a sender", "session", in.SessionID, "mailbox", mb.PrimarySmtpAddress,
		"limit", v.Limit, "max", v.Max, "count", v.Count, "action", v.Action, "until", v.Until)
	metrics.OutboundSpamThreshold.WithLabelValues(v.Action, "blocked").Inc()
	if s.Restrict != nil {
		r := &directory.RestrictedSender{OrgID: mb.OrgID, MailboxID: mb.ID, SenderAddress: mb.PrimarySmtpAddress,
			Reason: v.Reason(), Action: v.Action, CreatedAt: now, ExpiresAt: v.Until}
		if err := s.Restrict(ctx, r); err != nil {
			// The message is refused all the same; the restriction is
			// recorded again by the sender's next message over the limit.
			s.Log.Error("recording a restricted sender failed", "mailbox", mb.PrimarySmtpAddress, "err", err)
		}
	}
	return reply.BadOutboundSender
}

func paced(releaseAt, now time.Time) string {
	if !releaseAt.After(now) {
		return ""
	}
	return releaseAt.Format(time.RFC3339)
}

// finishHeaders returns the header fields that go in front of the message
// (the Received field, and Message-ID, Date and From where the client left
// them out: RFC 6409 sections 8.2 and 8.3 allow an MSA to add them) and
// the Message-ID.
func (s *Submitter) finishHeaders(in *Submission, now time.Time) ([]byte, string) {
	m := in.Message
	var add strings.Builder
	// Trace fields go on top, newest first (RFC 5321 section 4.4).
	add.WriteString(in.AuthenticationResults)
	add.WriteString(s.received(in, now))

	messageID := strings.Trim(strings.TrimSpace(m.Header.Get("Message-Id")), "<>")
	if messageID == "" {
		messageID = newMessageID(s.Hostname)
		fmt.Fprintf(&add, "Message-ID: <%s>\r\n", messageID)
	}
	if m.Header.Get("Date") == "" {
		fmt.Fprintf(&add, "Date: %s\r\n", now.Format(time.RFC1123Z))
	}
	if in.InboundConnector != "" {
		// Which connector admitted the message, as Exchange records the
		// attributing connector; the value is the admin's connector name.
		fmt.Fprintf(&add, "X-Postern-Inbound-Connector: %s\r\n", sanitizeHeaderValue(in.InboundConnector))
	}
	if len(m.Header.Values("From")) == 0 && !in.From.IsZero() {
		fmt.Fprintf(&add, "From: <%s>\r\n", in.From.String())
	}
	return []byte(add.String()), messageID
}

// received renders the Received field of RFC 5321 section 4.4, with the
// protocol names of RFC 3848 and the TLS version and cipher in the comment.
func (s *Submitter) received(in *Submission, now time.Time) string {
	proto := "ESMTP"
	if in.TLS != nil {
		proto += "S"
	}
	if in.AuthMailbox != nil {
		proto += "A"
	}
	tlsInfo := ""
	if in.TLS != nil {
		tlsInfo = fmt.Sprintf("\r\n\t(version=%s cipher=%s)", tls.VersionName(in.TLS.Version), tls.CipherSuiteName(in.TLS.CipherSuite))
	}
	// The "id" clause (RFC 5321 section 4.4) names the session, as
	// Exchange's Received fields carry its SMTP session's ID.
	id := ""
	if in.SessionID != "" {
		id = " id " + sanitizeHelo(in.SessionID)
	}
	return fmt.Sprintf("Received: from %s ([%s])\r\n\tby %s (Postern) with %s%s%s;\r\n\t%s\r\n",
		sanitizeHelo(in.Helo), in.ClientIP, s.Hostname, proto, id, tlsInfo, now.Format(time.RFC1123Z))
}

// sanitizeHelo keeps the client's HELO argument from breaking the header.
func sanitizeHelo(h string) string {
	h = strings.Map(func(r rune) rune {
		if r <= ' ' || r == '(' || r == ')' || r == ';' || r > '~' {
			return -1
		}
		return r
	}, h)
	if h == "" {
		return "unknown"
	}
	return h
}

// sanitizeHeaderValue keeps an admin-chosen name on one header line.
func sanitizeHeaderValue(v string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, v)
}

func newMessageID(host string) string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:]) + "@" + host
}
