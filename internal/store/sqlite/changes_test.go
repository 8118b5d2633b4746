package sqlite

import (
	"context"
	"testing"

	"postern.dev/postern/internal/store/storetest"
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
	storetest.CheckPrunedChanges(t, s, s.w, c.Position)
}
