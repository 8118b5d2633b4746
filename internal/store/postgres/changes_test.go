package postgres

import (
	"context"
	"testing"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/testpg"
)

// TestDirectoryChangesPruned (as SQLite's): the change log keeps the last 10,000
// changes; a reader whose position the pruning passed is told to read
// everything (All), one within the kept window is not.
func TestDirectoryChangesPruned(t *testing.T) {
	s := openTest(t, testpg.New(t))
	defer s.Close()
	ctx := context.Background()
	c, err := s.LoadDirectory(ctx)
	must(t, err)
	// Through the triggers, as a bulk import writes: the organization
	// and 11,000 mailboxes log 11,001 changes.
	must(t, s.SaveOrganization(ctx, &directory.Organization{Name: "O", GUID: "g"}))
	_, err = s.w.ExecContext(ctx, `INSERT INTO mailboxes (org_id, guid, name, display_name, alias, primary_smtp_address,
		user_principal_name, email_addresses, type, password_hash, authentication_policy, recipient_limits, max_send_size,
		max_receive_size, grant_send_on_behalf_to, imap_enabled, pop_enabled, issue_warning_quota, prohibit_send_quota,
		prohibit_send_receive_quota, when_created)
		SELECT (SELECT id FROM organizations), 'g' || i, 'd' || i, 'd' || i, 'd' || i, 'd' || i || '@o.example', 'd' || i || '@o.example',
			'[]', 'UserMailbox', '', '', 500, 0, 0, '[]', true, true, 0, 0, 0, 1
		FROM generate_series(1, 10999) AS i`)
	must(t, err)
	var through, kept int64
	must(t, s.w.QueryRowContext(ctx, "SELECT through FROM directory_changes_pruned").Scan(&through))
	must(t, s.w.QueryRowContext(ctx, "SELECT count(*) FROM directory_changes").Scan(&kept))
	if through != c.Position+1000 || kept != 10000 {
		t.Errorf("pruned through %d keeping %d changes, want through %d keeping 10000", through, kept, c.Position+1000)
	}
	old, err := s.DirectoryChanges(ctx, c.Position)
	must(t, err)
	if !old.All {
		t.Errorf("a position pruned past: %d keys, not All", len(old.Keys))
	}
	recent, err := s.DirectoryChanges(ctx, c.Position+10990)
	must(t, err)
	if recent.All || len(recent.Keys) != 10 || recent.Position != c.Position+11000 {
		t.Errorf("the last 10 changes: All=%v, %d keys, position %d", recent.All, len(recent.Keys), recent.Position)
	}
	many, err := s.DirectoryChanges(ctx, c.Position+9000)
	must(t, err)
	if !many.All {
		t.Errorf("2,000 changes (more than MaxDirectoryChanges): %d keys, not All", len(many.Keys))
	}
}
