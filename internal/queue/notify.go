package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/dsn"
	"postern.dev/postern/internal/store"
)

// notifyItem is a recipient to report on.
type notifyItem struct {
	item      store.OutboundItem
	res       result
	nextRetry time.Time
}

// maxReturned is the largest original returned whole in a non-delivery
// report; a larger one is returned as its header only (RFC 6522's
// text/rfc822-headers), so that a bounce of a large scan is not itself
// large.
const maxReturned = 1 << 20

// notice builds the delivery status notification for some recipients of a
// job, as a submission from the null sender (RFC 5321 §4.5.5), with the
// DSN trace event for the original. A message from the null sender gets no
// notification: that is how bounce loops are prevented.
func (q *Queue) notice(ctx context.Context, j *job, items []notifyItem, failed bool, now time.Time) (*store.Submission, store.Outcome, error) {
	sender := j.msg.EnvelopeFrom
	if sender == "" {
		return nil, store.Outcome{}, nil
	}
	snap := q.cfg.Directory.Load()
	kind := "delay notice"
	if failed {
		kind = "non-delivery report"
	}
	if domain, ok := unreachableOwnAddress(snap, j.msg.OrgID, sender); ok {
		// Nobody can read it: the sender is an address of the
		// organization's own Authoritative domain that no mailbox holds
		// (a scanner's "scan@contoso.com"). Exchange never routes such a
		// report out (the domain is its own, and directory-based edge
		// blocking would refuse it at the MX); sending it to the domain's
		// MX would bounce it back, or hand it to a stranger. It is dropped,
		// and the message trace says so.
		return nil, store.Outcome{Message: j.msg.Message, Event: store.EventDrop, At: now,
			Detail: fmt.Sprintf("%s to %s dropped: no mailbox has this address of the Authoritative accepted domain %s", kind, sender, domain)}, nil
	}
	original, err := q.original(ctx, j.msg.Message)
	if err != nil {
		return nil, store.Outcome{}, err
	}
	postmaster := "postmaster@" + q.cfg.Hostname
	for _, d := range snap.Domains() {
		if d.OrgID == j.msg.OrgID && d.Default {
			postmaster = "postmaster@" + d.DomainName
		}
	}
	action := dsn.Delayed
	if failed {
		action = dsn.Failed
	}
	r := dsn.Report{
		ReportingMTA:      q.cfg.Hostname,
		From:              postmaster,
		To:                sender,
		Date:              now,
		MessageID:         newMessageID(q.cfg.Hostname),
		ArrivalDate:       j.msg.ReceivedAt,
		OriginalMessageID: j.msg.MessageID,
		OriginalSubject:   j.msg.Subject,
		Original:          original,
		ReturnContent:     failed,
		MaxReturn:         maxReturned,
	}
	var names []string
	for _, n := range items {
		rc := dsn.Recipient{Address: n.item.Recipient, Action: action, Status: n.res.status,
			RemoteMTA: hostName(n.res.remote), Diagnostic: diagnostic(n.res.detail), LastAttempt: now}
		if !failed {
			rc.WillRetryUntil = n.item.ReceivedAt.Add(q.tuning().Schedule.For)
		}
		r.Recipients = append(r.Recipients, rc)
		names = append(names, n.item.Recipient)
	}
	msg, err := dsn.Build(r)
	if err != nil {
		return nil, store.Outcome{}, err
	}
	sub := &store.Submission{
		OrgID:      j.msg.OrgID,
		MessageID:  r.MessageID,
		Subject:    subjectOf(failed, j.msg.Subject),
		ReceivedAt: now,
		Body:       msg,
		Recipients: 1,
	}
	if a, err := address.Parse(sender); err == nil {
		if mb := snap.MailboxByAddress(a.Key()); mb != nil {
			sub.Local = []store.LocalDelivery{{Mailbox: mb.ID, Folder: store.Inbox, Recipient: sender}}
		}
	}
	if sub.Local == nil {
		sub.Remote = []store.RemoteDelivery{{Recipient: sender}}
	}
	ev := store.Outcome{Message: j.msg.Message, Event: store.EventDSN, At: now, Recipient: strings.Join(names, ", "),
		Detail: fmt.Sprintf("%s to %s, Message-ID <%s>", kind, sender, r.MessageID)}
	return sub, ev, nil
}

// unreachableOwnAddress reports whether addr is in an Authoritative accepted
// domain of organization org and held by no mailbox, and names the domain.
func unreachableOwnAddress(dir *directory.Snapshot, org int64, addr string) (string, bool) {
	a, err := address.Parse(addr)
	if err != nil {
		return "", false
	}
	d := dir.AcceptedDomain(a.Domain)
	if d == nil || d.OrgID != org || d.DomainType != directory.Authoritative || dir.MailboxByAddress(a.Key()) != nil {
		return "", false
	}
	return d.DomainName, true
}

// original reads at most maxReturned+1 octets of the message: enough for
// dsn.Build to return it whole when it fits, and to see that it does not
// (and return its header section only) when it is larger. A notification
// never reads a large message whole (RFC 3464 section 2 lets it return
// only the headers).
func (q *Queue) original(ctx context.Context, message int64) ([]byte, error) {
	body, err := q.cfg.Store.MessageBody(ctx, message)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(io.LimitReader(body, maxReturned+1))
}

func subjectOf(failed bool, s string) string {
	if failed {
		return "Undeliverable: " + s
	}
	return "Delivery delayed: " + s
}

// diagnostic strips our "[host] " prefix from a detail, leaving the remote
// server's reply for Diagnostic-Code.
func diagnostic(detail string) string {
	if strings.HasPrefix(detail, "[") {
		if i := strings.Index(detail, "] "); i > 0 {
			return detail[i+2:]
		}
	}
	return detail
}

// hostName is the host name part of "host [ip]".
func hostName(remote string) string {
	h, _, _ := strings.Cut(remote, " [")
	return h
}

func newMessageID(host string) string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:]) + "@" + host
}
