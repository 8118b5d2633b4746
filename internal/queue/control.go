package queue

import (
	"context"

	"postern.dev/postern/internal/store"
)

// Retry makes outbound items due now and wakes the workers (Retry-Queue).
func (q *Queue) Retry(ctx context.Context, ids []int64) (int, error) {
	n, err := q.cfg.Store.RetryNow(ctx, ids, q.cfg.Now())
	q.Nudge()
	return n, err
}

// adminRemoval is the reply recorded for a copy an admin removed, in
// Exchange's words.
const adminRemoval = "550 5.3.0 QUEUE.Admin; message deleted by administrative action"

// Remove takes queued copies out (Remove-QueueMessage): dropped silently,
// or failed with a non-delivery report to the sender when withNDR. A copy
// a worker is delivering at this moment may still arrive.
func (q *Queue) Remove(ctx context.Context, items []store.QueueItem, withNDR bool) error {
	now := q.cfg.Now()
	byMessage := map[int64]*job{}
	var order []*job
	var outcomes []store.Outcome
	for _, it := range items {
		event := store.EventDrop
		if withNDR {
			event = store.EventFail
		}
		outcomes = append(outcomes, store.Outcome{QueueID: it.ID, Message: it.Message, Recipient: it.Recipient,
			Event: event, Detail: adminRemoval, At: now})
		if !withNDR {
			continue
		}
		j := byMessage[it.Message]
		if j == nil {
			oi := store.OutboundItem{Message: it.Message, OrgID: it.OrgID, MessageID: it.MessageID, Subject: it.Subject,
				EnvelopeFrom: it.FromAddress, ReceivedAt: it.ReceivedAt, Size: it.Size}
			j = &job{msg: oi}
			byMessage[it.Message] = j
			order = append(order, j)
		}
		j.items = append(j.items, store.OutboundItem{QueueID: it.ID, Message: it.Message, Recipient: it.Recipient,
			ReceivedAt: it.ReceivedAt})
	}
	var notices []*store.Submission
	for _, j := range order {
		var ns []notifyItem
		for _, it := range j.items {
			ns = append(ns, notifyItem{item: it, res: result{event: store.EventFail, status: "5.3.0", detail: adminRemoval}})
		}
		n, ev, err := q.notice(ctx, j, ns, true, now)
		if err != nil {
			return err
		}
		if n != nil {
			notices = append(notices, n)
		}
		if ev.Event != "" {
			outcomes = append(outcomes, ev) // the notice's trace event, or its drop
		}
	}
	if err := q.cfg.Store.RecordOutcomes(ctx, outcomes, notices); err != nil {
		return err
	}
	if len(notices) > 0 {
		q.Nudge()
	}
	return nil
}
