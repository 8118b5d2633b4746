package postgres

import (
	"context"
	"testing"

	"postern.dev/postern/internal/store/storetest"

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
	storetest.CheckPrunedChanges(t, s, s.w, c.Position)
}
