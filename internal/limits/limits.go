// Package limits keeps the counters behind Exchange Online's sending limits:
// per mailbox, the SMTP AUTH limits of reference section 4.1 (recipients
// per rolling 24 hours, messages per minute, paced and never refused, and
// concurrent connections) and the outbound spam policy's hourly counts
// (section 4.2); per source address, the messages of Direct Send and
// connector relay (source throttling). Every operation costs the same
// however much a mailbox has sent — no scan of its history (DESIGN.md:
// mox's history scan falls from 87 to 33 msg/s as volume grows). State is in memory, with an injected
// clock; the caller rebuilds a RecipientWindow from the store after a restart.
package limits

import (
	"context"
	"sync"
	"time"
)

// Count is a number of recipients (or messages) split by where they go:
// inside the sender's organization or outside it. The outbound spam
// policy limits the two apart per hour (reference section 4.2); everything
// else counts their Total.
type Count struct{ Internal, External int }

// Total is Internal + External.
func (c Count) Total() int { return c.Internal + c.External }

func (c Count) add(d Count) Count { return Count{c.Internal + d.Internal, c.External + d.External} }
func (c Count) sub(d Count) Count { return Count{c.Internal - d.Internal, c.External - d.External} }

// Usage is a key's count over its whole window and over the newest span
// asked for (Reserve's Recent).
type Usage struct {
	Window Count // the whole window (24 h for the recipient rate limit)
	Recent Count // the newest span (the last hour)
}

// Window counts per key over a rolling window, in a ring of buckets with a
// running total: the recipients of each mailbox over 24 hours (the
// recipient rate limit and the outbound spam policy), the messages of each
// source address over an hour (source throttling).
//
// Precision: a count recorded at time t stops counting when its bucket is
// recycled, between window-bucketWidth and window after t. Capacity thus
// comes back at bucket granularity (5 minutes for 24 h / 288) and never
// early: at any moment the count covers at least the last window-bucketWidth
// of sends, and Reserve never lets the total recorded within any such span
// exceed what admit allows. The same holds for the recent span.
type Window[K comparable] struct {
	width   time.Duration // of one bucket
	buckets int
	// recent is how many of the newest buckets Usage.Recent sums.
	recent int

	mu   sync.Mutex
	keys map[K]*ring
}

type ring struct {
	counts []Count
	total  Count
	head   int64 // absolute index (time / width) of the newest bucket
}

// RecipientWindow is the per-mailbox recipient counter.
type RecipientWindow = Window[int64]

// NewRecipientWindow makes a per-mailbox window of the given length split
// into buckets (production: 24 h in 288 buckets of 5 minutes), whose
// Usage.Recent covers the last hour.
func NewRecipientWindow(window time.Duration, buckets int) *RecipientWindow {
	return NewWindow[int64](window, buckets, time.Hour)
}

// NewWindow makes a window of the given length split into buckets; recent
// is the newest span Usage.Recent covers (rounded up to whole buckets, at
// most the window).
func NewWindow[K comparable](window time.Duration, buckets int, recent time.Duration) *Window[K] {
	width := window / time.Duration(buckets)
	n := int((recent + width - 1) / width)
	return &Window[K]{width: width, buckets: buckets, recent: max(1, min(n, buckets)), keys: make(map[K]*ring)}
}

func (w *Window[K]) slot(t time.Time) int64 { return t.UnixNano() / int64(w.width) }

// advance moves r's newest bucket to slot, zeroing the buckets that fall out.
func (w *Window[K]) advance(r *ring, slot int64) {
	if slot <= r.head {
		return
	}
	if slot-r.head >= int64(w.buckets) {
		clear(r.counts)
		r.total = Count{}
	} else {
		for i := r.head + 1; i <= slot; i++ {
			b := int(i % int64(w.buckets))
			r.total = r.total.sub(r.counts[b])
			r.counts[b] = Count{}
		}
	}
	r.head = slot
}

func (w *Window[K]) ring(key K, now time.Time) *ring {
	r := w.keys[key]
	if r == nil {
		r = &ring{counts: make([]Count, w.buckets), head: w.slot(now)}
		w.keys[key] = r
	}
	w.advance(r, w.slot(now))
	return r
}

