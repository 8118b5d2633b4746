package limits

import (
	"context"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func TestRecipientWindow(t *testing.T) {
	w := NewRecipientWindow(24*time.Hour, 288)
	if ok, _ := reserve(w, 1, 9999, 10000, t0); !ok {
		t.Fatal("9,999 must fit")
	}
	if ok, used := reserve(w, 1, 2, 10000, t0.Add(time.Hour)); ok || used != 9999 {
		t.Fatalf("crossing the limit: ok=%v used=%d", ok, used)
	}
	if ok, _ := reserve(w, 1, 1, 10000, t0.Add(time.Hour)); !ok {
		t.Fatal("exactly 10,000 must fit")
	}
	if ok, _ := reserve(w, 1, 1, 10000, t0.Add(2*time.Hour)); ok {
		t.Fatal("10,001st must be refused")
	}
	if ok, _ := reserve(w, 2, 10, 10000, t0); !ok {
		t.Fatal("mailboxes are counted separately")
	}
	// Not before the window has passed...
	if ok, _ := reserve(w, 1, 1, 10000, t0.Add(24*time.Hour-5*time.Minute)); ok {
		t.Fatal("capacity came back a bucket early")
	}
	// ...but once the first send's bucket has left it.
	if ok, _ := reserve(w, 1, 9999, 10000, t0.Add(24*time.Hour)); !ok {
		t.Fatalf("after 24h the first 9,999 expire; used=%d", w.Used(1, t0.Add(24*time.Hour)))
	}
	if got := w.Used(1, t0.Add(24*time.Hour)); got != 10000 {
		t.Fatalf("used = %d", got)
	}
	// A long silence resets everything at once.
	if got := w.Used(1, t0.Add(30*24*time.Hour)); got != 0 {
		t.Fatalf("after a month: %d", got)
	}
}

func TestRecipientWindowReleaseAndAdd(t *testing.T) {
	w := NewRecipientWindow(24*time.Hour, 288)
	reserve(w, 1, 100, 150, t0)
	w.Release(1, Count{Internal: 100}, t0)
	if got := w.Used(1, t0); got != 0 {
		t.Fatalf("after release: %d", got)
	}
	w.Release(1, Count{Internal: 5}, t0) // never negative
	if got := w.Used(1, t0); got != 0 {
		t.Fatalf("negative: %d", got)
	}
	w.Add(3, Count{Internal: 50}, t0.Add(-25*time.Hour)) // older than the window: ignored
	w.Add(3, Count{Internal: 70}, t0.Add(-time.Hour))
	w.Add(3, Count{Internal: 30}, t0.Add(-23*time.Hour))
	if got := w.Used(3, t0); got != 100 {
		t.Fatalf("rebuilt history: %d, want 100", got)
	}
	if ok, _ := reserve(w, 3, 1, 100, t0); ok {
		t.Fatal("rebuilt history must count against the limit")
	}
	w.Sweep(t0.Add(48 * time.Hour))
	w.mu.Lock()
	n := len(w.keys)
	w.mu.Unlock()
	if n != 0 {
		t.Fatalf("sweep left %d idle mailboxes", n)
	}
}

func TestPacer(t *testing.T) {
	p := NewPacer(30, time.Minute)
	for i := range 30 {
		if got := p.Admit(1, t0); !got.Equal(t0) {
			t.Fatalf("message %d of the first 30 delayed to %v", i, got)
		}
	}
	// The next 30 are carried over to the following minute...
	for i := range 30 {
		if got := p.Admit(1, t0.Add(time.Second)); !got.Equal(t0.Add(time.Minute)) {
			t.Fatalf("message %d released at %v, want +60s", 31+i, got.Sub(t0))
		}
	}
	// ...and the 61st to the one after.
	if got := p.Admit(1, t0.Add(2*time.Second)); !got.Equal(t0.Add(2 * time.Minute)) {
		t.Fatalf("61st released at %v, want +120s", got.Sub(t0))
	}
	// One message every 2 seconds is never delayed.
	q := NewPacer(30, time.Minute)
	for i := range 200 {
		now := t0.Add(time.Duration(i) * 2 * time.Second)
		if got := q.Admit(1, now); !got.Equal(now) {
			t.Fatalf("steady 30/min delayed at %d", i)
		}
	}
}

// TestPacerProperty: for random arrivals, releases are never before arrival
// and no 60-second window holds more than 30 of them.
func TestPacerProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 50 {
		p := NewPacer(30, time.Minute)
		now := t0
		var releases []time.Time
		for range 300 {
			now = now.Add(time.Duration(rng.ExpFloat64() * float64(time.Duration(trial%5+1)*400*time.Millisecond)))
			r := p.Admit(7, now)
			if r.Before(now) {
				t.Fatal("released before arrival")
			}
			releases = append(releases, r)
		}
		sort.Slice(releases, func(i, j int) bool { return releases[i].Before(releases[j]) })
		for i := range releases {
			j := i
			for j < len(releases) && releases[j].Sub(releases[i]) < time.Minute {
				j++
			}
			if j-i > 30 {
				t.Fatalf("trial %d: %d releases within a minute from %v", trial, j-i, releases[i])
			}
		}
	}
}

