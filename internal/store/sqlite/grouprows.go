package sqlite

import (
	"context"
	"strings"
	"time"
)

// groupRows collects the rows a transaction adds for the messages it
// stores (a commit group, the notices of a batch of delivery outcomes) and
// writes each table's with a few multi-row INSERTs at the end, instead of
// one statement per row. In the profile of relay, a row's own INSERT cost
// about a third more than the row itself: database/sql's statement, the
// driver binding each argument, the VDBE starting and resetting the
// program. Rows of one statement share that (BENCHMARKS.md, "Fourth run").
//
// Messages get their IDs here, before their rows are written (messageID),
// so that the rows referring to them can be collected too; the tables are
// written in an order that satisfies the foreign keys (flush), each
// table's rows in the order they were added, so that a message's trace
// events keep the order of their IDs (trace.go reads them by message and
// ID).
type groupRows struct {
	// nextID is the ID the next message gets; 0 until the first is asked
	// for.
	nextID                                 int64
	messages, bodies, items, events, queue rowSet
}

// rowSet is one table's rows: cols values per row, one after the other.
type rowSet struct {
	stmts []string // multiRowInserts
	cols  int
	args  []any
}

// The statements that insert 1<<k rows (1 to maxRowsPerInsert) at index k,
// prepared with the other hot statements (prepared.go): n rows take at most
// one statement per bit of n below 32, and one per 32 rows above.
var (
	insertMessagesSQL = multiRowInserts(`INSERT INTO messages (id, org_id, message_id, subject, received_at, envelope_from,
		auth_mailbox, client_ip, recipients, size, body, body_file, inbound_connector, auth_protocol, tls_version, session_id, external_recipients,
		body_seg, body_off, body_crc) VALUES `, 20)
	insertBodiesSQL = multiRowInserts("INSERT INTO message_bodies (message, data) VALUES ", 2)
	insertItemsSQL  = multiRowInserts("INSERT INTO folder_items (folder_id, message, received_at, uid, sysflags, modseq, size) VALUES ", 7)
	insertEventsSQL = multiRowInserts("INSERT INTO trace_events (message, at, event, recipient, detail, remote_host) VALUES ", 6)
	insertQueueSQL  = multiRowInserts("INSERT INTO queue (message, recipient, mailbox_id, folder, not_before) VALUES ", 5)
	groupInserts    = [][]string{insertMessagesSQL, insertBodiesSQL, insertItemsSQL, insertEventsSQL, insertQueueSQL}
)

// maxRowsPerInsert is the most rows one statement carries: 32 × 20
// arguments, far below SQLite's limit of 32,766 (SQLITE_MAX_VARIABLE_NUMBER).
const maxRowsPerInsert = 32

func multiRowInserts(head string, cols int) []string {
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	var out []string
	for n := 1; n <= maxRowsPerInsert; n *= 2 {
		out = append(out, head+row+strings.Repeat(", "+row, n-1))
	}
	return out
}

func newGroupRows() *groupRows {
	set := func(stmts []string) rowSet { return rowSet{stmts: stmts, cols: strings.Count(stmts[0], "?")} }
	return &groupRows{messages: set(insertMessagesSQL), bodies: set(insertBodiesSQL), items: set(insertItemsSQL),
		events: set(insertEventsSQL), queue: set(insertQueueSQL)}
}

// messageID gives the next message its ID: one past the highest in the
// table, as SQLite itself would (the table has no AUTOINCREMENT). The
// writer is the only one, and the transaction holds it, so that nobody
// else takes the IDs meanwhile.
func (g *groupRows) messageID(ctx context.Context, tx execer) (int64, error) {
	if g.nextID == 0 {
		var last int64
		if err := tx.QueryRowContext(ctx, lastMessageIDSQL).Scan(&last); err != nil {
			return 0, err
		}
		g.nextID = last + 1
	}
	g.nextID++
	return g.nextID - 1, nil
}

// event adds a trace event; a zero at is now.
func (g *groupRows) event(message int64, at time.Time, event, recipient, detail, remote string) {
	g.events.args = append(g.events.args, message, eventAt(at), event, recipient, detail, remote)
}

// item adds a folder item with its UID and MODSEQ.
func (g *groupRows) item(folderID, message, at, uid int64, sysflags int, modseq, size int64) {
	g.items.args = append(g.items.args, folderID, message, at, uid, sysflags, modseq, size)
}

// flush writes the rows collected, messages first (everything else refers
// to them), and forgets them.
func (g *groupRows) flush(ctx context.Context, tx execer) error {
	for _, set := range []*rowSet{&g.messages, &g.bodies, &g.items, &g.events, &g.queue} {
		if err := set.insert(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}

// insert writes the set's rows with the largest statements that fit what is
// left, in order, and forgets them.
func (r *rowSet) insert(ctx context.Context, tx execer) error {
	for args := r.args; len(args) > 0; {
		k := len(r.stmts) - 1
		for (r.cols << k) > len(args) {
			k--
		}
		n := r.cols << k
		if _, err := tx.ExecContext(ctx, r.stmts[k], args[:n]...); err != nil {
			return err
		}
		args = args[n:]
	}
	r.args = r.args[:0]
	return nil
}
