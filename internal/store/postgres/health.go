package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"postern.dev/postern/internal/store"
)

// Probe checks that the store takes writes and reads them back, for
// /readyz: it commits one tiny row and reads it. The database down or
// unreachable, a read-only standby, or a full disk makes it fail. Nodes
// share the row; each reads back a time at least as new as the one it
// wrote.
func (s *Store) Probe(ctx context.Context) error {
	now := time.Now().UnixNano()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO health_probe (id, at) VALUES (1, $1)
			ON CONFLICT (id) DO UPDATE SET at = GREATEST(health_probe.at, excluded.at)`, now)
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

// QueueStats returns the outbound queue's depth and oldest item per next
// hop (the recipient domain), the top n by depth, and everything else
// folded into one entry named "other" (see the SQLite store's).
func (s *Store) QueueStats(ctx context.Context, n int) ([]store.HopStats, error) {
	var out []store.HopStats
	other := store.HopStats{NextHop: "other"}
	err := each(ctx, s.r, `SELECT lower(substr(q.recipient, strpos(q.recipient, '@') + 1)) AS hop, count(*), min(m.received_at)
		FROM queue q JOIN messages m ON m.id = q.message WHERE q.mailbox_id IS NULL
		GROUP BY hop ORDER BY count(*) DESC, hop`, func(rows *sql.Rows) error {
		var h store.HopStats
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
