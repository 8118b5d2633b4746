package admin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"postern.dev/postern/internal/store"
)

// Message trace statuses (Get-MessageTrace's Status).
const (
	StatusDelivered      = "Delivered"
	StatusFailed         = "Failed"
	StatusPending        = "Pending"
	StatusFilteredAsSpam = "FilteredAsSpam"
)

// TraceRow is one row of Get-MessageTrace: one message to one recipient.
type TraceRow struct {
	Received         time.Time
	SenderAddress    string
	RecipientAddress string
	Subject          string
	Status           string
	FromIP           string
	ToIP             string
	Size             int64
	MessageID        string
	MessageTraceID   string
	message          store.TracedMessage
	recipient        store.TracedRecipient
}

// TraceParams are Get-MessageTrace's filters.
type TraceParams struct {
	SenderAddress, RecipientAddress string
	StartDate, EndDate              time.Time
	Status                          string
	MessageID, MessageTraceID       string
	FromIP, ToIP, Subject           string
	ResultSize                      int
}

// MessageTraceID renders Postern's message ID in the GUID form Exchange's
// MessageTraceId has.
func MessageTraceID(id int64) string {
	return fmt.Sprintf("00000000-0000-0000-0000-%012x", id)
}

func parseTraceID(s string) (int64, error) {
	var id int64
	if _, err := fmt.Sscanf(strings.ToLower(strings.TrimPrefix(s, "00000000-0000-0000-0000-")), "%x", &id); err != nil || id <= 0 {
		return 0, invalidValue("MessageTraceId", s, "give a MessageTraceId from Get-MessageTrace")
	}
	return id, nil
}

// recipientStatus is the Status of one recipient, from its last event.
func recipientStatus(r store.TracedRecipient) string {
	switch r.LastEvent {
	case store.EventDeliver:
		if strings.Contains(r.Detail, store.JunkEmail) {
			return StatusFilteredAsSpam
		}
		return StatusDelivered
	case store.EventSend:
		return StatusDelivered
	case store.EventFail, store.EventDrop:
		return StatusFailed
	}
	return StatusPending
}

