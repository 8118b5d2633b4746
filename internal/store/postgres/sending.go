package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"postern.dev/postern/internal/limits"
)

// Sending returns the per-mailbox sending counters kept in the database
// (migration 005), shared by every node, pacing to rate messages a minute.
// Each submission costs one round trip (postern_reserve_send); a refused
// one a second, to take its count back.
//
// Precision, as the in-memory counters': counts are kept per minute, so a
// recipient stops counting between 23 h 59 min and 24 h after it was
// sent, and pacing allows rate messages per calendar minute. Reservations
// of one mailbox are serialised in the database, and a reservation counts
// before it is judged, so that concurrent submissions through different
// nodes never both slip under a limit (near the limit, both may be refused
// where one alone would have passed).
func (s *Store) Sending(rate int) limits.Sending { return &sendCounter{s: s, rate: rate} }

type sendCounter struct {
	s    *Store
	rate int
}

func minuteOf(t time.Time) int64 { return t.Unix() / 60 }

// Reserve implements limits.Sending.
func (c *sendCounter) Reserve(ctx context.Context, mailbox int64, n limits.Count, now time.Time, admit func(limits.Usage) bool) (limits.Reservation, error) {
	r := limits.Reservation{Mailbox: mailbox, N: n, At: now}
	var dayInt, dayExt, hourInt, hourExt, releaseMin int64
	nowMin := minuteOf(now)
	err := c.s.pool.QueryRow(ctx, "SELECT * FROM postern_reserve_send($1, $2, $3, $4, $5)", mailbox, nowMin, n.Internal, n.External, c.rate).
		Scan(&dayInt, &dayExt, &hourInt, &hourExt, &releaseMin)
	if err != nil {
		return r, fmt.Errorf("sending counters of mailbox %d: %w", mailbox, internal(err))
	}
	r.Usage = limits.Usage{Window: limits.Count{Internal: int(dayInt), External: int(dayExt)},
		Recent: limits.Count{Internal: int(hourInt), External: int(hourExt)}}
	r.ReleaseAt = now
	if releaseMin > nowMin {
		r.ReleaseAt = time.Unix(releaseMin*60, 0)
	}
	if admit != nil && !admit(r.Usage) {
		r.OK = true // recorded: take it back
		c.Release(ctx, r)
		r.OK, r.ReleaseAt = false, time.Time{}
		return r, nil
	}
	r.OK = true
	return r, nil
}

// Release implements limits.Sending: the recipients leave the minute they
// were counted in, the message its release minute.
func (c *sendCounter) Release(ctx context.Context, r limits.Reservation) {
	if !r.OK {
		return
	}
	at, release := minuteOf(r.At), minuteOf(r.At)
	if r.ReleaseAt.After(r.At) {
		release = minuteOf(r.ReleaseAt)
	}
	_, err := c.s.pool.Exec(ctx, `UPDATE send_counts SET
		recipients_internal = GREATEST(0, recipients_internal - CASE WHEN minute = $2 THEN $4 ELSE 0 END),
		recipients_external = GREATEST(0, recipients_external - CASE WHEN minute = $2 THEN $5 ELSE 0 END),
		released = GREATEST(0, released - CASE WHEN minute = $3 THEN 1 ELSE 0 END)
		WHERE mailbox_id = $1 AND minute IN ($2, $3)`, r.Mailbox, at, release, r.N.Internal, r.N.External)
	if err != nil {
		// The count stays: the mailbox is at worst limited a little early,
		// never let past a limit.
		slog.Warn("taking back a sending count", "mailbox", r.Mailbox, "err", err)
	}
}

// Sweep implements limits.Sending: rows whose minute left the 24-hour
// window, and that pace nothing still to come, go.
func (c *sendCounter) Sweep(ctx context.Context, now time.Time) error {
	_, err := c.s.pool.Exec(ctx, "DELETE FROM send_counts WHERE minute < $1", minuteOf(now)-24*60-1)
	return internal(err)
}
