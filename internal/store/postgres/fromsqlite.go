package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"postern.dev/postern/internal/store/sqlite"
)

// notCopied are the tables CopyFromSQLite leaves alone: PostgreSQL's own
// bookkeeping (schema_version, health_probe), the limits the nodes share
// (send_counts, connection_slots, auth_failures, lockout_*: a single node
// keeps them in memory, and they start afresh), what triggers
// fill from the copied rows (mailbox_sizes, from folder_items; the
// directory change log, directory_changes and its pruning mark), the
// body blobs, written from the SQLite store's body files as the messages
// are copied, and the front ends' short-lived state (ephemeral: admins
// sign in to the admin center again).
var notCopied = map[string]bool{"schema_version": true, "health_probe": true, "send_counts": true,
	"connection_slots": true, "auth_failures": true, "auth_failures_size": true,
	"lockout_accounts": true, "lockout_familiar": true, "lockout_size": true,
	"mailbox_sizes": true, "body_blobs": true, "body_chunks": true,
	"directory_changes": true, "directory_changes_pruned": true, "ephemeral": true}

// CopyFromSQLite copies a single-node installation into this store, which
// must be empty (no organization, no message): every table's rows, with
// their IDs, from src (the SQLite store's database, its schema up to date,
// not in use), and the large bodies from the body files in bodiesDir. It
// runs in one transaction: on failure nothing was copied. It returns the
// number of rows copied per table.
//
// The two stores' tables have the same names and columns, except the
// messages' bodies: SQLite keeps a large message's rest in a body file
// (messages.body_file) and, for messages from before its migration 009,
// the whole body in messages.body; here the former becomes a blob
// (messages.body_blob) and the latter a message_bodies row.
func (s *Store) CopyFromSQLite(ctx context.Context, src *sql.DB, bodiesDir string) (map[string]int64, error) {
	var orgs, msgs int64
	if err := s.pool.QueryRow(ctx, "SELECT (SELECT COUNT(*) FROM organizations), (SELECT COUNT(*) FROM messages)").Scan(&orgs, &msgs); err != nil {
		return nil, internal(err)
	}
	if orgs+msgs > 0 {
		return nil, fmt.Errorf("the PostgreSQL database is not empty (%d organizations, %d messages): migrate into a new database", orgs, msgs)
	}
	tables, err := s.copyOrder(ctx)
	if err != nil {
		return nil, err
	}
	counts := map[string]int64{}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, internal(err)
	}
	defer tx.Rollback(ctx)
	var legacy []legacyBody
	for _, t := range tables {
		cols, types, err := s.sharedColumns(ctx, src, t)
		if err != nil {
			return nil, err
		}
		if len(cols) == 0 {
			continue // not in the SQLite store (yet): nothing to copy
		}
		var extra []string
		if t == "messages" {
			extra = []string{"body", "body_file", "body_released", "body_seg", "body_off", "size", "body_crc"}
		}
		rows, err := readRows(ctx, src, t, append(cols, extra...))
		if err != nil {
			return nil, err
		}
		if t == "messages" {
			cols, types = append(cols, "body_blob"), append(types, "bigint")
			for i, r := range rows {
				n := len(r) - len(extra)
				body, file, released := r[n], r[n+1], asBool(r[n+2])
				var blob any
				if f, ok := asString(file); ok && f != "" && !released {
					id, err := copyBodyFile(ctx, tx, filepath.Join(bodiesDir, filepath.Base(f)))
					if err != nil {
						return nil, fmt.Errorf("message %v: %w", r[0], err)
					}
					blob = id
				}
				if b := asBytes(body); len(b) > 0 && !released {
					legacy = append(legacy, legacyBody{r[0], b})
				}
				if seq, ok := r[n+3].(int64); ok && !released {
					// A body in a segment file (SQLite's migration 024)
					// becomes a row of message_bodies, as a small one is
					// here.
					off, _ := r[n+4].(int64)
					size, _ := r[n+5].(int64)
					crc, _ := r[n+6].(int64)
					b, err := sqlite.ReadSegmentBody(bodiesDir, seq, off, size, uint32(crc))
					if err != nil {
						return nil, fmt.Errorf("message %v: %w", r[0], err)
					}
					legacy = append(legacy, legacyBody{r[0], b})
				}
				rows[i] = append(r[:n], blob)
			}
		}
		for _, r := range rows {
			for i, v := range r {
				if r[i], err = convert(v, types[i]); err != nil {
					return nil, fmt.Errorf("table %s, column %s: %w", t, cols[i], err)
				}
			}
		}
		n, err := tx.CopyFrom(ctx, pgx.Identifier{t}, cols, pgx.CopyFromRows(rows))
		if err != nil {
			return nil, fmt.Errorf("copying table %s: %w", t, internal(err))
		}
		counts[t] = n
		if t == "message_bodies" {
			// Messages from before SQLite's migration 009 keep their
			// whole body in messages.body and have no row here.
			for _, l := range legacy {
				tag, err := tx.Exec(ctx, "INSERT INTO message_bodies (message, data) VALUES ($1, $2) ON CONFLICT (message) DO NOTHING", l.message, l.body)
				if err != nil {
					return nil, fmt.Errorf("message %v body: %w", l.message, internal(err))
				}
				counts[t] += tag.RowsAffected()
			}
		}
		// The copied rows keep their IDs: the identity continues after
		// the largest (an error would abort the transaction, so the
		// column is looked up first).
		var identity bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
			AND table_name = $1 AND column_name = 'id' AND (is_identity = 'YES' OR column_default LIKE 'nextval%'))`, t).Scan(&identity); err != nil {
			return nil, internal(err)
		}
		if identity && n > 0 {
			if _, err := tx.Exec(ctx, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%s', 'id'), MAX(id)) FROM %s`, t, t)); err != nil {
				return nil, fmt.Errorf("table %s identity: %w", t, internal(err))
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, internal(err)
	}
	return counts, nil
}

