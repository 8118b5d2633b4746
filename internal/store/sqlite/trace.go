package sqlite

import (
	"context"
	"database/sql"
	"strconv"
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
// index lookup) or, for a * pattern, with LIKE (case-insensitive for ASCII,
// and an index range for a pattern with a fixed prefix).
func addressMatch(col, pattern string) string {
	if strings.Contains(pattern, "*") {
		return col + ` LIKE ? ESCAPE '\'`
	}
	return col + " = ? COLLATE NOCASE"
}

func addressArg(pattern string) string {
	if strings.Contains(pattern, "*") {
		return likePattern(pattern)
	}
	return pattern
}

// maxResolvedRecipientMessages is how many messages of one recipient
// MessageTrace looks up by id before it falls back to walking the
// organization's messages by time.
var maxResolvedRecipientMessages = 10000 // a variable for the tests of both ways

// byIDs replaces the organization condition when the messages' ids are
// known: the unary + keeps the condition but stops the planner from using
// it to walk the organization's messages by time (for the ORDER BY)
// instead of reading the few messages by id and sorting them.
const byIDs = "+m.org_id = ?"

// MessageTrace selects messages newest first, then reads their recipients'
// events and queue items.
func (s *Store) MessageTrace(ctx context.Context, q store.TraceQuery) ([]store.TracedMessage, error) {
	where := []string{"m.org_id = ?", "m.appended = 0"}
	args := []any{q.OrgID}
	if !q.Start.IsZero() {
		where, args = append(where, "m.received_at >= ?"), append(args, nanos(q.Start))
	}
	if !q.End.IsZero() {
		where, args = append(where, "m.received_at <= ?"), append(args, nanos(q.End))
	}
	if q.Sender != "" {
		where, args = append(where, addressMatch("m.envelope_from", q.Sender)), append(args, addressArg(q.Sender))
	}
	if q.MessageID != "" {
		// Resolved first through the Message-ID index: combined with the
		// ORDER BY, the planner would walk the organization's messages by
		// time instead.
		var ids []string
		err := each(ctx, s.r, "SELECT id FROM messages WHERE message_id = ?", func(rows *sql.Rows) error {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, strconv.FormatInt(id, 10))
			return nil
		}, strings.Trim(q.MessageID, "<>"))
		if err != nil || len(ids) == 0 {
			return nil, err
		}
		where = append(where, "m.id IN ("+strings.Join(ids, ",")+")")
		where[0] = byIDs
	}
	if q.Message != 0 {
		where, args = append(where, "m.id = ?"), append(args, q.Message)
	}
	if q.FromIP != "" {
		where, args = append(where, "m.client_ip = ?"), append(args, q.FromIP)
	}
	if q.Subject != "" {
		where, args = append(where, `LOWER(m.subject) LIKE ? ESCAPE '\'`), append(args, "%"+likePattern(q.Subject)+"%")
	}
	if q.Recipient != "" {
		recipientMessages := `SELECT e.message FROM trace_events e WHERE ` + addressMatch("e.recipient", q.Recipient) + `
			UNION SELECT u.message FROM queue u WHERE ` + addressMatch("u.recipient", q.Recipient)
		// A recipient's messages are usually few beside the organization's:
		// resolved first through the recipient indexes, they are read by
		// id and sorted, where the planner would otherwise walk every
		// message of the organization by time testing each one (177 ms
		// over 1,000,000 messages). A recipient with very many keeps that
		// walk, which then stops at the limit soon.
		var ids []string
		err := each(ctx, s.r, recipientMessages+` LIMIT `+strconv.Itoa(maxResolvedRecipientMessages+1), func(rows *sql.Rows) error {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, strconv.FormatInt(id, 10))
			return nil
		}, addressArg(q.Recipient), addressArg(q.Recipient))
		switch {
		case err != nil:
			return nil, err
		case len(ids) == 0:
			return nil, nil
		case len(ids) <= maxResolvedRecipientMessages:
			where = append(where, "m.id IN ("+strings.Join(ids, ",")+")")
			where[0] = byIDs
		default:
			where = append(where, "m.id IN ("+recipientMessages+")")
			args = append(args, addressArg(q.Recipient), addressArg(q.Recipient))
		}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	var out []store.TracedMessage
	index := map[int64]int{}
	err := each(ctx, s.r, `SELECT m.id, m.message_id, m.subject, m.envelope_from, m.client_ip, m.received_at, m.size,
		COALESCE(m.auth_mailbox, 0), m.auth_protocol, m.tls_version, m.inbound_connector, m.session_id
		FROM messages m WHERE `+strings.Join(where, " AND ")+` ORDER BY m.received_at DESC, m.id DESC LIMIT ?`,
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
		}, append(args, limit)...)
	if err != nil || len(out) == 0 {
		return out, err
	}
	ids := make([]any, 0, len(out))
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
		WHERE message IN (`+placeholders(len(ids))+`) AND recipient != '' AND event != 'DSN' ORDER BY id`, func(rows *sql.Rows) error {
		var msg int64
		var ev, rcpt, detail, remote string
		if err := rows.Scan(&msg, &ev, &rcpt, &detail, &remote); err != nil {
			return err
		}
		r := add(msg, rcpt)
		r.LastEvent, r.Detail, r.RemoteHost = ev, detail, remote
		return nil
	}, ids...)
	if err != nil {
		return nil, err
	}
	err = each(ctx, s.r, `SELECT message, recipient FROM queue WHERE message IN (`+placeholders(len(ids))+`) ORDER BY id`,
		func(rows *sql.Rows) error {
			var msg int64
			var rcpt string
			if err := rows.Scan(&msg, &rcpt); err != nil {
				return err
			}
			add(msg, rcpt).Queued = true
			return nil
		}, ids...)
	return out, err
}

// LogConnections appends refusals to the connection log in one
// transaction.
func (s *Store) LogConnections(ctx context.Context, events []store.ConnectionEvent) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, e := range events {
			if _, err := tx.ExecContext(ctx, `INSERT INTO connection_log (at, client_ip, role, event, sign_in, sender, recipient, reply, detail)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, nanos(e.At), e.ClientIP, e.Role, e.Event, e.SignIn, e.Sender, e.Recipient, e.Reply, e.Detail); err != nil {
				return err
			}
		}
		return nil
	})
}

