package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/internal/store"
)

// testEphemeral: records are read back until they expire, replaced under
// their key, kept apart by kind, taken exactly once even by concurrent
// takers, capped per kind (the nearest to expiry dropped, never the one
// just written), swept, and kept across a reopen (another node, a
// restart).
func testEphemeral(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	key := func(i int) []byte { return []byte(fmt.Sprintf("key-%02d", i)) }

	must(t, s.PutEphemeral(ctx, "session", key(1), []byte("one"), now.Add(time.Hour), 0))
	must(t, s.PutEphemeral(ctx, "session", key(1), []byte("one, later"), now.Add(2*time.Hour), 0))
	must(t, s.PutEphemeral(ctx, "link", key(1), []byte("a link"), now.Add(time.Minute), 0))
	s = h.reopen()
	for _, tc := range []struct {
		kind string
		at   time.Time
		want string // "" for ErrNotFound
	}{
		{"session", now, "one, later"},
		{"session", now.Add(90 * time.Minute), "one, later"}, // the replacement's expiry counts
		{"session", now.Add(2 * time.Hour), ""},              // expired at its expiry
		{"link", now, "a link"},
		{"link", now.Add(time.Minute), ""},
		{"flow", now, ""}, // kinds are apart
	} {
		v, err := s.GetEphemeral(ctx, tc.kind, key(1), tc.at)
		if tc.want == "" {
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get %s at %v: %q, %v; want ErrNotFound", tc.kind, tc.at.Sub(now), v, err)
			}
			continue
		}
		if err != nil || string(v) != tc.want {
			t.Errorf("Get %s at %v: %q, %v; want %q", tc.kind, tc.at.Sub(now), v, err, tc.want)
		}
	}

	// Take: once, and never an expired record.
	if _, err := s.TakeEphemeral(ctx, "link", key(1), now.Add(time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Take of an expired link: %v", err)
	}
	must(t, s.PutEphemeral(ctx, "link", key(2), []byte("x"), now.Add(time.Minute), 0))
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.TakeEphemeral(ctx, "link", key(2), now)
			if err == nil {
				mu.Lock()
				got++
				mu.Unlock()
				if string(v) != "x" {
					t.Errorf("Take: %q", v)
				}
			} else if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Take: %v", err)
			}
		}()
	}
	wg.Wait()
	if got != 1 {
		t.Errorf("8 concurrent takers of one link: %d got it, want 1", got)
	}

	// Delete.
	must(t, s.DeleteEphemeral(ctx, "session", key(1)))
	must(t, s.DeleteEphemeral(ctx, "session", key(1))) // nothing there: no error
	if _, err := s.GetEphemeral(ctx, "session", key(1), now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}

	// The cap: 5 records of kind "flow" at most. Records 1..5 expire in
	// 1..5 minutes; writing a 6th (expiring last) drops record 1; writing
	// a 7th that expires first drops record 2, not itself.
	for i := 1; i <= 5; i++ {
		must(t, s.PutEphemeral(ctx, "flow", key(i), []byte{byte(i)}, now.Add(time.Duration(i)*time.Minute), 5))
	}
	must(t, s.PutEphemeral(ctx, "flow", key(6), []byte{6}, now.Add(time.Hour), 5))
	must(t, s.PutEphemeral(ctx, "flow", key(7), []byte{7}, now.Add(time.Second), 5))
	var left []int
	for i := 1; i <= 7; i++ {
		if v, err := s.GetEphemeral(ctx, "flow", key(i), now); err == nil {
			if !bytes.Equal(v, []byte{byte(i)}) {
				t.Errorf("flow %d: %v", i, v)
			}
			left = append(left, i)
		}
	}
	if fmt.Sprint(left) != "[3 4 5 6 7]" {
		t.Errorf("after the cap, flows %v are left; want [3 4 5 6 7]", left)
	}
	// The cap is per kind: sessions are untouched by it.
	must(t, s.PutEphemeral(ctx, "session", key(9), []byte("s"), now.Add(time.Hour), 5))

	// Sweep removes what expired, and only that.
	n, err := s.SweepEphemeral(ctx, now.Add(4*time.Minute+time.Second))
	must(t, err)
	if n != 3 { // flows 7 (1 s), 3 (3 min) and 4 (4 min)
		t.Errorf("Sweep removed %d records, want 3", n)
	}
	if _, err := s.GetEphemeral(ctx, "flow", key(5), now); err != nil {
		t.Errorf("flow 5 (5 min) swept too early: %v", err)
	}
	if _, err := s.GetEphemeral(ctx, "session", key(9), now); err != nil {
		t.Errorf("session swept: %v", err)
	}
}
