package postgres

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"postern.dev/postern/internal/store"
)

// likePattern turns a * wildcard pattern into a LIKE pattern (with \ as
// the escape character).
func likePattern(p string) string {
	r := strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`, "*", "%")
	return r.Replace(strings.ToLower(p))
}

// addressMatch compares an address column without case: by equality (an
// index lookup on lower(col)) or, for a * pattern, with LIKE on the
// lowered column (an index range for a pattern with a fixed prefix, with
// the C collation this store's indexes are built for).
func addressMatch(a *args, col, pattern string) string {
	if strings.Contains(pattern, "*") {
		return "lower(" + col + ") LIKE " + a.add(likePattern(pattern)) + ` ESCAPE '\'`
	}
	return "lower(" + col + ") = lower(" + a.add(pattern) + ")"
}

// MessageTrace selects messages newest first, then reads their recipients'
// events and queue items.
func (s *Store) MessageTrace(ctx context.Context, q store.TraceQuery) ([]store.TracedMessage, error) {
	var a args
	where := []string{"m.org_id = " + a.add(q.OrgID), "NOT m.appended"}
	if !q.Start.IsZero() {
		where = append(where, "m.received_at >= "+a.add(nanos(q.Start)))
	}
	if !q.End.IsZero() {
		where = append(where, "m.received_at <= "+a.add(nanos(q.End)))
	}
	if q.Sender != "" {
		where = append(where, addressMatch(&a, "m.envelope_from", q.Sender))
	}
	if q.MessageID != "" {
		// Resolved first through the Message-ID index, as on SQLite.
		var ids []int64
		err := each(ctx, s.r, "SELECT id FROM messages WHERE message_id = $1", func(rows *sql.Rows) error {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
			return nil
		}, strings.Trim(q.MessageID, "<>"))
		if err != nil || len(ids) == 0 {
			return nil, err
		}
		where = append(where, "m.id = ANY("+a.add(ids)+")")
	}
	if q.Message != 0 {
		where = append(where, "m.id = "+a.add(q.Message))
	}
	if q.FromIP != "" {
		where = append(where, "m.client_ip = "+a.add(q.FromIP))
	}
	if q.Subject != "" {
		where = append(where, `LOWER(m.subject) LIKE `+a.add("%"+likePattern(q.Subject)+"%")+` ESCAPE '\'`)
	}
	if q.Recipient != "" {
		where = append(where, `m.id IN (SELECT e.message FROM trace_events e WHERE `+addressMatch(&a, "e.recipient", q.Recipient)+`
			UNION SELECT u.message FROM queue u WHERE `+addressMatch(&a, "u.recipient", q.Recipient)+`)`)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	var out []store.TracedMessage
	index := map[int64]int{}
	err := each(ctx, s.r, `SELECT m.id, m.message_id, m.subject, m.envelope_from, m.client_ip, m.received_at, m.size,
		COALESCE(m.auth_mailbox, 0), m.auth_protocol, m.tls_version, m.inbound_connector, m.session_id
		FROM messages m WHERE `+strings.Join(where, " AND ")+` ORDER BY m.received_at DESC, m.id DESC LIMIT `+a.add(limit),
		func(rows *sql.Rows) error {
			var t store.TracedMessage
			var at int64
			if err := rows.Scan(&t.Message, &t.MessageID, &t.Subject, &t.Sender, &t.ClientIP, &at, &t.Size,
				&t.AuthMailbox, &t.AuthProtocol, &t.TLSVersion, &t.Connector, &t.SessionID); err != nil {
				return err
			}
			t.ReceivedAt = fromNanos(at)
			index[t.Message] = len(out)
			out = append(out, t)
			return nil
		}, a...)
	if err != nil || len(out) == 0 {
		return out, err
	}
	ids := make([]int64, 0, len(out))
	for _, t := range out {
		ids = append(ids, t.Message)
	}
	// A recipient's state is its last event; one still in the queue and
	// never tried has none.
	type key struct {
		msg  int64
		rcpt string
	}
	pos := map[key]int{}
	add := func(msg int64, rcpt string) *store.TracedRecipient {
		k := key{msg, strings.ToLower(rcpt)}
		t := &out[index[msg]]
		if i, ok := pos[k]; ok {
			return &t.Recipients[i]
		}
		pos[k] = len(t.Recipients)
		t.Recipients = append(t.Recipients, store.TracedRecipient{Address: rcpt})
		return &t.Recipients[len(t.Recipients)-1]
	}
	err = each(ctx, s.r, `SELECT message, event, recipient, detail, remote_host FROM trace_events
		WHERE message = ANY($1) AND recipient <> '' AND event <> 'DSN' ORDER BY id`, func(rows *sql.Rows) error {
		var msg int64
		var ev, rcpt, detail, remote string
		if err := rows.Scan(&msg, &ev, &rcpt, &detail, &remote); err != nil {
			return err
		}
		r := add(msg, rcpt)
		r.LastEvent, r.Detail, r.RemoteHost = ev, detail, remote
		return nil
	}, ids)
	if err != nil {
		return nil, err
	}
	err = each(ctx, s.r, `SELECT message, recipient FROM queue WHERE message = ANY($1) ORDER BY id`,
		func(rows *sql.Rows) error {
			var msg int64
			var rcpt string
			if err := rows.Scan(&msg, &rcpt); err != nil {
				return err
			}
			add(msg, rcpt).Queued = true
			return nil
		}, ids)
	return out, err
}

// LogConnections appends refusals to the connection log in one
// transaction.
func (s *Store) LogConnections(ctx context.Context, events []store.ConnectionEvent) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, e := range events {
			if _, err := tx.ExecContext(ctx, `INSERT INTO connection_log (at, client_ip, role, event, sign_in, sender, recipient, reply, detail)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, nanos(e.At), e.ClientIP, e.Role, e.Event, e.SignIn, e.Sender, e.Recipient, e.Reply, e.Detail); err != nil {
				return err
			}
		}
		return nil
	})
}

// ConnectionLog reads the connection log, newest first.
func (s *Store) ConnectionLog(ctx context.Context, q store.ConnectionQuery) ([]store.ConnectionEvent, error) {
	var a args
	where := []string{"true"}
	if !q.Start.IsZero() {
		where = append(where, "at >= "+a.add(nanos(q.Start)))
	}
	if !q.End.IsZero() {
		where = append(where, "at <= "+a.add(nanos(q.End)))
	}
	if q.ClientIP != "" {
		where = append(where, "client_ip = "+a.add(q.ClientIP))
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	var out []store.ConnectionEvent
	err := each(ctx, s.r, `SELECT at, client_ip, role, event, sign_in, sender, recipient, reply, detail FROM connection_log
		WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT `+a.add(limit), func(rows *sql.Rows) error {
		var e store.ConnectionEvent
		var at int64
		if err := rows.Scan(&at, &e.ClientIP, &e.Role, &e.Event, &e.SignIn, &e.Sender, &e.Recipient, &e.Reply, &e.Detail); err != nil {
			return err
		}
		e.At = fromNanos(at)
		out = append(out, e)
		return nil
	}, a...)
	return out, err
}

// pruneBatch is how many rows one PruneTrace transaction deletes: each
// takes the single writer for a few milliseconds, so submissions waiting
// for the group committer are never held up for long. (A variable so that
// a test can see several batches without thousands of rows.)
var pruneBatch = 1000

// PruneTrace deletes, in transactions of at most pruneBatch rows, trace
// events and connection log entries older than before, then the messages
// received before it whose bodies were released (nothing refers to them),
// with their remaining events: message trace has nothing left to show for
// them, and Get-MessageTrace searches by the time a message was received.
func (s *Store) PruneTrace(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	cut := nanos(before)
	// The sign-in report keeps what the trace keeps: one row per day and
	// client, few enough to go in one statement.
	if err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM mailbox_sign_ins WHERE day < $1", before.UTC().Unix()/86400)
		if err == nil {
			n, _ := res.RowsAffected()
			total += n
		}
		return err
	}); err != nil {
		return total, err
	}
	for _, table := range []string{"trace_events", "connection_log"} {
		for {
			var n int64
			err := s.inTx(ctx, func(tx *sql.Tx) error {
				res, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE id IN (SELECT id FROM "+table+
					" WHERE at < $1 ORDER BY at LIMIT $2)", cut, pruneBatch)
				if err != nil {
					return err
				}
				n, err = res.RowsAffected()
				return err
			})
			total += n
			if err != nil {
				return total, err
			}
			if n < int64(pruneBatch) {
				break
			}
		}
	}
	for {
		var n int64
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			var ids []int64
			err := each(ctx, tx, `SELECT id FROM messages WHERE body_released AND received_at < $1
				ORDER BY received_at LIMIT $2`, func(rows *sql.Rows) error {
				var id int64
				if err := rows.Scan(&id); err != nil {
					return err
				}
				ids = append(ids, id)
				return nil
			}, cut, pruneBatch)
			if err != nil || len(ids) == 0 {
				return err
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM trace_events WHERE message = ANY($1)", ids); err != nil {
				return err
			}
			// A message released meanwhile keeps no items; one filed again
			// (never happens today) would make the foreign keys refuse this.
			res, err := tx.ExecContext(ctx, "DELETE FROM messages WHERE body_released AND id = ANY($1)", ids)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		total += n
		if err != nil {
			return total, err
		}
		if n < int64(pruneBatch) {
			return total, nil
		}
	}
}
