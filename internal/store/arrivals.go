package store

import (
	"sync/atomic"
	"time"
)

// Arrivals counts the messages on their way to Commit: their DATA (or
// BDAT) is being received, and they have not yet reached the store's group
// committer. A committer that knows more are coming waits a little for
// them (GatherGroup) instead of committing without them.
//
// Why: a commit group has a fixed cost — its transaction, the WAL pages
// its index entries share, its syncs (SQLite: the WAL's and the body
// segment's) — about 550–750 µs of CPU on the reference machine with
// SQLite, whatever its size (BENCHMARKS.md, "Sixth run"). Taking
// only what is queued when the previous group ends made groups of 15 in
// relay and of 5 in submission with a new connection per message, so that
// this fixed cost was a fifth of the server's CPU per message. Waiting for
// messages already being received costs a sender nothing it would not
// wait anyway when the machine is busy, and costs nothing at all when
// nothing else is being received (a lone device's message is committed at
// once), which is what PostgreSQL's commit_delay with commit_siblings does
// by counting open transactions.
type Arrivals struct {
	n    atomic.Int64
	none chan struct{} // a token when n has come down to zero
}

// NewArrivals returns an empty count.
func NewArrivals() *Arrivals { return &Arrivals{none: make(chan struct{}, 1)} }

// Arrival is one message on its way; Arrived ends it, once.
type Arrival struct {
	of   *Arrivals
	done atomic.Bool
}

// Begin counts a message whose transfer begins. The caller must call
// Arrived on what it returns however the transfer ends: committed,
// refused or abandoned. A nil Arrivals counts nothing.
func (a *Arrivals) Begin() *Arrival {
	if a == nil {
		return nil
	}
	a.n.Add(1)
	return &Arrival{of: a}
}

// Expected is how many messages are on their way.
func (a *Arrivals) Expected() int64 {
	if a == nil {
		return 0
	}
	return a.n.Load()
}

// Arrived ends the arrival: its message reached the committer's queue, or
// will never reach it. It is safe to call more than once, and on nil.
func (r *Arrival) Arrived() {
	if r == nil || !r.done.CompareAndSwap(false, true) {
		return
	}
	if r.of.n.Add(-1) == 0 {
		select {
		case r.of.none <- struct{}{}:
		default:
		}
	}
}

// GatherGroup forms a commit group: first, everything queued behind it (up
// to limit in all), then, while arrivals are expected, what reaches queue
// before linger has passed since first was taken. It returns early when
// nothing more is expected (a message refused at the end of DATA, or
// dropped, stops the wait as well as one that arrives) and when stop is
// closed. The wait is what bounds the latency a group adds: at most
// linger, only while other messages are being received.
func GatherGroup[T any](first T, queue <-chan T, limit int, arrivals *Arrivals, linger time.Duration, stop <-chan struct{}) []T {
	group := takeQueued([]T{first}, queue, limit)
	if arrivals == nil || linger <= 0 || len(group) >= limit || arrivals.Expected() == 0 {
		return group
	}
	timer := time.NewTimer(linger)
	defer timer.Stop()
	for len(group) < limit && arrivals.Expected() > 0 {
		select {
		case p := <-queue:
			group = append(group, p)
		case <-arrivals.none:
			// Re-checked by the loop: the token may be stale.
		case <-timer.C:
			return group
		case <-stop:
			return group
		}
	}
	// What reached the queue together with the last awaited arrival.
	return takeQueued(group, queue, limit)
}

// takeQueued adds to group what queue holds now, up to limit in all.
func takeQueued[T any](group []T, queue <-chan T, limit int) []T {
	for len(group) < limit {
		select {
		case p := <-queue:
			group = append(group, p)
		default:
			return group
		}
	}
	return group
}

// GroupLinger is the longest a group committer waits for messages still
// being received (GatherGroup). Measured on the reference machine with 50
// connections, 4 ms and 8 ms took relay's groups from 15 to 34–35 messages
// and submission's with a new connection per message from 5 to 12 and 16,
// without raising the p99 latency at half the peak rate (BENCHMARKS.md,
// "Sixth run", the table by longest wait).
const GroupLinger = 8 * time.Millisecond
