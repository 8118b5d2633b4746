package sqlrow

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"postern.dev/postern/internal/store"
)

// Ephemeral implements store.Ephemeral in SQL that SQLite and PostgreSQL
// both accept but for their placeholders. A store embeds it, giving it its
// own transactions (InTx: the SQLite store's one writer, the PostgreSQL
// store's retry of a deadlocked transaction), its reader and its error
// mapping.
type Ephemeral struct {
	// Dollar numbers the placeholders $1, $2... (PostgreSQL) instead of
	// SQLite's ?.
	Dollar bool
	// InTx runs fn in a write transaction, committed when fn returns nil.
	InTx func(ctx context.Context, fn func(*sql.Tx) error) error
	// DB reads outside a transaction.
	DB *sql.DB
	// Internal marks a failure of the storage itself (store.ErrInternal).
	Internal func(error) error
}

var _ store.Ephemeral = Ephemeral{}

// q writes query's ? placeholders as the database wants them.
func (e Ephemeral) q(query string) string {
	if !e.Dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// PutEphemeral implements store.Ephemeral: past max records of its kind,
// it removes those nearest to expiry (the expired ones first), never the
// one just written.
func (e Ephemeral) PutEphemeral(ctx context.Context, kind string, key, value []byte, expires time.Time, max int) error {
	return e.InTx(ctx, func(tx *sql.Tx) error { return e.put(ctx, tx, kind, key, value, expires, max) })
}

func (e Ephemeral) put(ctx context.Context, tx *sql.Tx, kind string, key, value []byte, expires time.Time, max int) error {
	if _, err := tx.ExecContext(ctx, e.q(`INSERT INTO ephemeral (kind, key, value, expires) VALUES (?, ?, ?, ?)
		ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, expires = excluded.expires`),
		kind, key, value, Nanos(expires)); err != nil {
		return err
	}
	if max <= 0 {
		return nil
	}
	var n int
	if err := tx.QueryRowContext(ctx, e.q(`SELECT count(*) FROM ephemeral WHERE kind = ?`), kind).Scan(&n); err != nil || n <= max {
		return err
	}
	_, err := tx.ExecContext(ctx, e.q(`DELETE FROM ephemeral WHERE kind = ? AND key IN
		(SELECT key FROM ephemeral WHERE kind = ? AND key <> ? ORDER BY expires LIMIT ?)`), kind, kind, key, n-max)
	return err
}

// GetEphemeral implements store.Ephemeral.
func (e Ephemeral) GetEphemeral(ctx context.Context, kind string, key []byte, now time.Time) ([]byte, error) {
	var v []byte
	err := e.DB.QueryRowContext(ctx, e.q(`SELECT value FROM ephemeral WHERE kind = ? AND key = ? AND expires > ?`),
		kind, key, Nanos(now)).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return v, e.Internal(err)
}

// TakeEphemeral implements store.Ephemeral: one DELETE ... RETURNING, so
// that of two takers one gets the record. An expired record is removed
// all the same, and not returned.
func (e Ephemeral) TakeEphemeral(ctx context.Context, kind string, key []byte, now time.Time) ([]byte, error) {
	var v []byte
	var expires int64
	err := e.InTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, e.q(`DELETE FROM ephemeral WHERE kind = ? AND key = ? RETURNING value, expires`),
			kind, key).Scan(&v, &expires)
	})
	if errors.Is(err, sql.ErrNoRows) || (err == nil && expires <= Nanos(now)) {
		return nil, store.ErrNotFound
	}
	return v, err
}

// DeleteEphemeral implements store.Ephemeral.
func (e Ephemeral) DeleteEphemeral(ctx context.Context, kind string, key []byte) error {
	return e.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, e.q(`DELETE FROM ephemeral WHERE kind = ? AND key = ?`), kind, key)
		return err
	})
}

// SweepEphemeral implements store.Ephemeral.
func (e Ephemeral) SweepEphemeral(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := e.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, e.q(`DELETE FROM ephemeral WHERE expires <= ?`), Nanos(now))
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	return n, err
}
