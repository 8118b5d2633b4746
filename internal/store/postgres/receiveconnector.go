package postgres

import (
	"context"
	"database/sql"
)

// ReceiveConnectorLevels returns each listener's protocol logging level
// that was ever set, by identity.
func (s *Store) ReceiveConnectorLevels(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	err := each(ctx, s.r, `SELECT identity, protocol_logging_level FROM receive_connectors`, func(rows *sql.Rows) error {
		var id, level string
		if err := rows.Scan(&id, &level); err != nil {
			return err
		}
		out[id] = level
		return nil
	})
	return out, err
}

// SetReceiveConnectorLevel stores a listener's protocol logging level.
func (s *Store) SetReceiveConnectorLevel(ctx context.Context, identity, level string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO receive_connectors (identity, protocol_logging_level) VALUES ($1, $2)
			ON CONFLICT (identity) DO UPDATE SET protocol_logging_level = excluded.protocol_logging_level`, identity, level)
		return err
	})
}
