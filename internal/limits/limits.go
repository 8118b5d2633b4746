// Package limits keeps the per-mailbox counters behind Exchange Online's
// SMTP AUTH sending limits (reference section 4.1): recipients per rolling
// 24 hours, messages per minute (paced, never refused) and concurrent
// connections. Every operation costs the same however much a mailbox has
// sent — no scan of its history (DESIGN.md: mox's history scan falls from
// 87 to 33 msg/s as volume grows). State is in memory, with an injected
// clock; the caller rebuilds RecipientWindow from the store after a restart.
package limits

import (
	"sync"
	"time"
)

// RecipientWindow counts recipients per mailbox over a rolling window, in a
// ring of buckets with a running total.
//
// Precision: a recipient recorded at time t stops counting when its bucket
// is recycled, between window-bucketWidth and window after t. Capacity thus
// comes back at bucket granularity (5 minutes for 24 h / 288) and never
// early: at any moment the count covers at least the last window-bucketWidth
// of sends, and Reserve never lets the total recorded within any such span
// exceed the limit.
type RecipientWindow struct {
	width   time.Duration // of one bucket
	buckets int

	mu    sync.Mutex
	boxes map[int64]*ring
}

type ring struct {
	counts []int
	total  int
	head   int64 // absolute index (time / width) of the newest bucket
}

// NewRecipientWindow makes a window of the given length split into buckets
// (production: 24 h in 288 buckets of 5 minutes).
func NewRecipientWindow(window time.Duration, buckets int) *RecipientWindow {
	return &RecipientWindow{width: window / time.Duration(buckets), buckets: buckets, boxes: make(map[int64]*ring)}
}

func (w *RecipientWindow) slot(t time.Time) int64 { return t.UnixNano() / int64(w.width) }

// advance moves r's newest bucket to slot, zeroing the buckets that fall out.
func (w *RecipientWindow) advance(r *ring, slot int64) {
	if slot <= r.head {
		return
	}
	if slot-r.head >= int64(w.buckets) {
		clear(r.counts)
		r.total = 0
	} else {
		for i := r.head + 1; i <= slot; i++ {
			b := int(i % int64(w.buckets))
			r.total -= r.counts[b]
			r.counts[b] = 0
		}
	}
	r.head = slot
}

func (w *RecipientWindow) ring(mailbox int64, now time.Time) *ring {
	r := w.boxes[mailbox]
	if r == nil {
		r = &ring{counts: make([]int, w.buckets), head: w.slot(now)}
		w.boxes[mailbox] = r
	}
	w.advance(r, w.slot(now))
	return r
}

// Reserve records n recipients for mailbox unless that would take its count
// over limit; used is the count before the call.
func (w *RecipientWindow) Reserve(mailbox int64, n, limit int, now time.Time) (ok bool, used int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.ring(mailbox, now)
	if r.total+n > limit {
		return false, r.total
	}
	r.counts[int(r.head%int64(w.buckets))] += n
	r.total += n
	return true, r.total - n
}

// Release undoes a reservation made at time at (the message was then not
// stored). Nothing happens if that bucket has already left the window.
func (w *RecipientWindow) Release(mailbox int64, n int, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.boxes[mailbox]
	if r == nil {
		return
	}
	slot := w.slot(at)
	if slot > r.head || r.head-slot >= int64(w.buckets) {
		return
	}
	b := int(slot % int64(w.buckets))
	n = min(n, r.counts[b])
	r.counts[b] -= n
	r.total -= n
}

// Add records history at start-up. Entries older than the window are
// ignored; entries in the future count as now.
func (w *RecipientWindow) Add(mailbox int64, n int, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.boxes[mailbox]
	if r == nil {
		r = &ring{counts: make([]int, w.buckets), head: w.slot(at)}
		w.boxes[mailbox] = r
	}
	slot := w.slot(at)
	if slot > r.head {
		w.advance(r, slot)
	}
	if r.head-slot >= int64(w.buckets) {
		return
	}
	r.counts[int(slot%int64(w.buckets))] += n
	r.total += n
}

// Used returns mailbox's count in the window ending now.
func (w *RecipientWindow) Used(mailbox int64, now time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.boxes[mailbox] == nil {
		return 0
	}
	return w.ring(mailbox, now).total
}

// Sweep forgets mailboxes whose window has emptied.
func (w *RecipientWindow) Sweep(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	slot := w.slot(now)
	for id, r := range w.boxes {
		w.advance(r, slot)
		if r.total == 0 {
			delete(w.boxes, id)
		}
	}
}

// Pacer holds a mailbox's messages back so that at most rate of them are
// released in any window of length per: Exchange accepts what exceeds 30 a
// minute and "carries it over to following minutes". Each message is
// released no earlier than one period after the message rate places before
// it, which needs the last rate release times per mailbox: a fixed ring, so
// the cost per message is constant.
type Pacer struct {
	rate int
	per  time.Duration

	mu    sync.Mutex
	boxes map[int64]*releases
}

type releases struct {
	times []time.Time // ring of the last rate release times
	next  int         // index of the oldest, overwritten next
	last  time.Time
}

// NewPacer paces to rate messages per period (production: 30 per minute).
func NewPacer(rate int, per time.Duration) *Pacer {
	return &Pacer{rate: rate, per: per, boxes: make(map[int64]*releases)}
}

// Admit returns when a message arriving now may be released: now itself
// unless the mailbox already had rate releases in the last period. It never
// refuses. Release times of a mailbox never go backwards.
func (p *Pacer) Admit(mailbox int64, now time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.boxes[mailbox]
	if r == nil {
		r = &releases{times: make([]time.Time, p.rate)}
		p.boxes[mailbox] = r
	}
	release := now
	if r.last.After(release) {
		release = r.last
	}
	if oldest := r.times[r.next]; !oldest.IsZero() && oldest.Add(p.per).After(release) {
		release = oldest.Add(p.per)
	}
	r.times[r.next] = release
	r.next = (r.next + 1) % p.rate
	r.last = release
	return release
}

// Sweep forgets mailboxes whose last release is a whole period ago.
func (p *Pacer) Sweep(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, r := range p.boxes {
		if !r.last.Add(p.per).After(now) {
			delete(p.boxes, id)
		}
	}
}

// Slots counts a mailbox's concurrent connections against a maximum.
type Slots struct {
	max  int
	mu   sync.Mutex
	held map[int64]int
}

// NewSlots allows max concurrent holders per mailbox (production: 3).
func NewSlots(max int) *Slots { return &Slots{max: max, held: make(map[int64]int)} }

// Acquire takes a slot for mailbox; false when all are held.
func (s *Slots) Acquire(mailbox int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[mailbox] >= s.max {
		return false
	}
	s.held[mailbox]++
	return true
}

// Release gives a slot back.
func (s *Slots) Release(mailbox int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[mailbox] <= 1 {
		delete(s.held, mailbox)
		return
	}
	s.held[mailbox]--
}

// Held returns how many slots mailbox holds.
func (s *Slots) Held(mailbox int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[mailbox]
}