func TestSlots(t *testing.T) {
	ctx := context.Background()
	s := NewSlots(3)
	acquire := func(mailbox int64) bool {
		_, held, err := s.Acquire(ctx, mailbox)
		if err != nil {
			t.Fatal(err)
		}
		return held
	}
	for i := range 3 {
		if !acquire(1) {
			t.Fatalf("slot %d", i)
		}
	}
	if acquire(1) {
		t.Fatal("4th slot granted")
	}
	if !acquire(2) {
		t.Fatal("another mailbox is independent")
	}
	s.Release(ctx, Slot{Mailbox: 1})
	if !acquire(1) {
		t.Fatal("a released slot must be reusable")
	}
	for range 10 {
		s.Release(ctx, Slot{Mailbox: 2})
	}
	if s.Held(2) != 0 || !acquire(2) {
		t.Fatal("never below zero")
	}
}

func TestConcurrentUse(t *testing.T) {
	w := NewRecipientWindow(24*time.Hour, 288)
	p := NewPacer(30, time.Minute)
	s := NewSlots(3)
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if ok, _ := reserve(w, 1, 1, 5000, t0); ok {
					mu.Lock()
					granted++
					mu.Unlock()
				}
				p.Admit(int64(i), t0)
				if slot, held, _ := s.Acquire(context.Background(), 1); held {
					s.Release(context.Background(), slot)
				}
			}
		}()
	}
	wg.Wait()
	if granted != 5000 || w.Used(1, t0) != 5000 {
		t.Fatalf("granted %d, used %d; want exactly 5000", granted, w.Used(1, t0))
	}
}

func BenchmarkRecipientWindowReserve(b *testing.B) {
	w := NewRecipientWindow(24*time.Hour, 288)
	now := t0
	for i := 0; b.Loop(); i++ {
		now = now.Add(time.Second)
		reserve(w, int64(i%10000), 1, 10000, now)
	}
}

func BenchmarkPacerAdmit(b *testing.B) {
	p := NewPacer(30, time.Minute)
	for i := 0; b.Loop(); i++ {
		p.Admit(int64(i%10000), t0)
	}
}

// reserve is Reserve against a recipient limit, as the recipient rate
// limit uses it; it returns the count before.
func reserve(w *RecipientWindow, key int64, n, limit int, now time.Time) (bool, int) {
	ok, u := w.Reserve(key, Count{Internal: n}, now, func(u Usage) bool { return u.Window.Total()+n <= limit })
	return ok, u.Window.Total()
}

func TestWindowRecentSpan(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := NewRecipientWindow(24*time.Hour, 288)
	w.Add(1, Count{Internal: 2, External: 3}, t0.Add(-2*time.Hour)) // in the day, not the hour
	w.Add(1, Count{Internal: 1, External: 4}, t0.Add(-30*time.Minute))
	ok, u := w.Reserve(1, Count{External: 1}, t0, nil)
	if !ok || u.Window != (Count{3, 7}) || u.Recent != (Count{1, 4}) {
		t.Fatalf("usage before = %+v, want window {3 7}, recent {1 4}", u)
	}
	if u := w.Usage(1, t0.Add(50*time.Minute)); u.Recent != (Count{0, 1}) {
		t.Fatalf("50 minutes later the hour holds the last reservation only: %+v", u)
	}
	// An hour and a bucket later the reservation made at t0 has left the
	// hour too; the day still holds everything.
	u = w.Usage(1, t0.Add(65*time.Minute))
	if u.Recent != (Count{}) || u.Window != (Count{3, 8}) {
		t.Fatalf("an hour later: %+v", u)
	}
}

func TestWindowBySource(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := NewWindow[string](time.Hour, 60, time.Hour)
	for range 3 {
		w.Add("192.0.2.1", Count{Internal: 1}, t0)
	}
	if got := w.Used("192.0.2.1", t0.Add(59*time.Minute)); got != 3 {
		t.Fatalf("used = %d, want 3", got)
	}
	if got := w.Used("192.0.2.1", t0.Add(61*time.Minute)); got != 0 {
		t.Fatalf("after the hour used = %d, want 0", got)
	}
	if got := w.Used("192.0.2.2", t0); got != 0 {
		t.Fatalf("another source used = %d", got)
	}
}
