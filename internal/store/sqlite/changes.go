package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/store"
	"postern.dev/postern/internal/store/sqlrow"
)

// positionQuery reads the directory change log's position: the last seq
// handed out (migration 020), which SQLite's one writer commits in order.
const positionQuery = `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'directory_changes'), 0)`

// DirectoryChanges lists the rows changed after position after, from the
// change log migration 020's triggers write; see store.Store.
func (s *Store) DirectoryChanges(ctx context.Context, after int64) (store.DirectoryChanges, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return store.DirectoryChanges{}, internal(err)
	}
	defer tx.Rollback()
	return directoryChanges(ctx, tx, after, "?")
}

// directoryChanges is DirectoryChanges in a read transaction; ph is the
// store's first placeholder.
func directoryChanges(ctx context.Context, tx *sql.Tx, after int64, ph string) (store.DirectoryChanges, error) {
	var ch store.DirectoryChanges
	var through int64
	if err := tx.QueryRowContext(ctx, `SELECT through FROM directory_changes_pruned`).Scan(&through); err != nil {
		return ch, internal(err)
	}
	if after < through {
		ch.All = true
		return ch, nil
	}
	seen := make(map[directory.Key]bool)
	ch.Position = after
	err := each(ctx, tx, `SELECT seq, tbl, row_id FROM directory_changes WHERE seq > `+ph+` ORDER BY seq LIMIT `+fmt.Sprint(store.MaxDirectoryChanges+1),
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

// LoadDirectoryObjects reads the rows keys names; see store.Store.
func (s *Store) LoadDirectoryObjects(ctx context.Context, keys []directory.Key) (directory.Delta, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return directory.Delta{}, internal(err)
	}
	defer tx.Rollback()
	return loadDirectoryObjects(ctx, tx, keys)
}

// loadDirectoryObjects reads keys' rows in tx, with the queries and scans
// LoadDirectory uses, so that both read a row alike. The IDs are integers
// written into the query: no placeholders, the same SQL in both stores.
func loadDirectoryObjects(ctx context.Context, tx *sql.Tx, keys []directory.Key) (directory.Delta, error) {
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
	if err := tx.QueryRowContext(ctx, positionQuery).Scan(&d.Position); err != nil {
		return d, internal(err)
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
		if err := each(ctx, tx, sqlrow.SelectOrganization+where(directory.TableOrganizations), func(rows *sql.Rows) error {
			o, err := sqlrow.ScanOrganization(rows)
			if err == nil {
				d.Organizations[o.ID] = o
			}
			return err
		}); err != nil {
			return d, err
		}
	}
	if len(ids[directory.TableMailboxes]) > 0 {
		if err := each(ctx, tx, sqlrow.SelectMailbox+where(directory.TableMailboxes), func(rows *sql.Rows) error {
			m, err := sqlrow.ScanMailbox(rows)
			if err == nil {
				d.Mailboxes[m.ID] = m
			}
			return err
		}); err != nil {
			return d, err
		}
	}
	if len(ids[directory.TablePermissions]) > 0 {
		if err := each(ctx, tx, sqlrow.SelectRecipientPermission+where(directory.TablePermissions), func(rows *sql.Rows) error {
			p, err := sqlrow.ScanRecipientPermission(rows)
			if err == nil {
				d.Permissions[p.ID] = p
			}
			return err
		}); err != nil {
			return d, err
		}
	}
	if len(ids[directory.TableMailboxPerms]) > 0 {
		if err := each(ctx, tx, sqlrow.SelectMailboxPermission+where(directory.TableMailboxPerms), func(rows *sql.Rows) error {
			p, err := sqlrow.ScanMailboxPermission(rows)
			if err == nil {
				d.MailboxPerms[p.ID] = p
			}
			return err
		}); err != nil {
			return d, err
		}
	}
	if len(ids[directory.TableRestrictedSenders]) > 0 {
		if err := each(ctx, tx, sqlrow.SelectRestrictedSender+where(directory.TableRestrictedSenders), func(rows *sql.Rows) error {
			r, err := sqlrow.ScanRestrictedSender(rows)
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
