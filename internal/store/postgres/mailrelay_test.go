package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/testpg"
)

func TestMailboxPayloads(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ids   []int64
		parts int
	}{
		{"none", nil, 0},
		{"one", []int64{42}, 1},
		{"many", seq(1, 100), 1},
		// 2,000 ids of 19 digits do not fit one 8000-byte payload.
		{"split", seq(1e18, 2000), 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := mailboxPayloads("n1", tc.ids)
			if len(ps) != tc.parts {
				t.Fatalf("%d payloads, want %d", len(ps), tc.parts)
			}
			var got []int64
			for _, p := range ps {
				if len(p) > maxPayload {
					t.Fatalf("payload of %d bytes", len(p))
				}
				ids, ok := parseMailboxPayload(p, "other")
				if !ok {
					t.Fatalf("payload %.40q not read back", p)
				}
				got = append(got, ids...)
			}
			if !slices.Equal(got, tc.ids) {
				t.Fatalf("read back %d ids, want %d", len(got), len(tc.ids))
			}
		})
	}
}

func seq(from int64, n int) []int64 {
	var out []int64
	for i := range n {
		out = append(out, from+int64(i))
	}
	return out
}

func TestParseMailboxPayload(t *testing.T) {
	for _, tc := range []struct {
		payload string
		want    []int64
	}{
		{"n2 1 2 3", []int64{1, 2, 3}},
		{"self 1 2", nil}, // this node's own
		{"n2", nil},
		{"n2 ", nil},
		{"", nil},
		{" 1", nil},
		{"n2 1 x", nil},
		{"n2 -1", nil},
		{"n2 0", nil},
		{"n2 99999999999999999999", nil},
	} {
		got, ok := parseMailboxPayload(tc.payload, "self")
		if ok != (tc.want != nil) || !slices.Equal(got, tc.want) {
			t.Errorf("parseMailboxPayload(%q) = %v, %v; want %v", tc.payload, got, ok, tc.want)
		}
	}
}

func FuzzParseMailboxPayload(f *testing.F) {
	f.Add("n2 1 2 3")
	f.Add("n2 1 x")
	f.Fuzz(func(t *testing.T, p string) {
		ids, ok := parseMailboxPayload(p, "self")
		if !ok {
			return
		}
		// What is accepted is exactly what the sender would write.
		node, _, _ := strings.Cut(p, " ")
		for _, q := range mailboxPayloads(node, ids) {
			back, ok := parseMailboxPayload(q, "self")
			if !ok || len(back) == 0 {
				t.Fatalf("%q: re-encoded %q not read", p, q)
			}
		}
		for _, id := range ids {
			if id <= 0 {
				t.Fatalf("%q gave id %d", p, id)
			}
		}
	})
}

// TestRelayMailboxChanges: a change on one store (node) wakes a watcher
// of that mailbox on another, not a watcher of another mailbox; a node's
// own changes wake its watchers once, through its hub; a listener whose
// connection is killed reconnects and wakes every watcher.
func TestRelayMailboxChanges(t *testing.T) {
	url := testpg.New(t)
	a, b := openTest(t, url), openTest(t, url)
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{}, 2)
	for _, s := range []*Store{a, b} {
		go func() { s.RelayMailboxChanges(ctx); done <- struct{}{} }()
	}
	w7, w8 := b.Watch(7), b.Watch(8)
	defer w7.Close()
	defer w8.Close()
	// Both listeners are up when each has woken its watchers once (the
	// first connection counts as a reconnection).
	wait(t, "b's first LISTEN", w7.C)
	// NotifyAll signals the watchers one after another under the hub's
	// lock: once the lock is free again, w8 has had its signal too.
	b.hub.Watchers()
	drain(w8.C)
	waitListening(t, a, 2)

	a.changed(7)
	wait(t, "b's watcher of mailbox 7 after a change on a", w7.C)
	select {
	case <-w8.C:
		t.Fatal("the watcher of mailbox 8 was woken by a change to mailbox 7")
	case <-time.After(200 * time.Millisecond):
	}

	// Kill both listeners' connections: they come back and wake everyone.
	_, err := a.w.ExecContext(ctx, fmt.Sprintf(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query LIKE 'LISTEN %%%s%%' AND pid <> pg_backend_pid()`, mailboxChannel))
	must(t, err)
	wait(t, "mailbox 8 after the listeners reconnected", w8.C)
	waitListening(t, a, 2)
	drain(w7.C)
	a.changed(7)
	wait(t, "mailbox 7 after the reconnection", w7.C)

	cancel()
	for range 2 {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("RelayMailboxChanges did not return after its context ended")
		}
	}
}

func wait(t *testing.T, what string, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(30 * time.Second):
		t.Fatalf("not woken: %s", what)
	}
}

func drain(c <-chan struct{}) {
	select {
	case <-c:
	default:
	}
}

// waitListening waits until n connections LISTEN on the mailbox channel.
func waitListening(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got int
		must(t, s.r.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %`+mailboxChannel+`%'`).Scan(&got))
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d listeners on %s, want %d", got, mailboxChannel, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
