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
	tables []string
	signal chan struct{}
}

func newHeard() *heard { return &heard{signal: make(chan struct{}, 100)} }

func (h *heard) changed(all bool, tables []string) {
	h.mu.Lock()
	if all {
		h.all++
	}
	h.tables = append(h.tables, tables...)
	h.mu.Unlock()
	h.signal <- struct{}{}
}

// wait waits (generously) until cond holds on what was heard.
func (h *heard) wait(t *testing.T, what string, cond func(all int, tables []string) bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		h.mu.Lock()
		ok := cond(h.all, h.tables)
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-h.signal:
		case <-deadline:
			h.mu.Lock()
			defer h.mu.Unlock()
			t.Fatalf("timed out waiting for %s; heard all=%d tables=%v", what, h.all, h.tables)
		}
	}
}

func has(tables []string, name string) bool {
	for _, t := range tables {
		if t == name {
			return true
		}
	}
	return false
}

// TestWatchDirectory: a change committed through one store (node) is
// heard by another's listener, named by its table; a rolled-back change is
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
	h.wait(t, "the first all=true", func(all int, _ []string) bool { return all == 1 })

	org := &directory.Organization{Name: "Contoso", GUID: "g"}
	must(t, a.SaveOrganization(ctx, org))
	h.wait(t, "organizations", func(_ int, tables []string) bool { return has(tables, "organizations") })
	m := &directory.Mailbox{OrgID: org.ID, GUID: "m", Name: "sean", PrimarySmtpAddress: "sean@contoso.com",
		UserPrincipalName: "sean@contoso.com", Type: directory.UserMailbox}
	must(t, a.SaveMailbox(ctx, m))
	h.wait(t, "mailboxes", func(_ int, tables []string) bool { return has(tables, "mailboxes") })

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
	h.wait(t, "all=true after reconnecting", func(all int, _ []string) bool { return all >= 2 })
	must(t, a.DeleteMailbox(ctx, m.ID))
	h.wait(t, "mailboxes again", func(_ int, tables []string) bool {
		n := 0
		for _, t := range tables {
			if t == "mailboxes" {
				n++
			}
		}
		return n >= 2
	})
	h.mu.Lock()
	if has(h.tables, "accepted_domains") {
		t.Errorf("a rolled-back change was heard: %v", h.tables)
	}
	h.mu.Unlock()

	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("WatchDirectory did not return after its context ended")
	}
}
