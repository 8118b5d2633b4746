package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/testpg"
)

// BenchmarkAdminChange measures one Set-CASMailbox at 10,000 and 100,000
// mailboxes on two nodes sharing the store:
//   - local: through node A's admin service (validation, the write, and
//     bringing A's snapshot up to date);
//   - remote-apply: what node B spends applying one such change it was
//     notified of (remoteApply);
//   - remote-e2e: from A's call to B's snapshot showing the change (A's
//     change, the notification, B's read and apply), without the
//     server's 20 ms gathering wait.
//
// Before issue 14 both nodes read and indexed the whole directory after
// every change.
func BenchmarkAdminChange(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("mailboxes=%d", n), func(b *testing.B) {
			url := testpg.New(b)
			sa, sb := openTest(b, url), openTest(b, url)
			defer sa.Close()
			defer sb.Close()
			ctx := context.Background()
			org := &directory.Organization{Name: "O", GUID: "g"}
			must(b, sa.SaveOrganization(ctx, org))
			_, err := sa.w.ExecContext(ctx, `INSERT INTO mailboxes (org_id, guid, name, display_name, alias, primary_smtp_address,
				user_principal_name, email_addresses, type, password_hash, authentication_policy, recipient_limits, max_send_size,
				max_receive_size, grant_send_on_behalf_to, imap_enabled, pop_enabled, issue_warning_quota, prohibit_send_quota,
				prohibit_send_receive_quota, when_created)
				SELECT $1, 'g' || i, 'device' || i, 'device' || i, 'device' || i, 'device' || i || '@o.example', 'device' || i || '@o.example',
					'[]', 'UserMailbox', '', '', 500, 0, 0, '[]', true, true, 0, 0, 0, 1
				FROM generate_series(1, $2) AS i`, org.ID, n)
			must(b, err)
			a := &admin.Service{Store: sa, Dir: &directory.Current{}}
			other := &admin.Service{Store: sb, Dir: &directory.Current{}}
			must(b, a.Open(ctx))
			must(b, other.Open(ctx))
			i := 0
			set := func() (string, bool) {
				i++
				on := i%2 == 0
				addr := fmt.Sprintf("device%d@o.example", 1+i%n)
				if err := a.UpdateCASMailbox(ctx, addr, admin.CASMailboxParams{ImapEnabled: &on}); err != nil {
					b.Fatal(err)
				}
				return addr, on
			}
			b.Run("local", func(b *testing.B) {
				for b.Loop() {
					set()
				}
			})
			b.Run("remote-apply", func(b *testing.B) {
				id := a.Dir.Load().MailboxByAddress("device1@o.example").ID
				for b.Loop() {
					must(b, remoteApply(ctx, other, id))
				}
			})
			b.Run("remote-e2e", func(b *testing.B) {
				wctx, cancel := context.WithCancel(ctx)
				defer cancel()
				applied := watchAndApply(wctx, sb, other)
				<-applied // listening, and read once
				for b.Loop() {
					addr, on := set()
					deadline := time.After(30 * time.Second)
					for {
						if m := other.Dir.Load().MailboxByAddress(addr); m != nil && m.ImapEnabled == on {
							break
						}
						select {
						case <-applied:
						case <-deadline:
							b.Fatal("node B never saw the change")
						}
					}
				}
			})
		})
	}
}
