package postgres

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/limits"
	"postern.dev/postern/internal/testpg"
)

// BenchmarkSendingReserve measures one limit check on the shared counters
// (postern_reserve_send: the recipient window, the hourly counts and
// pacing in one round trip), from one goroutine and from many, each on
// its own mailbox.
func BenchmarkSendingReserve(b *testing.B) {
	s := openTest(b, testpg.New(b))
	defer s.Close()
	ctx := context.Background()
	c := s.Sending(1 << 30) // pacing never holds back: the cost, not the rule
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Reserve(ctx, 1, limits.Count{Internal: 1}, time.Now(), nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			mb := 100 + next.Add(1)
			for pb.Next() {
				if _, err := c.Reserve(ctx, mb, limits.Count{Internal: 1}, time.Now(), nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkDirectoryChange measures what a node pays for a directory
// change at 10,000 mailboxes: reading the whole directory and indexing it
// (what every node does after a change), and the time from one node's
// committed Set-CASMailbox-like update to another node's listener hearing
// of it.
func BenchmarkDirectoryChange(b *testing.B) {
	url := testpg.New(b)
	s := openTest(b, url)
	defer s.Close()
	ctx := context.Background()
	org := &directory.Organization{Name: "O", GUID: "g"}
	must(b, s.SaveOrganization(ctx, org))
	const n = 10000
	// Bulk set-up in one statement (SaveMailbox would take a transaction
	// and folders per mailbox).
	_, err := s.w.ExecContext(ctx, `INSERT INTO mailboxes (org_id, guid, name, display_name, alias, primary_smtp_address,
		user_principal_name, email_addresses, type, password_hash, authentication_policy, recipient_limits, max_send_size,
		max_receive_size, grant_send_on_behalf_to, imap_enabled, pop_enabled, issue_warning_quota, prohibit_send_quota,
		prohibit_send_receive_quota, when_created)
		SELECT $1, 'g' || i, 'device' || i, 'device' || i, 'device' || i, 'device' || i || '@o.example', 'device' || i || '@o.example',
			'[]', 'UserMailbox', '', '', 500, 0, 0, '[]', true, true, 0, 0, 0, 1
		FROM generate_series(1, $2) AS i`, org.ID, n)
	must(b, err)
	b.Run("read+index", func(b *testing.B) {
		for b.Loop() {
			c, err := s.LoadDirectory(ctx)
			if err != nil || len(c.Mailboxes) != n {
				b.Fatal(err, len(c.Mailboxes))
			}
			directory.NewSnapshot(c)
		}
	})
	b.Run("index", func(b *testing.B) {
		c, err := s.LoadDirectory(ctx)
		must(b, err)
		for b.Loop() {
			directory.NewSnapshot(c)
		}
	})
	b.Run("notify", func(b *testing.B) {
		other := openTest(b, url)
		defer other.Close()
		heard := make(chan struct{}, 16)
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go other.WatchDirectory(wctx, func(all bool, _ []directory.Key) { heard <- struct{}{} })
		<-heard // connected
		for b.Loop() {
			if _, err := s.w.ExecContext(ctx, "UPDATE mailboxes SET imap_enabled = NOT imap_enabled WHERE id = (SELECT MIN(id) FROM mailboxes)"); err != nil {
				b.Fatal(err)
			}
			select {
			case <-heard:
			case <-time.After(30 * time.Second):
				b.Fatal("no notification")
			}
		}
	})
}