// MessageTrace is Get-MessageTrace: messages of the organization, newest
// first, one row per recipient. Without dates it covers the last 48 hours,
// as Exchange does; any window within the retention can be asked at once.
func (s *Service) MessageTrace(ctx context.Context, p TraceParams) ([]TraceRow, error) {
	q := store.TraceQuery{OrgID: s.org().ID, Sender: p.SenderAddress, Recipient: p.RecipientAddress, Start: p.StartDate,
		End: p.EndDate, MessageID: p.MessageID, FromIP: p.FromIP, Subject: p.Subject}
	if q.Start.IsZero() && q.End.IsZero() && p.MessageID == "" && p.MessageTraceID == "" {
		q.Start = time.Now().Add(-48 * time.Hour)
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.End.Before(q.Start) {
		return nil, fmt.Errorf("Invalid StartDate value. The StartDate can't be later than the EndDate.")
	}
	if p.MessageTraceID != "" {
		id, err := parseTraceID(p.MessageTraceID)
		if err != nil {
			return nil, err
		}
		q.Message = id
	}
	limit := p.ResultSize
	if limit <= 0 {
		limit = 1000
	}
	q.Limit = limit
	msgs, err := s.Store.MessageTrace(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []TraceRow
	for _, m := range msgs {
		for _, r := range m.Recipients {
			row := TraceRow{Received: m.ReceivedAt, SenderAddress: m.Sender, RecipientAddress: r.Address, Subject: m.Subject,
				Status: recipientStatus(r), FromIP: m.ClientIP, ToIP: remoteIP(r.RemoteHost), Size: m.Size,
				MessageID: "<" + m.MessageID + ">", MessageTraceID: MessageTraceID(m.Message), message: m, recipient: r}
			if p.RecipientAddress != "" && !wildcardMatch(p.RecipientAddress, r.Address) {
				continue
			}
			if (p.Status != "" && !strings.EqualFold(p.Status, row.Status)) || (p.ToIP != "" && p.ToIP != row.ToIP) {
				continue
			}
			out = append(out, row)
			if len(out) == limit {
				return out, nil
			}
		}
	}
	return out, nil
}

// remoteIP is the address in "host [ip]".
func remoteIP(remote string) string {
	if i := strings.LastIndex(remote, "["); i >= 0 {
		return strings.TrimSuffix(remote[i+1:], "]")
	}
	return ""
}

// wildcardMatch matches *-patterns case-insensitively.
func wildcardMatch(pattern, s string) bool {
	pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, p := range parts[1:] {
		last := i == len(parts)-2
		if last {
			return strings.HasSuffix(s, p)
		}
		j := strings.Index(s, p)
		if j < 0 {
			return false
		}
		s = s[j+len(p):]
	}
	return true
}

// TraceDetail is one row of Get-MessageTraceDetail.
type TraceDetail struct {
	Date   time.Time
	Event  string // RECEIVE, SUBMIT, DELIVER, SEND, DEFER, FAIL, DSN, DROP
	Action string
	Detail string
	// SessionId is the SMTP session that submitted the message, on its
	// RECEIVE row: the same ID is on every server log line of that session
	// and in the message's Received field.
	SessionId string
}

// MessageTraceDetail is Get-MessageTraceDetail: what happened to one
// message for one recipient, step by step, in message tracking's event
// names.
func (s *Service) MessageTraceDetail(ctx context.Context, traceID, recipient string) ([]TraceDetail, error) {
	id, err := parseTraceID(traceID)
	if err != nil {
		return nil, err
	}
	msgs, err := s.Store.MessageTrace(ctx, store.TraceQuery{OrgID: s.org().ID, Message: id, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, NotFound(traceID)
	}
	m := msgs[0]
	events, err := s.Store.TraceEvents(ctx, id)
	if err != nil {
		return nil, err
	}
	var out []TraceDetail
	for _, e := range events {
		if recipient != "" && e.Recipient != "" && e.Event != store.EventDSN && !strings.EqualFold(e.Recipient, recipient) {
			continue
		}
		d := TraceDetail{Date: e.At, Event: strings.ToUpper(e.Event), Detail: e.Detail}
		switch e.Event {
		case store.EventReceive:
			d.Detail = s.receiveDetail(m)
			d.SessionId = m.SessionID
			out = append(out, d)
			// SUBMIT: the message entered delivery (mailboxes and queue)
			// in the same transaction that accepted it.
			out = append(out, TraceDetail{Date: e.At, Event: "SUBMIT", Detail: "The message was submitted for delivery."})
			continue
		case store.EventSend:
			d.Detail = "Sent to " + e.RemoteHost + "; the remote server replied: " + stripHost(e.Detail)
		case store.EventDefer:
			d.Action = "Retry"
			d.Detail = "Delivery was deferred: " + e.Detail
		case store.EventFail:
			d.Detail = "Delivery failed: " + e.Detail
		case store.EventDeliver:
			d.Detail = "Delivered to the mailbox " + e.Recipient + " (" + strings.TrimPrefix(e.Detail, "Folder ") + ")."
		}
		out = append(out, d)
	}
	return out, nil
}

// receiveDetail says how a message arrived: client, TLS, authentication
// or connector.
func (s *Service) receiveDetail(m store.TracedMessage) string {
	parts := []string{"Received from " + orDash(m.ClientIP)}
	if m.TLSVersion != "" && m.TLSVersion != "none" {
		parts = append(parts, "over "+m.TLSVersion)
	}
	if m.AuthMailbox != 0 {
		who := fmt.Sprintf("mailbox %d", m.AuthMailbox)
		if mb := s.Dir.Load().Mailbox(m.AuthMailbox); mb != nil {
			who = mb.PrimarySmtpAddress
		}
		parts = append(parts, "authenticated as "+who+" ("+orDash(m.AuthProtocol)+")")
	} else if m.Connector != "" {
		parts = append(parts, "through the inbound connector "+m.Connector)
	} else if m.ClientIP == "" {
		parts = []string{"Generated by Postern (a delivery status notification)"}
	} else {
		parts = append(parts, "anonymously (Direct Send)")
	}
	session := ""
	if m.SessionID != "" {
		session = ", SMTP session " + m.SessionID
	}
	return strings.Join(parts, ", ") + "; Message-ID <" + m.MessageID + ">, " + fmt.Sprint(m.Size) + " bytes" + session + "."
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// stripHost drops our "[host] " prefix from a recorded reply.
func stripHost(detail string) string {
	if strings.HasPrefix(detail, "[") {
		if i := strings.Index(detail, "] "); i > 0 {
			return detail[i+2:]
		}
	}
	return detail
}

// ConnectionLog is Get-ConnectionLog: refusals before acceptance, newest
// first, over the last 48 hours unless told otherwise.
func (s *Service) ConnectionLog(ctx context.Context, start, end time.Time, clientIP string, limit int) ([]store.ConnectionEvent, error) {
	if start.IsZero() && end.IsZero() {
		start = time.Now().Add(-48 * time.Hour)
	}
	return s.Store.ConnectionLog(ctx, store.ConnectionQuery{Start: start, End: end, ClientIP: clientIP, Limit: limit})
}

// ParseDate reads the date forms admins type: 2026-11-22, 2026-11-22 14:30,
// RFC 3339, and the US form 11/22/2026 [14:30] Exchange examples use. Dates
// without a zone are local time.
func ParseDate(param, v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02",
		"1/2/2006 15:04:05", "1/2/2006 15:04", "1/2/2006 3:04 PM", "1/2/2006"} {
		if t, err := time.ParseInLocation(layout, strings.TrimSpace(v), time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, invalidValue(param, v, "give a date such as 2026-11-22 or 11/22/2026 14:30")
}
