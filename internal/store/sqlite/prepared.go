package sqlite

import (
	"context"
	"database/sql"
	"slices"
)

// The statements every commit runs, once per message or per filed item.
// They are prepared once on the writer connection: database/sql would
// otherwise have SQLite parse and plan each one again at every execution,
// which was a third of the group committer's time per message in the
// profile of inbound mail (BENCHMARKS.md).
const (
	countSegmentBodiesSQL = `INSERT INTO body_segments (seq, live) VALUES (?, ?)
		ON CONFLICT (seq) DO UPDATE SET live = live + excluded.live`
	insertEventSQL = `INSERT INTO trace_events (message, at, event, recipient, detail, remote_host)
		VALUES (?, ?, ?, ?, ?, ?)`
	nextUIDSQL = `UPDATE folders SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1
		WHERE mailbox_id = ? AND name = ? RETURNING id, uid_next - 1, highest_modseq`
	reserveUIDsSQL = `UPDATE folders SET uid_next = uid_next + ?, highest_modseq = highest_modseq + ?
		WHERE mailbox_id = ? AND name = ? RETURNING id, uid_next, highest_modseq`
	// The same for several folders, given as a JSON array of [mailbox,
	// name, count]: json_each is scanned, each folder found by its unique
	// index (EXPLAIN QUERY PLAN: SEARCH folders USING INDEX).
	reserveFoldersUIDsSQL = `UPDATE folders SET uid_next = uid_next + r.n, highest_modseq = highest_modseq + r.n
		FROM (SELECT value ->> 0 AS mailbox, value ->> 1 AS name, value ->> 2 AS n FROM json_each(?)) AS r
		WHERE folders.mailbox_id = r.mailbox AND folders.name = r.name
		RETURNING folders.id, folders.mailbox_id, folders.name, folders.uid_next, folders.highest_modseq`
	// The item's size is the message's, given when known (the committer
	// knows it; a paced delivery looks it up).
	insertFolderItemSQL = `INSERT INTO folder_items (folder_id, message, received_at, uid, sysflags, modseq, size)
		VALUES (?, ?, ?, ?, ?, ?, COALESCE(?, (SELECT size FROM messages WHERE id = ?)))`
	deleteQueueItemSQL = "DELETE FROM queue WHERE id = ?"

	// Outbound delivery: a runner's claim of due items, and the release
	// of a body once its last queue item is done (releaseBodies), run per
	// batch and per delivered message.
	claimDueSQL = `SELECT q.id, q.message, m.org_id, m.message_id, m.subject, m.envelope_from, q.recipient,
			q.attempts, m.received_at, q.delay_notified, m.size
			FROM queue q JOIN messages m ON m.id = q.message
			WHERE q.mailbox_id IS NULL AND q.not_before <= ? AND q.leased_until <= ?
			ORDER BY q.not_before, q.id LIMIT ?`
	// The claimed IDs travel as one JSON array, so that the statement is
	// the same whatever their number, and prepared once.
	leaseClaimedSQL     = `UPDATE queue SET leased_until = ?, leased_by = ? WHERE id IN (SELECT value FROM json_each(?))`
	unreferencedBodySQL = `SELECT body_file, body_seg, body_off, size FROM messages m WHERE id = ? AND body_released = 0
			AND NOT EXISTS (SELECT 1 FROM folder_items i WHERE i.message = m.id)
			AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.message = m.id)`
	deleteBodySQL         = "DELETE FROM message_bodies WHERE message = ?"
	releaseBodySQL        = `UPDATE messages SET body = x'', body_file = NULL, body_seg = NULL, body_released = 1 WHERE id = ?`
	releaseSegmentBodySQL = `UPDATE body_segments SET live = live - 1 WHERE seq = ? RETURNING live`
	// lastMessageIDSQL is where a group's message IDs start (groupRows).
	lastMessageIDSQL = "SELECT COALESCE(MAX(id), 0) FROM messages"
)

// hotWrites are the statements above and a commit group's multi-row
// INSERTs (groupInserts).
var hotWrites = slices.Concat([]string{countSegmentBodiesSQL, insertEventSQL, nextUIDSQL, reserveUIDsSQL, reserveFoldersUIDsSQL,
	insertFolderItemSQL, deleteQueueItemSQL, claimDueSQL, leaseClaimedSQL, unreferencedBodySQL,
	deleteBodySQL, releaseBodySQL, releaseSegmentBodySQL, lastMessageIDSQL}, slices.Concat(groupInserts...))

// prepareWrites prepares hotWrites on db (the writer: one connection, so
// they are prepared on it before any transaction holds it).
func prepareWrites(db *sql.DB) (map[string]*sql.Stmt, error) {
	stmts := map[string]*sql.Stmt{}
	for _, q := range hotWrites {
		st, err := db.Prepare(q)
		if err != nil {
			closeStatements(stmts)
			return nil, err
		}
		stmts[q] = st
	}
	return stmts, nil
}

func closeStatements(stmts map[string]*sql.Stmt) {
	for _, st := range stmts {
		st.Close()
	}
}

// execer is what the write helpers need from a transaction: a plain
// *sql.Tx, or a preparedTx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// preparedTx runs a transaction's hot statements through the statements
// prepared on its connection, and any other statement as *sql.Tx does.
type preparedTx struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (s *Store) prepared(tx *sql.Tx) preparedTx { return preparedTx{tx, s.writes} }

func (p preparedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st, ok := p.stmts[query]; ok {
		// Bound to the transaction's connection, which already has it
		// prepared: no new parse (database/sql reuses it per connection).
		return p.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return p.tx.ExecContext(ctx, query, args...)
}

func (p preparedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st, ok := p.stmts[query]; ok {
		return p.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return p.tx.QueryRowContext(ctx, query, args...)
}

func (p preparedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st, ok := p.stmts[query]; ok {
		return p.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return p.tx.QueryContext(ctx, query, args...)
}
