package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/testpg"
)

// heard collects what WatchDirectory reports.
type heard struct {
	mu     sync.Mutex
	all    int
	keys   []directory.Key
	signal chan struct{}
}

func newHeard() *heard { return &heard{signal: make(chan struct{}, 100)} }

func (h *heard) changed(all bool, keys []directory.Key) {
	h.mu.Lock()
	if all {
		h.all++
	}
	h.keys = append(h.keys, keys...)
	h.mu.Unlock()
	h.signal <- struct{}{}
}

// wait waits (generously) until cond holds on what was heard.
func (h *heard) wait(t *testing.T, what string, cond func(all int, keys []directory.Key) bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		h.mu.Lock()
		ok := cond(h.all, h.keys)
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-h.signal:
		case <-deadline:
			h.mu.Lock()
			defer h.mu.Unlock()
			t.Fatalf("timed out waiting for %s; heard all=%d keys=%v", what, h.all, h.keys)
		}
	}
}

// has reports whether keys name a row of table, or the key k itself.
func has(keys []directory.Key, table string) bool {
	for _, k := range keys {
		if k.Table == table {
			return true
		}
	}
	return false
}

func hasKey(keys []directory.Key, k directory.Key) bool { return count(keys, k) > 0 }

func count(keys []directory.Key, k directory.Key) int {
	n := 0
	for _, x := range keys {
		if x == k {
			n++
		}
	}
	return n
}

// TestWatchDirectory: a change committed through one store (node) is
// heard by another's listener, named by its row (migration 008) or, for the
// tables not applied row by row, by its table; a rolled-back change is
// not; a listener whose connection is killed reconnects by itself and
// reports all=true so that its node reads everything again.
func TestWatchDirectory(t *testing.T) {
	url := testpg.New(t)
	a, b := openTest(t, url), openTest(t, url)
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	h := newHeard()
	done := make(chan struct{})
	go func() { b.WatchDirectory(ctx, h.changed); close(done) }()
	h.wait(t, "the first all=true", func(all int, _ []directory.Key) bool { return all == 1 })

	org := &directory.Organization{Name: "Contoso", GUID: "g"}
	must(t, a.SaveOrganization(ctx, org))
	h.wait(t, "organizations", func(_ int, keys []directory.Key) bool {
		return hasKey(keys, directory.Key{Table: "organizations", ID: org.ID})
	})
	m := &directory.Mailbox{OrgID: org.ID, GUID: "m", Name: "sean", PrimarySmtpAddress: "sean@contoso.com",
		UserPrincipalName: "sean@contoso.com", Type: directory.UserMailbox}
	must(t, a.SaveMailbox(ctx, m))
	h.wait(t, "mailboxes", func(_ int, keys []directory.Key) bool {
		return hasKey(keys, directory.Key{Table: "mailboxes", ID: m.ID})
	})
	perm := &directory.RecipientPermission{OrgID: org.ID, Identity: m.ID, Trustee: m.ID}
	must(t, a.SavePermission(ctx, perm))
	h.wait(t, "the permission", func(_ int, keys []directory.Key) bool {
		return hasKey(keys, directory.Key{Table: "recipient_permissions", ID: perm.ID})
	})
	must(t, a.SaveDomain(ctx, &directory.AcceptedDomain{OrgID: org.ID, Name: "contoso.com", DomainName: "contoso.com",
		DomainType: directory.Authoritative}))
	h.wait(t, "accepted_domains, as a table", func(_ int, keys []directory.Key) bool {
		return hasKey(keys, directory.Key{Table: "accepted_domains"})
	})

	// A transaction that rolls back notifies nobody.
	tx, err := a.w.BeginTx(ctx, nil)
	must(t, err)
	_, err = tx.ExecContext(ctx, "UPDATE accepted_domains SET name = name")
	must(t, err)
	must(t, tx.Rollback())

	// Kill the listener's connection: it comes back and says all=true.
	_, err = a.w.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`)
	must(t, err)
	h.wait(t, "all=true after reconnecting", func(all int, _ []directory.Key) bool { return all >= 2 })
	must(t, a.DeleteMailbox(ctx, m.ID))
	// The cascade that removes the mailbox's permission is heard too.
	h.wait(t, "the mailbox and, by cascade, its permission again", func(_ int, keys []directory.Key) bool {
		return count(keys, directory.Key{Table: "mailboxes", ID: m.ID}) >= 2 &&
			count(keys, directory.Key{Table: "recipient_permissions", ID: perm.ID}) >= 2
	})
	h.mu.Lock()
	n := 0
	for _, k := range h.keys {
		if k.Table == "accepted_domains" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("heard accepted_domains %d times, want once (the rolled-back change is not heard): %v", n, h.keys)
	}
	h.mu.Unlock()

	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("WatchDirectory did not return after its context ended")
	}
}
