package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"postern.dev/postern/internal/limits"
)

// ConnectionSlots returns the concurrent-connection slots of every
// mailbox, counted in the database so that a mailbox's max connections
// hold however they are spread over the nodes (issue 14). node names this
// node (its queue node name, stable across restarts); lease is how long a
// slot counts unless this node renews it (limits.SlotLease in production).
// The slots an earlier run of this node left (it was killed) are freed
// first, as the queue frees its leases at start.
//
// Design: a slot is a row naming its node, with a lease that node renews
// (Renew, a heartbeat) while it holds the slot; a slot whose lease ended
// is free. The alternative, a session-level advisory lock per held slot
// (which PostgreSQL drops when the holding connection dies), would pin one
// pooled database connection per connected client, and a node that hangs
// without closing its sockets would keep its slots until TCP keepalive
// noticed; a lease costs one row and one statement per heartbeat for all
// of a node's slots, and frees a dead node's slots after a known time.
// Acquiring is one round trip (postern_acquire_slot, migration 009),
// releasing one, renewing one per node every third of the lease.
//
// Precision: the count is exact while every node reaches the database. A
// node that cannot renew for longer than the lease (it lost the database;
// it then takes no message either) lets its slots lapse, and its open
// connections keep believing they hold theirs: when it is back, a mailbox
// may have more than max connections until those end.
func (s *Store) ConnectionSlots(ctx context.Context, node string, max int, lease time.Duration) (limits.LeasedSlots, error) {
	l := &slotLeases{s: s, node: node, max: max, lease: lease, held: make(map[int64]bool),
		// Numbers from the clock, so that this run's never meet an
		// earlier run's even if freeing those below failed.
		next: time.Now().UnixNano()}
	if _, err := s.pool.Exec(ctx, "DELETE FROM connection_slots WHERE node = $1", node); err != nil {
		return nil, fmt.Errorf("freeing this node's connection slots: %w", internal(err))
	}
	return l, nil
}

type slotLeases struct {
	s     *Store
	node  string
	max   int
	lease time.Duration

	// mu guards next and held: a holder number enters held when it is
	// given out, before its row can exist, so that Renew never deletes
	// the row of a slot being acquired.
	mu   sync.Mutex
	next int64
	held map[int64]bool
	// stale is set when a release could not delete its row: the next
	// acquisition deletes it first (Renew), so that a connection ended
	// during an outage does not hold its slot until the next heartbeat.
	stale atomic.Bool
}

// Acquire implements limits.ConnectionSlots.
func (l *slotLeases) Acquire(ctx context.Context, mailbox int64) (limits.Slot, bool, error) {
	if l.stale.Load() && l.Renew(ctx) == nil {
		l.stale.Store(false)
	}
	l.mu.Lock()
	l.next++
	id := l.next
	l.held[id] = true
	l.mu.Unlock()
	var ok bool
	err := l.s.pool.QueryRow(ctx, "SELECT postern_acquire_slot($1, $2, $3, $4, $5)",
		mailbox, l.node, id, l.max, l.lease.Milliseconds()).Scan(&ok)
	if err != nil || !ok {
		// Not held. If the row was written all the same (the answer was
		// lost), the next Renew deletes it.
		l.mu.Lock()
		delete(l.held, id)
		l.mu.Unlock()
	}
	if err != nil {
		return limits.Slot{}, false, fmt.Errorf("connection slots of mailbox %d: %w", mailbox, internal(err))
	}
	return limits.Slot{Mailbox: mailbox, ID: id}, ok, nil
}

// Release implements limits.ConnectionSlots: the row goes now, or, if the
// database cannot be reached, at this node's next acquisition or Renew
// that can reach it (or when its lease ends), since the slot is no longer
// among those this node holds.
func (l *slotLeases) Release(ctx context.Context, slot limits.Slot) {
	l.mu.Lock()
	delete(l.held, slot.ID)
	l.mu.Unlock()
	if _, err := l.s.pool.Exec(ctx, "SELECT postern_release_slot($1, $2)", l.node, slot.ID); err != nil {
		l.stale.Store(true)
		slog.Warn("releasing a connection slot; it is freed at the next renewal", "mailbox", slot.Mailbox, "err", err)
	}
}

// Renew implements limits.LeasedSlots in one statement: the leases of the
// slots held go on, and this node's rows of slots no longer held (their
// release failed, or an acquisition's answer was lost) go. Rows numbered
// from next on belong to acquisitions begun after the snapshot and are
// left alone.
func (l *slotLeases) Renew(ctx context.Context) error {
	l.mu.Lock()
	next := l.next
	ids := make([]int64, 0, len(l.held))
	for id := range l.held {
		ids = append(ids, id)
	}
	l.mu.Unlock()
	_, err := l.s.pool.Exec(ctx, `WITH renewed AS (
			UPDATE connection_slots SET expires_at = clock_timestamp() + $3 * INTERVAL '1 millisecond'
			WHERE node = $1 AND holder = ANY($2) RETURNING 1)
		DELETE FROM connection_slots WHERE node = $1 AND holder <= $4 AND NOT (holder = ANY($2))`,
		l.node, ids, l.lease.Milliseconds(), next)
	if err != nil {
		return fmt.Errorf("renewing this node's connection slots: %w", internal(err))
	}
	return nil
}
