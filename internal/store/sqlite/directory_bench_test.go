package sqlite

import (
	"context"
	"fmt"
	"testing"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/directory"
)

// bulkMailboxes adds n mailboxes device1..devicen@o.example to org in one
// statement (SaveMailbox would take a transaction and folders each).
func bulkMailboxes(b *testing.B, s *Store, org int64, n int) {
	_, err := s.w.Exec(`WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
		INSERT INTO mailboxes (org_id, guid, name, display_name, alias, primary_smtp_address,
		user_principal_name, email_addresses, type, password_hash, authentication_policy, recipient_limits, max_send_size,
		max_receive_size, grant_send_on_behalf_to, imap_enabled, pop_enabled, issue_warning_quota, prohibit_send_quota,
		prohibit_send_receive_quota, when_created)
		SELECT ?, 'g' || i, 'device' || i, 'device' || i, 'device' || i, 'device' || i || '@o.example', 'device' || i || '@o.example',
			'[]', 'UserMailbox', '', '', 500, 0, 0, '[]', 1, 1, 0, 0, 0, 1 FROM seq`, n, org)
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAdminChange measures one Set-CASMailbox through the admin
// service (validation, the write, and bringing this node's directory
// snapshot up to date) at 10,000 and 100,000 mailboxes. Before issue 14
// the snapshot was rebuilt from a full read after every change.
func BenchmarkAdminChange(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("mailboxes=%d", n), func(b *testing.B) {
			s, err := Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			org := &directory.Organization{Name: "O", GUID: "g"}
			if err := s.SaveOrganization(ctx, org); err != nil {
				b.Fatal(err)
			}
			bulkMailboxes(b, s, org.ID, n)
			svc := &admin.Service{Store: s, Dir: &directory.Current{}}
			if err := svc.Open(ctx); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				i++
				on := i%2 == 0
				if err := svc.UpdateCASMailbox(ctx, fmt.Sprintf("device%d@o.example", 1+i%n), admin.CASMailboxParams{ImapEnabled: &on}); err != nil {
					b.Fatal(err)
				}
			}
			if m := svc.Dir.Load().MailboxByAddress(fmt.Sprintf("device%d@o.example", 1+i%n)); m == nil || m.ImapEnabled != (i%2 == 0) {
				b.Fatalf("the last change is not in the snapshot: %+v", m)
			}
		})
	}
}
