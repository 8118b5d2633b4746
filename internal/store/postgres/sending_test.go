package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/internal/limits"
	"postern.dev/postern/internal/testpg"
)

// TestSendingAcrossNodes: two stores (nodes) on one database share a
// mailbox's counters. Pacing releases 30 of 70 concurrent messages at
// once and the rest in the following minutes, 30 a minute; the recipient
// limit, judged by admit on the usage before, is never exceeded by
// concurrent reservations; a refused or released reservation gives its
// count back; other mailboxes are unaffected.
func TestSendingAcrossNodes(t *testing.T) {
	url := testpg.New(t)
	a, b := openTest(t, url), openTest(t, url)
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	nodes := []limits.Sending{a.Sending(30), b.Sending(30)}
	now := time.Unix(1_800_000_000, 0).Add(10 * time.Second) // 10 s into a minute
	minute := now.Truncate(time.Minute)

	// Pacing: 70 messages at once through two nodes.
	var mu sync.Mutex
	perMinute := map[time.Time]int{}
	var wg sync.WaitGroup
	for i := range 70 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := nodes[i%2].Reserve(ctx, 1, limits.Count{Internal: 1}, now, nil)
			if err != nil || !r.OK {
				t.Errorf("reserve %d: %+v %v", i, r, err)
				return
			}
			at := r.ReleaseAt
			if at.Equal(now) {
				at = minute
			}
			mu.Lock()
			perMinute[at]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	want := map[time.Time]int{minute: 30, minute.Add(time.Minute): 30, minute.Add(2 * time.Minute): 10}
	for m, n := range want {
		if perMinute[m] != n {
			t.Errorf("released in %v: %d, want %d (all: %v)", m, perMinute[m], n, perMinute)
		}
	}

	// The recipient limit: 40 concurrent reservations of 10 recipients
	// against a limit of 100 (after the 70 above): exactly 3 pass.
	admitted := 0
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := nodes[i%2].Reserve(ctx, 1, limits.Count{External: 10}, now, func(u limits.Usage) bool {
				return u.Window.Total()+10 <= 100
			})
			if err != nil {
				t.Error(err)
				return
			}
			if r.OK {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if admitted < 1 || admitted > 3 {
		t.Errorf("%d reservations of 10 admitted under a limit of 100 with 70 used; want 1 to 3 (never more)", admitted)
	}
	usage := func(node int, mailbox int64, at time.Time) limits.Usage {
		t.Helper()
		r, err := nodes[node].Reserve(ctx, mailbox, limits.Count{}, at, func(limits.Usage) bool { return false })
		if err != nil {
			t.Fatal(err)
		}
		return r.Usage
	}
	if u := usage(1, 1, now); u.Window.Total() != 70+10*admitted || u.Recent.External != 10*admitted {
		t.Errorf("usage after the limit test: %+v, want %d in the window", u, 70+10*admitted)
	}
	// Released: the count comes back.
	r, err := nodes[0].Reserve(ctx, 1, limits.Count{Internal: 5}, now, nil)
	if err != nil || !r.OK {
		t.Fatal(r, err)
	}
	nodes[0].Release(ctx, r)
	if u := usage(1, 1, now); u.Window.Total() != 70+10*admitted {
		t.Errorf("usage after a release: %+v", u)
	}
	// The hour and the day: an hour later the recent span is empty, a day
	// later everything; another mailbox never saw any of it.
	if u := usage(0, 1, now.Add(time.Hour)); u.Recent.Total() != 0 || u.Window.Total() == 0 {
		t.Errorf("usage an hour later: %+v", u)
	}
	if u := usage(0, 1, now.Add(24*time.Hour)); u.Window.Total() != 0 {
		t.Errorf("usage a day later: %+v", u)
	}
	if u := usage(0, 2, now); u.Window.Total() != 0 {
		t.Errorf("another mailbox's usage: %+v", u)
	}
	must(t, nodes[0].Sweep(ctx, now.Add(49*time.Hour))) // after the probes a day ahead
	var rows int
	must(t, a.r.QueryRow("SELECT COUNT(*) FROM send_counts").Scan(&rows))
	if rows != 0 {
		t.Errorf("%d send_counts rows left after the sweep", rows)
	}
}
