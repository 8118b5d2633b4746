package postgres

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
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, e.OrgID, nanos(e.At), e.Caller, e.Cmdlet, e.Parameters, e.Object, e.Succeeded, e.Error)
		return err
	})
}

// SearchAudit reads audit entries, newest first.
func (s *Store) SearchAudit(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error) {
	var a args
	where := []string{"org_id = " + a.add(q.OrgID)}
	if !q.Start.IsZero() {
		where = append(where, "at >= "+a.add(nanos(q.Start)))
	}
	if !q.End.IsZero() {
		where = append(where, "at <= "+a.add(nanos(q.End)))
	}
	if len(q.Cmdlets) > 0 {
		lowered := make([]string, len(q.Cmdlets))
		for i, c := range q.Cmdlets {
			lowered[i] = strings.ToLower(c)
		}
		where = append(where, "lower(cmdlet) = ANY("+a.add(lowered)+")")
	}
	if q.Object != "" {
		where = append(where, "lower(object) = lower("+a.add(q.Object)+")")
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	var out []store.AuditEntry
	err := each(ctx, s.r, `SELECT org_id, at, caller, cmdlet, parameters, object, succeeded, error FROM admin_audit_log
		WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT `+a.add(limit), func(rows *sql.Rows) error {
		var e store.AuditEntry
		var at int64
		if err := rows.Scan(&e.OrgID, &at, &e.Caller, &e.Cmdlet, &e.Parameters, &e.Object, &e.Succeeded, &e.Error); err != nil {
			return err
		}
		e.At = fromNanos(at)
		out = append(out, e)
		return nil
	}, a...)
	return out, err
}
