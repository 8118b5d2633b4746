package postgres

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"postern.dev/postern/internal/store"
)

// SaveAPIKey adds an API key.
func (s *Store) SaveAPIKey(ctx context.Context, k *store.APIKey) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO api_keys (org_id, name, role, key_hash, key_prefix, created, expires)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			k.OrgID, k.Name, k.Role, k.Hash, k.Prefix, nanos(k.Created), nanos(k.Expires)).Scan(&k.ID)
		if isConstraint(err) {
			return store.ErrConflict
		}
		return err
	})
}

const apiKeyColumns = `id, org_id, name, role, key_hash, key_prefix, created, last_used, expires`

func scanAPIKey(rows interface{ Scan(...any) error }) (store.APIKey, error) {
	var k store.APIKey
	var created, used, expires int64
	err := rows.Scan(&k.ID, &k.OrgID, &k.Name, &k.Role, &k.Hash, &k.Prefix, &created, &used, &expires)
	k.Created = fromNanos(created)
	if used != 0 {
		k.LastUsed = fromNanos(used)
	}
	if expires != 0 {
		k.Expires = fromNanos(expires)
	}
	return k, err
}

// APIKeys lists an organization's API keys by name.
func (s *Store) APIKeys(ctx context.Context, orgID int64) ([]store.APIKey, error) {
	var out []store.APIKey
	err := each(ctx, s.r, `SELECT `+apiKeyColumns+` FROM api_keys WHERE org_id = $1 ORDER BY lower(name), id`, func(rows *sql.Rows) error {
		k, err := scanAPIKey(rows)
		out = append(out, k)
		return err
	}, orgID)
	return out, err
}

// APIKeyByHash finds the key with a hash.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (*store.APIKey, error) {
	k, err := scanAPIKey(s.r.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE key_hash = $1`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// DeleteAPIKey removes an organization's key.
func (s *Store) DeleteAPIKey(ctx context.Context, orgID, id int64) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM api_keys WHERE org_id = $1 AND id = $2`, orgID, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
}

// TouchAPIKey records a key's last use.
func (s *Store) TouchAPIKey(ctx context.Context, id int64, at time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE api_keys SET last_used = $1 WHERE id = $2`, nanos(at), id)
		return err
	})
}
