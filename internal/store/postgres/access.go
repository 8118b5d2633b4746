package postgres

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"postern.dev/postern/internal/store"
)

// RecordSignIns adds counts to the sign-in report in one transaction. A
// row whose mailbox was removed since the sign-in is dropped.
func (s *Store) RecordSignIns(ctx context.Context, rows []store.SignIn) error {
	if len(rows) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO mailbox_sign_ins
			(org_id, day, protocol, mailbox_id, actor, client_ip, method, count, last_seen)
			SELECT $1, $2, $3, id, $4, $5, $6, $7, $8 FROM mailboxes WHERE id = $9
			ON CONFLICT (day, protocol, mailbox_id, actor, client_ip, method)
			DO UPDATE SET count = mailbox_sign_ins.count + excluded.count,
				last_seen = GREATEST(mailbox_sign_ins.last_seen, excluded.last_seen)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, r := range rows {
			at := r.LastSeen.UTC()
			if _, err := stmt.ExecContext(ctx, r.OrgID, at.Unix()/86400, r.Protocol, r.Actor, r.ClientIP, r.Method, r.Count,
				nanos(at), r.Mailbox); err != nil {
				return err
			}
		}
		return nil
	})
}

// SignInReport sums the sign-in report's rows of the UTC days from q.Start
// to q.End, most recent first.
func (s *Store) SignInReport(ctx context.Context, q store.SignInQuery) ([]store.SignIn, error) {
	var a args
	query := `SELECT org_id, protocol, mailbox_id, actor, client_ip, method, SUM(count)::bigint, MAX(last_seen)
		FROM mailbox_sign_ins WHERE org_id = ` + a.add(q.OrgID) + ` AND day >= ` + a.add(q.Start.UTC().Unix()/86400) +
		` AND day <= ` + a.add(q.End.UTC().Unix()/86400)
	if q.Protocol != "" {
		query += " AND protocol = " + a.add(q.Protocol)
	}
	if q.Mailbox != 0 {
		query += " AND mailbox_id = " + a.add(q.Mailbox)
	}
	query += " GROUP BY org_id, protocol, mailbox_id, actor, client_ip, method ORDER BY MAX(last_seen) DESC"
	if q.Limit > 0 {
		query += " LIMIT " + a.add(q.Limit)
	}
	var out []store.SignIn
	err := each(ctx, s.r, query, func(rows *sql.Rows) error {
		var r store.SignIn
		var last int64
		if err := rows.Scan(&r.OrgID, &r.Protocol, &r.Mailbox, &r.Actor, &r.ClientIP, &r.Method, &r.Count, &last); err != nil {
			return err
		}
		r.LastSeen = fromNanos(last)
		out = append(out, r)
		return nil
	}, a...)
	return out, err
}

// sizeCache holds mailbox sizes read from mailbox_sizes (which triggers on
// folder_items keep exact). An entry is dropped when this store changes the
// mailbox (a commit, a paced delivery, a removal) and read again, one
// primary-key lookup, at the next MailboxSize; entries older than
// store.MailboxSizeMaxAge are read again too, for writes made elsewhere.
type sizeCache struct {
	mu sync.Mutex
	m  map[int64]sizeEntry
}

type sizeEntry struct {
	bytes int64
	at    time.Time
}

// changed is said after a transaction that filed, changed or removed
// items of the given mailboxes committed: their cached sizes are read
// again, and sessions watching them (IMAP IDLE) are woken.
func (s *Store) changed(mailboxes ...int64) {
	s.sizes.forget(mailboxes...)
	s.notifyMailboxes(mailboxes...)
}

// grow adds bytes to the cached size of each mailbox, once per
// occurrence (a message filed twice into one mailbox counts twice, as the
// triggers count it). Mailboxes not cached are read when next asked; an
// entry keeps its age, so it is still read again within MailboxSizeMaxAge.
func (c *sizeCache) grow(bytes int64, ids ...int64) {
	c.mu.Lock()
	for _, id := range ids {
		if e, ok := c.m[id]; ok {
			e.bytes += bytes
			c.m[id] = e
		}
	}
	c.mu.Unlock()
}

func (c *sizeCache) forget(ids ...int64) {
	c.mu.Lock()
	for _, id := range ids {
		delete(c.m, id)
	}
	c.mu.Unlock()
}

// MailboxSize returns the bytes in a mailbox's folders (see store.Store).
func (s *Store) MailboxSize(mailbox int64) int64 {
	now := time.Now()
	s.sizes.mu.Lock()
	e, ok := s.sizes.m[mailbox]
	s.sizes.mu.Unlock()
	if ok && now.Sub(e.at) < store.MailboxSizeMaxAge {
		return e.bytes
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var bytes int64
	err := s.r.QueryRowContext(ctx, "SELECT bytes FROM mailbox_sizes WHERE mailbox_id = $1", mailbox).Scan(&bytes)
	switch {
	case err == sql.ErrNoRows:
		bytes = 0 // nothing filed yet
	case err != nil:
		return e.bytes // keep the last size known rather than guess
	}
	s.sizes.mu.Lock()
	if s.sizes.m == nil {
		s.sizes.m = map[int64]sizeEntry{}
	}
	s.sizes.m[mailbox] = sizeEntry{bytes: bytes, at: now}
	s.sizes.mu.Unlock()
	return bytes
}

// filedMailboxes lists the mailboxes a submission files into at once.
func filedMailboxes(sub *store.Submission) []int64 {
	var ids []int64
	if sub.SentItems != 0 {
		ids = append(ids, sub.SentItems)
	}
	for _, d := range sub.Local {
		if !d.NotBefore.After(sub.ReceivedAt) {
			ids = append(ids, d.Mailbox)
		}
	}
	return ids
}