// usage sums r's window and its newest buckets: constant cost (the recent
// span is a fixed number of buckets, 12 for an hour of 5-minute buckets).
func (w *Window[K]) usage(r *ring) Usage {
	u := Usage{Window: r.total}
	for i := range int64(w.recent) {
		u.Recent = u.Recent.add(r.counts[int((r.head-i)%int64(w.buckets)+int64(w.buckets))%w.buckets])
	}
	return u
}

// Reserve records n for key if admit, given the key's usage before the
// call, allows it; admit runs under the window's lock, so that the check
// and the recording are one step for concurrent submissions. It returns
// whether n was recorded and the usage before.
func (w *Window[K]) Reserve(key K, n Count, now time.Time, admit func(Usage) bool) (bool, Usage) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.ring(key, now)
	u := w.usage(r)
	if admit != nil && !admit(u) {
		return false, u
	}
	b := int(r.head % int64(w.buckets))
	r.counts[b] = r.counts[b].add(n)
	r.total = r.total.add(n)
	return true, u
}

// Release undoes a reservation made at time at (the message was then not
// stored). Nothing happens if that bucket has already left the window.
func (w *Window[K]) Release(key K, n Count, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.keys[key]
	if r == nil {
		return
	}
	slot := w.slot(at)
	if slot > r.head || r.head-slot >= int64(w.buckets) {
		return
	}
	b := int(slot % int64(w.buckets))
	n = Count{min(n.Internal, r.counts[b].Internal), min(n.External, r.counts[b].External)}
	r.counts[b] = r.counts[b].sub(n)
	r.total = r.total.sub(n)
}

// Add records n at time at: history at start-up, or what was accepted.
// Entries older than the window are ignored; entries in the future count
// as now.
func (w *Window[K]) Add(key K, n Count, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.keys[key]
	if r == nil {
		r = &ring{counts: make([]Count, w.buckets), head: w.slot(at)}
		w.keys[key] = r
	}
	slot := w.slot(at)
	if slot > r.head {
		w.advance(r, slot)
	}
	if r.head-slot >= int64(w.buckets) {
		return
	}
	b := int(slot % int64(w.buckets))
	r.counts[b] = r.counts[b].add(n)
	r.total = r.total.add(n)
}

// Used returns key's total in the window ending now.
func (w *Window[K]) Used(key K, now time.Time) int {
	return w.Usage(key, now).Window.Total()
}

// Usage returns key's counts in the window ending now.
func (w *Window[K]) Usage(key K, now time.Time) Usage {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.keys[key] == nil {
		return Usage{}
	}
	return w.usage(w.ring(key, now))
}

// Sweep forgets keys whose window has emptied.
func (w *Window[K]) Sweep(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	slot := w.slot(now)
	for k, r := range w.keys {
		w.advance(r, slot)
		if r.total == (Count{}) {
			delete(w.keys, k)
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

// Slots is ConnectionSlots on one node's in-memory counts (the SQLite
// store, one node): a mailbox's concurrent connections against a maximum.
type Slots struct {
	max  int
	mu   sync.Mutex
	held map[int64]int
}

// NewSlots allows max concurrent holders per mailbox (production: 3).
func NewSlots(max int) *Slots { return &Slots{max: max, held: make(map[int64]int)} }

// Acquire implements ConnectionSlots; it never fails.
func (s *Slots) Acquire(_ context.Context, mailbox int64) (Slot, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[mailbox] >= s.max {
		return Slot{}, false, nil
	}
	s.held[mailbox]++
	return Slot{Mailbox: mailbox}, true, nil
}

// Release implements ConnectionSlots. Releasing more than was acquired
// never takes the count below zero.
func (s *Slots) Release(_ context.Context, slot Slot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[slot.Mailbox] <= 1 {
		delete(s.held, slot.Mailbox)
		return
	}
	s.held[slot.Mailbox]--
}

// Held returns how many slots mailbox holds.
func (s *Slots) Held(mailbox int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[mailbox]
}
