package limits

import (
	"context"
	"time"
)

// Sending counts what the per-mailbox SMTP AUTH sending limits need: the
// recipients of the last 24 hours and hour (the recipient rate limit and
// the outbound spam policy) and the release times of paced messages (30
// a minute). Memory is one node's counters (the SQLite store, one node);
// a store several nodes share provides one that counts in the database,
// so that a mailbox's limits hold whichever node its messages reach.
type Sending interface {
	// Reserve records n recipients for mailbox at now if admit, given the
	// usage before this submission, allows it, and gives the time the
	// message may be released (pacing; never a refusal). Concurrent
	// reservations never both slip under a limit. An error means the
	// counters could not be read: the caller answers a temporary failure.
	Reserve(ctx context.Context, mailbox int64, n Count, now time.Time, admit func(Usage) bool) (Reservation, error)
	// Release undoes an admitted reservation whose message was then not
	// stored.
	Release(ctx context.Context, r Reservation)
	// Sweep forgets counts that have left every window.
	Sweep(ctx context.Context, now time.Time) error
}

// Reservation is Reserve's outcome.
type Reservation struct {
	OK        bool      // admit allowed it, and it was recorded
	Usage     Usage     // before this submission
	ReleaseAt time.Time // when OK: when the message may be released

	Mailbox int64
	N       Count
	At      time.Time
}

// Memory is Sending on one node's in-memory counters.
type Memory struct {
	Recipients *RecipientWindow
	Pacer      *Pacer
}

// Reserve implements Sending; it never fails.
func (m Memory) Reserve(_ context.Context, mailbox int64, n Count, now time.Time, admit func(Usage) bool) (Reservation, error) {
	ok, u := m.Recipients.Reserve(mailbox, n, now, admit)
	r := Reservation{OK: ok, Usage: u, Mailbox: mailbox, N: n, At: now}
	if ok {
		r.ReleaseAt = m.Pacer.Admit(mailbox, now)
	}
	return r, nil
}

// Release implements Sending. The pacing slot stays taken: a later
// message is at worst released a little later than it could have been.
func (m Memory) Release(_ context.Context, r Reservation) {
	m.Recipients.Release(r.Mailbox, r.N, r.At)
}

// Sweep implements Sending.
func (m Memory) Sweep(_ context.Context, now time.Time) error {
	m.Recipients.Sweep(now)
	m.Pacer.Sweep(now)
	return nil
}
