package sqlite

import (
	"context"
	"database/sql"
	"strings"

	"postern.dev/postern/internal/store"
)

// AppendAudit records an admin change.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO admin_audit_log (org_id, at, caller, cmdlet, parameters, object, succeeded, error)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, e.OrgID, nanos(e.At), e.Caller, e.Cmdlet, e.Parameters, e.Object, e.Succeeded, e.Error)
		return err
	})
}

// SearchAudit reads audit entries, newest first.
func (s *Store) SearchAudit(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error) {
	where, args := []string{"org_id = ?"}, []any{q.OrgID}
	if !q.Start.IsZero() {
		where, args = append(where, "at >= ?"), append(args, nanos(q.Start))
	}
	if !q.End.IsZero() {
		where, args = append(where, "at <= ?"), append(args, nanos(q.End))
	}
	if len(q.Cmdlets) > 0 {
		where = append(where, "cmdlet COLLATE NOCASE IN ("+placeholders(len(q.Cmdlets))+")")
		for _, c := range q.Cmdlets {
			args = append(args, c)
		}
	}
	if q.Object != "" {
		where, args = append(where, "object = ? COLLATE NOCASE"), append(args, q.Object)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	var out []store.AuditEntry
	err := each(ctx, s.r, `SELECT org_id, at, caller, cmdlet, parameters, object, succeeded, error FROM admin_audit_log
		WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`, func(rows *sql.Rows) error {
		var e store.AuditEntry
		var at int64
		if err := rows.Scan(&e.OrgID, &at, &e.Caller, &e.Cmdlet, &e.Parameters, &e.Object, &e.Succeeded, &e.Error); err != nil {
			return err
		}
		e.At = fromNanos(at)
		out = append(out, e)
		return nil
	}, append(args, limit)...)
	return out, err
}
