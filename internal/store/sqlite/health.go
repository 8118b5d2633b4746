package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"postern.dev/postern/internal/store"
)

// Probe checks that the store takes writes and reads them back, for
// /readyz: it commits one tiny row through the writer and reads it through
// the reader pool. A full disk, a read-only file system or a database
// locked by another process makes it fail. The table is created on first
// use (not by a migration): it holds one row and nothing depends on it.
func (s *Store) Probe(ctx context.Context) error {
	now := time.Now().UnixNano()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS health_probe (id INTEGER PRIMARY KEY, at INTEGER NOT NULL)"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT OR REPLACE INTO health_probe (id, at) VALUES (1, ?)", now)
		return err
	})
	if err != nil {
		return err
	}
	var at int64
	if err := s.r.QueryRowContext(ctx, "SELECT at FROM health_probe WHERE id = 1").Scan(&at); err != nil {
		return internal(err)
	}
	if at < now {
		return fmt.Errorf("health probe: read back %d, wrote %d", at, now)
	}
	return nil
}

// HopStats is the outbound queue's backlog for one next hop.
type HopStats = store.HopStats

// QueueStats returns the outbound queue's depth and oldest item per next
// hop (the recipient domain), the top n by depth, and everything else
// folded into one entry named "other", so that a metric built on it has at
// most n+1 label values whatever the queue holds.
func (s *Store) QueueStats(ctx context.Context, n int) ([]HopStats, error) {
	var out []HopStats
	other := HopStats{NextHop: "other"}
	err := each(ctx, s.r, `SELECT lower(substr(q.recipient, instr(q.recipient, '@') + 1)) AS hop, count(*), min(m.received_at)
		FROM queue q JOIN messages m ON m.id = q.message WHERE q.mailbox_id IS NULL
		GROUP BY hop ORDER BY count(*) DESC, hop`, func(rows *sql.Rows) error {
		var h HopStats
		var oldest int64
		if err := rows.Scan(&h.NextHop, &h.Depth, &oldest); err != nil {
			return err
		}
		h.Oldest = time.Unix(0, oldest)
		if len(out) < n {
			out = append(out, h)
			return nil
		}
		other.Depth += h.Depth
		if other.Oldest.IsZero() || h.Oldest.Before(other.Oldest) {
			other.Oldest = h.Oldest
		}
		return nil
	})
	if other.Depth > 0 {
		out = append(out, other)
	}
	return out, err
}
