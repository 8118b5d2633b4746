package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/internal/limits"
	"postern.dev/postern/internal/testpg"
)

// TestConnectionSlotsAcrossNodes: two nodes on one database share each
// mailbox's 3 slots: 3 held over both, the 4th refused on either; a
// release frees one for the other node; 20 concurrent acquisitions over
// both nodes hold exactly 3; other mailboxes are apart.
func TestConnectionSlotsAcrossNodes(t *testing.T) {
	url := testpg.New(t)
	a, b := openTest(t, url), openTest(t, url)
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	na, err := a.ConnectionSlots(ctx, "node-a", 3, time.Minute)
	must(t, err)
	nb, err := b.ConnectionSlots(ctx, "node-b", 3, time.Minute)
	must(t, err)
	acquire := func(n limits.ConnectionSlots, mailbox int64) (limits.Slot, bool) {
		t.Helper()
		s, held, err := n.Acquire(ctx, mailbox)
		must(t, err)
		return s, held
	}
	first, ok := acquire(na, 1)
	if !ok {
		t.Fatal("first slot refused")
	}
	for i, n := range []limits.ConnectionSlots{nb, na} {
		if _, ok := acquire(n, 1); !ok {
			t.Fatalf("slot %d refused", i+2)
		}
	}
	for name, n := range map[string]limits.ConnectionSlots{"a": na, "b": nb} {
		if _, ok := acquire(n, 1); ok {
			t.Fatalf("a 4th slot granted on node %s", name)
		}
	}
	if _, ok := acquire(nb, 2); !ok {
		t.Fatal("another mailbox's slot refused")
	}
	na.Release(ctx, first)
	if _, ok := acquire(nb, 1); !ok {
		t.Fatal("the slot released on node a was not free for node b")
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	held := 0
	for i := range 20 {
		wg.Go(func() {
			n := na
			if i%2 == 1 {
				n = nb
			}
			if _, ok, err := n.Acquire(ctx, 7); err != nil {
				t.Error(err)
			} else if ok {
				mu.Lock()
				held++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if held != 3 {
		t.Errorf("20 concurrent acquisitions over two nodes held %d slots; want 3", held)
	}
}

// TestConnectionSlotsLeases: a node that stops renewing (it died) loses
// its slots when their leases end, without anyone releasing them; Renew
// pushes the leases of held slots on and deletes the rows of slots the
// node no longer holds (a release that could not reach the database), as
// does the node's next acquisition after such a release; a
// node started again under the same name frees what its earlier run held;
// an unreachable database is an error, never a slot.
func TestConnectionSlotsLeases(t *testing.T) {
	url := testpg.New(t)
	a, b := openTest(t, url), openTest(t, url)
	defer b.Close()
	ctx := context.Background()
	rows := func(q string, args ...any) int {
		t.Helper()
		var n int
		must(t, b.r.QueryRow(q, args...).Scan(&n))
		return n
	}

	// Renew: the lease goes on; a slot released without its row deleted
	// (the database was unreachable then) is deleted.
	nb, err := b.ConnectionSlots(ctx, "node-b", 3, time.Minute)
	must(t, err)
	kept, _, err := nb.Acquire(ctx, 5)
	must(t, err)
	lost, _, err := nb.Acquire(ctx, 5)
	must(t, err)
	l := nb.(*slotLeases)
	l.mu.Lock()
	delete(l.held, lost.ID) // as Release does before its DELETE fails
	l.mu.Unlock()
	must(t, b.r.QueryRow("UPDATE connection_slots SET expires_at = expires_at - INTERVAL '50 seconds' WHERE node = 'node-b' RETURNING 1").Scan(new(int)))
	must(t, nb.Renew(ctx))
	if n := rows("SELECT COUNT(*) FROM connection_slots WHERE node = 'node-b'"); n != 1 {
		t.Errorf("%d rows of node b after Renew; want the 1 it holds", n)
	}
	if n := rows("SELECT COUNT(*) FROM connection_slots WHERE holder = $1 AND expires_at > clock_timestamp() + INTERVAL '30 seconds'", kept.ID); n != 1 {
		t.Error("Renew did not push the held slot's lease on")
	}

	// A release that failed: the node's next acquisition deletes its row
	// first, without waiting for the heartbeat.
	orphan, _, err := nb.Acquire(ctx, 5)
	must(t, err)
	l.mu.Lock()
	delete(l.held, orphan.ID)
	l.mu.Unlock()
	l.stale.Store(true)
	if _, _, err := nb.Acquire(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if n := rows("SELECT COUNT(*) FROM connection_slots WHERE holder = $1", orphan.ID); n != 0 || l.stale.Load() {
		t.Errorf("the row of a slot whose release failed is still there after the next acquisition (%d rows, stale %v)", n, l.stale.Load())
	}

	// A node that dies: its slots (short leases, never renewed) come free.
	na, err := a.ConnectionSlots(ctx, "node-a", 3, 500*time.Millisecond)
	must(t, err)
	for range 2 {
		if _, ok, err := na.Acquire(ctx, 6); err != nil || !ok {
			t.Fatal(ok, err)
		}
	}
	if _, ok, err := nb.Acquire(ctx, 6); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, ok, _ := nb.Acquire(ctx, 6); ok {
		t.Fatal("a 4th slot granted")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, ok, err := nb.Acquire(ctx, 6); err != nil {
			t.Fatal(err)
		} else if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slots of a node that stopped renewing never came free")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Started again under its name, node a frees its earlier run's slots.
	if _, ok, err := na.Acquire(ctx, 8); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, err := b.ConnectionSlots(ctx, "node-a", 3, time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := rows("SELECT COUNT(*) FROM connection_slots WHERE node = 'node-a'"); n != 0 {
		t.Errorf("%d rows of node a after it started again", n)
	}

	// The database unreachable: an error, and no slot.
	a.Close()
	if _, held, err := na.Acquire(ctx, 9); err == nil || held {
		t.Errorf("acquire without a database: held %v, err %v; want an error", held, err)
	}
	na.Release(ctx, limits.Slot{Mailbox: 9, ID: 1}) // must not panic or hang
}