type legacyBody struct {
	message any
	body    []byte
}

// copyOrder lists the tables to copy, every table after those its foreign
// keys refer to.
func (s *Store) copyOrder(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename`)
	if err != nil {
		return nil, internal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, internal(err)
	}
	rows, err = s.pool.Query(ctx, `SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint
		WHERE contype = 'f' AND connamespace = current_schema()::regnamespace`)
	if err != nil {
		return nil, internal(err)
	}
	deps := map[string][]string{}
	err = forEach(rows, func(r pgx.Rows) error {
		var from, to string
		if err := r.Scan(&from, &to); err != nil {
			return err
		}
		if from != to {
			deps[from] = append(deps[from], to)
		}
		return nil
	})
	if err != nil {
		return nil, internal(err)
	}
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(t string) error
	visit = func(t string) error {
		switch state[t] {
		case 1:
			return fmt.Errorf("the tables' foreign keys form a cycle through %s", t)
		case 2:
			return nil
		}
		state[t] = 1
		sort.Strings(deps[t])
		for _, d := range deps[t] {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[t] = 2
		if !notCopied[t] {
			order = append(order, t)
		}
		return nil
	}
	for _, t := range tables {
		if err := visit(t); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func forEach(rows pgx.Rows, fn func(pgx.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// sharedColumns lists the columns table t has in both stores, with their
// PostgreSQL types; none when SQLite has no such table.
func (s *Store) sharedColumns(ctx context.Context, src *sql.DB, t string) (cols, types []string, err error) {
	have := map[string]bool{}
	rows, err := src.QueryContext(ctx, "SELECT name FROM pragma_table_info(?)", t)
	if err != nil {
		return nil, nil, fmt.Errorf("SQLite table %s: %w", t, err)
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return nil, nil, err
		}
		have[c] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	pr, err := s.pool.Query(ctx, `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, t)
	if err != nil {
		return nil, nil, internal(err)
	}
	err = forEach(pr, func(r pgx.Rows) error {
		var c, ty string
		if err := r.Scan(&c, &ty); err != nil {
			return err
		}
		if have[c] {
			cols, types = append(cols, c), append(types, ty)
		}
		return nil
	})
	return cols, types, internal(err)
}

