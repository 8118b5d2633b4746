package queue

import (
	"context"
	"time"

	"postern.dev/postern/internal/store"
)

// record is one job's outcomes (and notices) on their way to the store.
type record struct {
	outcomes []store.Outcome
	notices  []*store.Submission
	items    int    // leased items it settles
	msgID    string // for the log
}

// maxRecordBatch bounds the jobs whose outcomes share one transaction.
const maxRecordBatch = 256

// recordLoop writes outcomes the way submissions are group-committed:
// every record waiting when the last transaction ended goes into the next
// one, so that one fsync serves many deliveries (each outcome alone was an
// fsync'ed transaction, which capped delivery at one fsync per message).
// Runners hand their outcomes over and go on with their next job; the
// items stay leased until their outcome is durable, so a crash in between
// delivers them again (at-least-once, as before). It ends when q.records
// is closed and drained.
func (q *Queue) recordLoop(done chan<- struct{}) {
	defer close(done)
	for first := range q.records {
		batch := []*record{first}
	fill:
		for len(batch) < maxRecordBatch {
			select {
			case r, ok := <-q.records:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		q.writeRecords(batch)
	}
}

// writeRecords commits a batch in one transaction; if that fails, each
// record alone (with retries), so that one bad record does not hold its
// neighbours back.
func (q *Queue) writeRecords(batch []*record) {
	if len(batch) > 1 {
		var all record
		for _, r := range batch {
			all.outcomes = append(all.outcomes, r.outcomes...)
			all.notices = append(all.notices, r.notices...)
			all.items += r.items
		}
		if q.cfg.Store.RecordOutcomes(context.Background(), all.outcomes, all.notices) == nil {
			q.recorded(&all)
			return
		}
	}
	for _, r := range batch {
		q.writeRecord(r)
	}
}

// writeRecord commits one job's outcomes. The store may be briefly
// unavailable (disk full, locked): it keeps trying a few times, since the
// remote side has already acted on these results; then the leases stay,
// and the items are tried again after a restart or when the lease ends.
func (q *Queue) writeRecord(r *record) {
	for attempt := 0; ; attempt++ {
		err := q.cfg.Store.RecordOutcomes(context.Background(), r.outcomes, r.notices)
		if err == nil {
			q.recorded(r)
			return
		}
		q.cfg.Log.Error("queue: recording delivery outcomes", "message", r.msgID, "err", err)
		if attempt == 4 {
			q.settle(r.items)
			return
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
}

func (q *Queue) recorded(r *record) {
	q.settle(r.items)
	if len(r.notices) > 0 {
		q.Nudge()
	}
}

// settle gives back room for n leased items.
func (q *Queue) settle(n int) {
	q.mu.Lock()
	q.inflight -= n
	q.mu.Unlock()
}
