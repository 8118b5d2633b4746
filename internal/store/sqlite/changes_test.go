package sqlite

import (
	"context"
	"testing"
)

// TestDirectoryChangesPruned: the change log keeps the last 10,000
// changes; a reader whose position the pruning passed is told to read
// everything (All), one within the kept window is not.
func TestDirectoryChangesPruned(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	defer s.Close()
	ctx := context.Background()
	c, err := s.LoadDirectory(ctx)
	must(t, err)
	_, err = s.w.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 11000)
		INSERT INTO directory_changes (tbl, row_id) SELECT 'mailboxes', i FROM n`)
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