// ConnectionLog reads the connection log, newest first.
func (s *Store) ConnectionLog(ctx context.Context, q store.ConnectionQuery) ([]store.ConnectionEvent, error) {
	where, args := []string{"1 = 1"}, []any{}
	if !q.Start.IsZero() {
		where, args = append(where, "at >= ?"), append(args, nanos(q.Start))
	}
	if !q.End.IsZero() {
		where, args = append(where, "at <= ?"), append(args, nanos(q.End))
	}
	if q.ClientIP != "" {
		where, args = append(where, "client_ip = ?"), append(args, q.ClientIP)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	var out []store.ConnectionEvent
	err := each(ctx, s.r, `SELECT at, client_ip, role, event, sign_in, sender, recipient, reply, detail FROM connection_log
		WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`, func(rows *sql.Rows) error {
		var e store.ConnectionEvent
		var at int64
		if err := rows.Scan(&at, &e.ClientIP, &e.Role, &e.Event, &e.SignIn, &e.Sender, &e.Recipient, &e.Reply, &e.Detail); err != nil {
			return err
		}
		e.At = fromNanos(at)
		out = append(out, e)
		return nil
	}, append(args, limit)...)
	return out, err
}

// pruneTraceEvents deletes the trace events recorded before the first one
// at or after cut, oldest first by ID, pruneBatch at a time. IDs follow
// the order events are committed in, and an event's time is when it
// happened, a few milliseconds before its commit at most (a Deliver event
// carries its message's receive time), so these are the events older than
// cut but for that skew; one recorded late with an older time waits for
// those before it. Walking the IDs needs no index on the time, which cost
// every commit group a B-tree insert per event (migration 026).
func (s *Store) pruneTraceEvents(ctx context.Context, cut int64) (int64, error) {
	return s.inBatches(ctx, func(tx *sql.Tx) (int64, bool, error) {
		var ids, ats []int64
		err := each(ctx, tx, "SELECT id, at FROM trace_events ORDER BY id LIMIT ?", func(rows *sql.Rows) error {
			var id, at int64
			if err := rows.Scan(&id, &at); err != nil {
				return err
			}
			ids, ats = append(ids, id), append(ats, at)
			return nil
		}, pruneBatch)
		if err != nil {
			return 0, false, err
		}
		due := 0
		for due < len(ats) && ats[due] < cut {
			due++
		}
		if due == 0 {
			return 0, false, nil
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM trace_events WHERE id <= ?", ids[due-1])
		if err != nil {
			return 0, false, err
		}
		n, err := res.RowsAffected()
		return n, due == pruneBatch, err
	})
}

// inBatches runs batch in a transaction of its own, again while it says
// there is more to delete, and adds up the rows it deleted.
func (s *Store) inBatches(ctx context.Context, batch func(tx *sql.Tx) (deleted int64, more bool, err error)) (int64, error) {
	var total int64
	for {
		var n int64
		var more bool
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			var err error
			n, more, err = batch(tx)
			return err
		})
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

// pruneBatch is how many rows one PruneTrace transaction deletes: each
// takes the single writer for a few milliseconds, so submissions waiting
// for the group committer are never held up for long. (A variable so that
// a test can see several batches without thousands of rows.)
var pruneBatch = 1000

// PruneTrace deletes, in transactions of at most pruneBatch rows, trace
// events older than before (pruneTraceEvents says how closely) and
// connection log entries older than before, then the messages
// received before it whose bodies were released (nothing refers to them),
// with their remaining events: message trace has nothing left to show for
// them, and Get-MessageTrace searches by the time a message was received.
func (s *Store) PruneTrace(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	cut := nanos(before)
	// The sign-in report keeps what the trace keeps: one row per day and
	// client, few enough to go in one statement.
	if err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM mailbox_sign_ins WHERE day < ?", before.UTC().Unix()/86400)
		if err == nil {
			n, _ := res.RowsAffected()
			total += n
		}
		return err
	}); err != nil {
		return total, err
	}
	n, err := s.pruneTraceEvents(ctx, cut)
	total += n
	if err != nil {
		return total, err
	}
	n, err = s.inBatches(ctx, func(tx *sql.Tx) (int64, bool, error) {
		res, err := tx.ExecContext(ctx, `DELETE FROM connection_log WHERE id IN (SELECT id FROM connection_log
			WHERE at < ? ORDER BY at LIMIT ?)`, cut, pruneBatch)
		if err != nil {
			return 0, false, err
		}
		n, err := res.RowsAffected()
		return n, n == int64(pruneBatch), err
	})
	total += n
	if err != nil {
		return total, err
	}
	n, err = s.inBatches(ctx, func(tx *sql.Tx) (int64, bool, error) {
		var ids []any
		err := each(ctx, tx, `SELECT id FROM messages WHERE body_released = 1 AND received_at < ?
			ORDER BY received_at LIMIT ?`, func(rows *sql.Rows) error {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
			return nil
		}, cut, pruneBatch)
		if err != nil || len(ids) == 0 {
			return 0, false, err
		}
		in := placeholders(len(ids))
		if _, err := tx.ExecContext(ctx, "DELETE FROM trace_events WHERE message IN ("+in+")", ids...); err != nil {
			return 0, false, err
		}
		// A message released meanwhile keeps no items; one filed again
		// (never happens today) would make the foreign keys refuse this.
		res, err := tx.ExecContext(ctx, "DELETE FROM messages WHERE body_released = 1 AND id IN ("+in+")", ids...)
		if err != nil {
			return 0, false, err
		}
		n, err := res.RowsAffected()
		return n, n == int64(pruneBatch), err
	})
	return total + n, err
}
