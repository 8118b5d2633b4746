package sqlrow

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/store"
)

// Changes implements the directory change log's reads of store.Store
// (DirectoryChanges, LoadDirectoryObjects) in SQL both stores accept. A
// store embeds it, giving it its read transaction (one snapshot
// throughout), the query of its log's position (SQLite's sequence, or
// PostgreSQL's highest committed seq), its placeholders and its error
// mapping.
type Changes struct {
	// Dollar numbers placeholders $1... (PostgreSQL) instead of ?.
	Dollar bool
	// ReadTx begins a read-only transaction that reads one snapshot.
	ReadTx func(ctx context.Context) (*sql.Tx, error)
	// PositionQuery reads the change log's position.
	PositionQuery string
	// Internal marks a failure of the storage itself (store.ErrInternal).
	Internal func(error) error
}

// each runs a query and calls fn for every row.
func (c Changes) each(ctx context.Context, tx *sql.Tx, query string, fn func(*sql.Rows) error, args ...any) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return c.Internal(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return c.Internal(err)
		}
	}
	return c.Internal(rows.Err())
}

// DirectoryChanges implements store.Store: the rows changed after
// position after, from the change log the stores' triggers write.
func (c Changes) DirectoryChanges(ctx context.Context, after int64) (store.DirectoryChanges, error) {
	tx, err := c.ReadTx(ctx)
	if err != nil {
		return store.DirectoryChanges{}, c.Internal(err)
	}
	defer tx.Rollback()
	ph := "?"
	if c.Dollar {
		ph = "$1"
	}
	var ch store.DirectoryChanges
	var through int64
	if err := tx.QueryRowContext(ctx, `SELECT through FROM directory_changes_pruned`).Scan(&through); err != nil {
		return ch, c.Internal(err)
	}
	if after < through {
		ch.All = true
		return ch, nil
	}
	seen := make(map[directory.Key]bool)
	ch.Position = after
	err = c.each(ctx, tx, `SELECT seq, tbl, row_id FROM directory_changes WHERE seq > `+ph+` ORDER BY seq LIMIT `+fmt.Sprint(store.MaxDirectoryChanges+1),
		func(rows *sql.Rows) error {
			var k directory.Key
			if err := rows.Scan(&ch.Position, &k.Table, &k.ID); err != nil {
				return err
			}
			if !seen[k] {
				seen[k] = true
				ch.Keys = append(ch.Keys, k)
			}
			return nil
		}, after)
	if err != nil {
		return ch, err
	}
	if len(seen) > store.MaxDirectoryChanges {
		return store.DirectoryChanges{All: true}, nil
	}
	return ch, nil
}

// LoadDirectoryObjects implements store.Store: the rows keys names, read
// in one read transaction with the queries and scans LoadDirectory uses,
// so that both read a row alike. The IDs are integers written into the
// query: no placeholders.
func (c Changes) LoadDirectoryObjects(ctx context.Context, keys []directory.Key) (directory.Delta, error) {
	tx, err := c.ReadTx(ctx)
	if err != nil {
		return directory.Delta{}, c.Internal(err)
	}
	defer tx.Rollback()
	d := directory.Delta{
		Organizations:     map[int64]*directory.Organization{},
		Mailboxes:         map[int64]*directory.Mailbox{},
		Permissions:       map[int64]*directory.RecipientPermission{},
		MailboxPerms:      map[int64]*directory.MailboxPermission{},
		RestrictedSenders: map[int64]*directory.RestrictedSender{},
	}
	if len(keys) > store.MaxDirectoryChanges {
		return d, fmt.Errorf("%d directory rows asked for, at most %d: %w", len(keys), store.MaxDirectoryChanges, store.ErrInternal)
	}
	if err := tx.QueryRowContext(ctx, c.PositionQuery).Scan(&d.Position); err != nil {
		return d, c.Internal(err)
	}
	ids := make(map[string][]string)
	for _, k := range keys {
		if !k.Incremental() {
			return d, fmt.Errorf("directory row %s:%d cannot be read alone: %w", k.Table, k.ID, store.ErrInternal)
		}
		ids[k.Table] = append(ids[k.Table], fmt.Sprint(k.ID))
		// Absent until read: a row that no longer exists stays nil.
		switch k.Table {
		case directory.TableOrganizations:
			d.Organizations[k.ID] = nil
		case directory.TableMailboxes:
			d.Mailboxes[k.ID] = nil
		case directory.TablePermissions:
			d.Permissions[k.ID] = nil
		case directory.TableMailboxPerms:
			d.MailboxPerms[k.ID] = nil
		case directory.TableRestrictedSenders:
			d.RestrictedSenders[k.ID] = nil
		}
	}
	where := func(table string) string { return " WHERE id IN (" + strings.Join(ids[table], ", ") + ")" }
	if len(ids[directory.TableOrganizations]) > 0 {
		if err := c.each(ctx, tx, SelectOrganization+where(directory.TableOrganizations), func(rows *sql.Rows) error {
			o, err := ScanOrganization(rows)
			if err == nil {
				d.Organizations[o.ID] = o
			}
			return err
		}); err != nil {
			return d, err
		}
	}
	if len(ids[directory.TableMailboxes]) > 0 {
		if err := c.each(ctx, tx, SelectMailbox+where(directory.TableMailboxes), func(rows *sql.Rows) error {
			m, err := ScanMailbox(rows)
			if err == nil {
				d.Mailboxes[m.ID] = m
			}
			return err
		}); err != nil {
			return d, err
		}
	}
	if len(ids[directory.TablePermissions]) > 0 {
		if err := c.each(ctx, tx, SelectRecipientPermission+where(directory.TablePermissions), func(rows *sql.Rows) error {
			p, err := ScanRecipientPermission(rows)
			if err == nil {
				d.Permissions[p.ID] = p
			}
			return err
		}); err != nil {
			return d, err
		}
	}
	if len(ids[directory.TableMailboxPerms]) > 0 {
		if err := c.each(ctx, tx, SelectMailboxPermission+where(directory.TableMailboxPerms), func(rows *sql.Rows) error {
			p, err := ScanMailboxPermission(rows)
			if err == nil {
				d.MailboxPerms[p.ID] = p
			}
			return err
		}); err != nil {
			return d, err
		}
	}
	if len(ids[directory.TableRestrictedSenders]) > 0 {
		if err := c.each(ctx, tx, SelectRestrictedSender+where(directory.TableRestrictedSenders), func(rows *sql.Rows) error {
			r, err := ScanRestrictedSender(rows)
			if err == nil {
				d.RestrictedSenders[r.ID] = r
			}
			return err
		}); err != nil {
			return d, err
		}
	}
	return d, nil
}
