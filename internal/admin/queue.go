package admin

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"postern.dev/postern/internal/queue"
	"postern.dev/postern/internal/store"
)

// QueueControl is what the admin service asks of the delivery queue.
type QueueControl interface {
	// Retry makes the items due now and wakes the delivery workers.
	Retry(ctx context.Context, ids []int64) (int, error)
	// Remove takes items out of the queue, with a non-delivery report to
	// the sender when withNDR.
	Remove(ctx context.Context, items []store.QueueItem, withNDR bool) error
}

// QueueInfo is one row of Get-Queue.
type QueueInfo struct {
	Identity      string
	DeliveryType  string
	Status        string // Active, Ready or Retry
	MessageCount  int64
	NextHopDomain string
	LastError     string
	NextRetryTime time.Time
}

// QueuedMessage is one row of Get-QueueMessage: one recipient's copy.
type QueuedMessage struct {
	store.QueueItem
	Identity string // queue identity \ item ID
	Queue    string
	Status   string
}

// Queued lists every queued copy with the queue it waits in. The queue
// is the server's, shared by its organizations: an organization's admin
// (As) sees only the organization's own copies.
func (s *Service) Queued(ctx context.Context) ([]QueuedMessage, error) {
	items, err := s.Store.QueueItems(ctx)
	if err != nil {
		return nil, err
	}
	snap := s.Dir.Load()
	now := time.Now()
	out := make([]QueuedMessage, 0, len(items))
	for _, it := range items {
		if s.scoped && it.OrgID != s.orgID {
			continue
		}
		name := "Submission" // paced local deliveries wait as in Exchange's submission queue
		if !it.Local {
			_, domain, _ := strings.Cut(it.Recipient, "@")
			name = queue.RouteFor(snap, it.OrgID, domain).NextHop()
		}
		qid := s.queueIdentity(name)
		out = append(out, QueuedMessage{QueueItem: it, Queue: qid, Identity: qid + `\` + strconv.FormatInt(it.ID, 10),
			Status: queueStatus(it, now)})
	}
	return out, nil
}

// queueIdentity is Exchange Server's Server\NextHop form.
func (s *Service) queueIdentity(nextHop string) string {
	host := s.Hostname
	if host == "" {
		host = "localhost"
	}
	return host + `\` + nextHop
}

// queueStatus is Exchange's status of a queued message: Active while a
// worker delivers it, Retry after a failed attempt, Deferred while paced,
// otherwise Ready.
func queueStatus(q store.QueueItem, now time.Time) string {
	switch {
	case q.LeasedUntil.After(now):
		return "Active"
	case q.Attempts > 0:
		return "Retry"
	case q.NotBefore.After(now):
		return "Deferred"
	}
	return "Ready"
}

// Queues summarises the queued copies per next hop.
func (s *Service) Queues(ctx context.Context, identity string) ([]QueueInfo, error) {
	msgs, err := s.Queued(ctx)
	if err != nil {
		return nil, err
	}
	snap := s.Dir.Load()
	byName := map[string]*QueueInfo{}
	for _, m := range msgs {
		q := byName[m.Queue]
		if q == nil {
			_, hop, _ := strings.Cut(m.Queue, `\`)
			q = &QueueInfo{Identity: m.Queue, NextHopDomain: hop, Status: "Ready", DeliveryType: "MailboxDelivery"}
			if !m.Local {
				_, domain, _ := strings.Cut(m.Recipient, "@")
				q.DeliveryType = queue.RouteFor(snap, m.OrgID, domain).DeliveryType()
			}
			byName[m.Queue] = q
		}
		q.MessageCount++
		switch m.Status {
		case "Active":
			q.Status = "Active"
		case "Retry":
			if q.Status != "Active" {
				q.Status = "Retry"
			}
			q.LastError = m.LastError
			if q.NextRetryTime.IsZero() || m.NotBefore.Before(q.NextRetryTime) {
				q.NextRetryTime = m.NotBefore
			}
		}
	}
	var out []QueueInfo
	for _, q := range byName {
		if identity == "" || queueMatches(q.Identity, identity) {
			out = append(out, *q)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Identity < out[j].Identity })
	if identity != "" && len(out) == 0 {
		return nil, NotFound(identity)
	}
	return out, nil
}

// queueMatches accepts a queue identity with or without its server part.
func queueMatches(qid, identity string) bool {
	if strings.EqualFold(qid, identity) {
		return true
	}
	_, hop, _ := strings.Cut(qid, `\`)
	return !strings.Contains(identity, `\`) && strings.EqualFold(hop, identity)
}

// QueueMessages lists queued copies, of one queue when queueIdentity is
// given, or the one message identity names.
func (s *Service) QueueMessages(ctx context.Context, identity, queueIdentity string) ([]QueuedMessage, error) {
	msgs, err := s.Queued(ctx)
	if err != nil {
		return nil, err
	}
	var out []QueuedMessage
	for _, m := range msgs {
		if queueIdentity != "" && !queueMatches(m.Queue, queueIdentity) {
			continue
		}
		if identity != "" && !messageMatches(m, identity) {
			continue
		}
		out = append(out, m)
	}
	if identity != "" && len(out) == 0 {
		return nil, NotFound(identity)
	}
	return out, nil
}

// messageMatches accepts Server\Queue\ID, Queue\ID or the bare ID.
func messageMatches(m QueuedMessage, identity string) bool {
	if strings.EqualFold(m.Identity, identity) {
		return true
	}
	_, rest, _ := strings.Cut(m.Identity, `\`)
	return strings.EqualFold(rest, identity) || identity == strconv.FormatInt(m.ID, 10)
}

// RetryQueue makes every waiting copy of a queue due now (Retry-Queue).
func (s *Service) RetryQueue(ctx context.Context, identity string) (int, error) {
	if _, err := s.Queues(ctx, identity); err != nil {
		return 0, err
	}
	msgs, err := s.QueueMessages(ctx, "", identity)
	if err != nil {
		return 0, err
	}
	var ids []int64
	for _, m := range msgs {
		if !m.Local {
			ids = append(ids, m.ID)
		}
	}
	if s.Queue == nil {
		return 0, fmt.Errorf("the delivery queue is not available")
	}
	return s.Queue.Retry(ctx, ids)
}

// RemoveQueueMessage removes queued copies (Remove-QueueMessage), with a
// non-delivery report unless withNDR is false.
func (s *Service) RemoveQueueMessage(ctx context.Context, identity string, withNDR bool) (int, error) {
	msgs, err := s.QueueMessages(ctx, identity, "")
	if err != nil {
		return 0, err
	}
	if s.Queue == nil {
		return 0, fmt.Errorf("the delivery queue is not available")
	}
	items := make([]store.QueueItem, len(msgs))
	for i, m := range msgs {
		items[i] = m.QueueItem
	}
	return len(items), s.Queue.Remove(ctx, items, withNDR)
}
