package postgres

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"postern.dev/postern/internal/store"
)

// PutEphemeral implements store.Ephemeral.
func (s *Store) PutEphemeral(ctx context.Context, kind string, key, value []byte, expires time.Time, max int) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO ephemeral (kind, key, value, expires) VALUES ($1, $2, $3, $4)
			ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, expires = excluded.expires`,
			kind, key, value, nanos(expires)); err != nil {
			return err
		}
		if max <= 0 {
			return nil
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM ephemeral WHERE kind = $1`, kind).Scan(&n); err != nil || n <= max {
			return err
		}
		// Over the cap: the records nearest to expiry go first (the
		// expired ones are nearest of all).
		_, err := tx.ExecContext(ctx, `DELETE FROM ephemeral WHERE kind = $1 AND key IN
			(SELECT key FROM ephemeral WHERE kind = $2 AND key <> $3 ORDER BY expires LIMIT $4)`, kind, kind, key, n-max)
		return err
	})
}

// GetEphemeral implements store.Ephemeral.
func (s *Store) GetEphemeral(ctx context.Context, kind string, key []byte, now time.Time) ([]byte, error) {
	var v []byte
	err := s.r.QueryRowContext(ctx, `SELECT value FROM ephemeral WHERE kind = $1 AND key = $2 AND expires > $3`,
		kind, key, nanos(now)).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return v, internal(err)
}

// TakeEphemeral implements store.Ephemeral: one DELETE ... RETURNING, so
// that of two takers one gets the record.
func (s *Store) TakeEphemeral(ctx context.Context, kind string, key []byte, now time.Time) ([]byte, error) {
	var v []byte
	var expires int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `DELETE FROM ephemeral WHERE kind = $1 AND key = $2 RETURNING value, expires`,
			kind, key).Scan(&v, &expires)
	})
	if errors.Is(err, sql.ErrNoRows) || (err == nil && expires <= nanos(now)) {
		return nil, store.ErrNotFound
	}
	return v, err
}

// DeleteEphemeral implements store.Ephemeral.
func (s *Store) DeleteEphemeral(ctx context.Context, kind string, key []byte) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM ephemeral WHERE kind = $1 AND key = $2`, kind, key)
		return err
	})
}

// SweepEphemeral implements store.Ephemeral.
func (s *Store) SweepEphemeral(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM ephemeral WHERE expires <= $1`, nanos(now))
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	return n, err
}