// readRows reads every row of a SQLite table, in rowid order.
func readRows(ctx context.Context, src *sql.DB, t string, cols []string) ([][]any, error) {
	rows, err := src.QueryContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+t+" ORDER BY rowid")
	if err != nil {
		// A table WITHOUT ROWID has its primary key's order.
		rows, err = src.QueryContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+t)
	}
	if err != nil {
		return nil, fmt.Errorf("reading SQLite table %s: %w", t, err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("reading SQLite table %s: %w", t, err)
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

// convert turns a value as SQLite returns it (int64, float64, string,
// []byte, nil; SQLite has no booleans) into the PostgreSQL column's type.
func convert(v any, pgType string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch pgType {
	case "boolean":
		return asBool(v), nil
	case "bigint", "integer", "smallint":
		switch x := v.(type) {
		case int64:
			return x, nil
		case float64:
			return int64(x), nil
		case bool:
			if x {
				return int64(1), nil
			}
			return int64(0), nil
		}
	case "text", "character varying":
		if s, ok := asString(v); ok {
			return s, nil
		}
		return fmt.Sprint(v), nil
	case "bytea":
		return asBytes(v), nil
	case "double precision", "real":
		switch x := v.(type) {
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		}
	default:
		return v, nil
	}
	return nil, fmt.Errorf("a %T value (%v) for a %s column", v, v, pgType)
}

func asBool(v any) bool {
	switch x := v.(type) {
	case int64:
		return x != 0
	case bool:
		return x
	case float64:
		return x != 0
	}
	return false
}

func asString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case []byte:
		return string(x), true
	}
	return "", false
}

func asBytes(v any) []byte {
	switch x := v.(type) {
	case []byte:
		return x
	case string:
		return []byte(x)
	}
	return nil
}

// copyBodyFile stores a SQLite body file as a blob in tx.
func copyBodyFile(ctx context.Context, tx pgx.Tx, path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("body file: %w", err)
	}
	defer f.Close()
	var id int64
	if err := tx.QueryRow(ctx, "INSERT INTO body_blobs (created, size) VALUES ($1, 0) RETURNING id", time.Now().UnixNano()).Scan(&id); err != nil {
		return 0, internal(err)
	}
	buf := make([]byte, chunkSize)
	var size int64
	for seq := 0; ; seq++ {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			size += int64(n)
			if _, err := tx.Exec(ctx, "INSERT INTO body_chunks (blob, seq, data) VALUES ($1, $2, $3)", id, seq, buf[:n]); err != nil {
				return 0, internal(err)
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("body file %s: %w", path, err)
		}
	}
	_, err = tx.Exec(ctx, "UPDATE body_blobs SET size = $1 WHERE id = $2", size, id)
	return id, internal(err)
}

// TableCounts counts the rows of every table CopyFromSQLite copies, in
// this store or (src non-nil) in a SQLite database, for comparing the two.
func (s *Store) TableCounts(ctx context.Context, src *sql.DB) (map[string]int64, error) {
	tables, err := s.copyOrder(ctx)
	if err != nil {
		return nil, err
	}
	counts := map[string]int64{}
	for _, t := range tables {
		var n int64
		if src != nil && t == "message_bodies" {
			// Bodies the SQLite store keeps outside message_bodies (in
			// messages.body from before its migration 009, in segment
			// files since 024) are rows of it here.
			err = src.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM message_bodies) + (SELECT COUNT(*) FROM messages m
				WHERE body_released = 0 AND (body_seg IS NOT NULL
					OR (length(body) > 0 AND NOT EXISTS (SELECT 1 FROM message_bodies b WHERE b.message = m.id))))`).Scan(&n)
		} else if src != nil {
			err = src.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t).Scan(&n)
			if err != nil && strings.Contains(err.Error(), "no such table") {
				continue
			}
		} else {
			err = s.pool.QueryRow(ctx, "SELECT COUNT(*) FROM "+t).Scan(&n)
		}
		if err != nil {
			return nil, fmt.Errorf("counting %s: %w", t, err)
		}
		counts[t] = n
	}
	return counts, nil
}
