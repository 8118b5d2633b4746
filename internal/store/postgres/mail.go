package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"postern.dev/postern/internal/metrics"
	"postern.dev/postern/internal/store"
)

type pendingCommit struct {
	sub  *store.Submission
	blob int64 // its body blob, 0 for none
	size int64
	done chan error
}

// Commit hands the submission to the group committer and waits until the
// transaction that holds it is durable. A spooled body is made durable
// as a blob of its own first, here, in the submitter's goroutine and
// its own transaction, so that concurrent large uploads are written in
// parallel rather than one after the other in the committer.
func (s *Store) Commit(ctx context.Context, sub *store.Submission) error {
	p := &pendingCommit{sub: sub, size: int64(len(sub.Body)), done: make(chan error, 1)}
	if sub.BodyFile != "" {
		var err error
		if p.blob, p.size, err = s.prepareBody(ctx, sub); err != nil {
			return fmt.Errorf("message body: %w", internal(err))
		}
	}
	select {
	case s.commits <- p:
		sub.Arrival.Arrived()
	case <-s.closing:
		s.removeBlobs(nonZero(p.blob))
		return errClosed
	case <-ctx.Done():
		s.removeBlobs(nonZero(p.blob))
		return ctx.Err()
	}
	// Once taken, the commit is seen through even if ctx ends: the client
	// may already be gone, but a half-known outcome must not be reported.
	return <-p.done
}

func nonZero(id int64) []int64 {
	if id == 0 {
		return nil
	}
	return []int64{id}
}

// Arrivals counts the messages being received that the group committer
// waits for.
func (s *Store) Arrivals() *store.Arrivals { return s.arrivals }

// commitLoop is the group committer: it takes every commit that is waiting,
// and those of messages still being received that reach it soon after
// (store.GatherGroup), writes them in one transaction (one WAL flush under
// synchronous_commit) and reports the outcome to each. While a batch is on
// its way to the disk, new commits queue up for the next one, so batches
// grow with the load.
func (s *Store) commitLoop() {
	defer s.done.Done()
	for {
		var first *pendingCommit
		select {
		case first = <-s.commits:
		case <-s.closing:
			s.drain()
			return
		}
		batch := store.GatherGroup(first, s.commits, maxBatch, s.arrivals, store.GroupLinger, s.closing)
		start := time.Now()
		s.commitBatch(batch)
		metrics.CommitSeconds.Observe(time.Since(start).Seconds())
		metrics.CommitBatch.Observe(float64(len(batch)))
	}
}

// drain fails commits that raced with Close rather than leaving them waiting.
func (s *Store) drain() {
	for {
		select {
		case p := <-s.commits:
			p.done <- errClosed
		default:
			return
		}
	}
}

func (s *Store) commitBatch(batch []*pendingCommit) {
	// The blobs were committed before (prepareBody): a row never refers
	// to a body that is not durable.
	err := s.commitPipelined(context.Background(), batch)
	if err != nil && len(batch) > 1 {
		// One bad submission must not fail its neighbours: retry each alone.
		for _, p := range batch {
			s.commitBatch([]*pendingCommit{p})
		}
		return
	}
	if err == nil {
		var touched []int64
		for _, p := range batch {
			filed := filedMailboxes(p.sub)
			// The sizes cached for the SMTP path's quota checks grow by
			// what was filed, rather than being read again at the next
			// RCPT: a commit costs no extra read per message.
			s.sizes.grow(p.size, filed...)
			touched = append(touched, filed...)
		}
		s.notifyMailboxes(touched...)
	}
	for _, p := range batch {
		if err != nil {
			p.sub.ID = 0
			s.removeBlobs(nonZero(p.blob))
		}
		p.done <- err
	}
}

// commitPipelined writes a batch in one transaction of four round trips
// to the database, whatever its size: BEGIN; the batch's message IDs,
// drawn from the sequence at once; every statement of every submission
// sent as one pipeline (pgx.Batch), which PostgreSQL runs in order; and
// COMMIT. Written one statement at a time, each message cost about eight
// round trips (its row, body, events, each filing and queue item) while
// the batch held its folders' locks; on a database across a network, or
// sharing the cores with the node, those waits were most of a commit.
// A deadlock or serialisation failure runs the transaction again, as
// inTx does.
func (s *Store) commitPipelined(ctx context.Context, batch []*pendingCommit) error {
	for attempt := 1; ; attempt++ {
		err := s.tryPipelined(ctx, batch)
		if c := pgCode(err); (c == deadlockDetected || c == serializationFail) && attempt < maxTxAttempts {
			continue
		}
		return internal(err)
	}
}

func (s *Store) tryPipelined(ctx context.Context, batch []*pendingCommit) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) // after Commit, a no-op
	ids, err := reserveMessageIDs(ctx, tx, len(batch))
	if err != nil {
		return err
	}
	var stmts []statement
	if lock, ok := batchFolderLock(batch); ok {
		stmts = append(stmts, lock)
	}
	for i, p := range batch {
		p.sub.ID = ids[i]
		stmts = append(stmts, submissionStatements(p.sub, p.blob, p.size)...)
	}
	b := &pgx.Batch{}
	for _, st := range stmts {
		b.Queue(st.sql, st.args...)
	}
	br := tx.SendBatch(ctx, b)
	for _, st := range stmts {
		tag, err := br.Exec()
		if err == nil {
			err = st.check(tag.RowsAffected())
		}
		if err != nil {
			br.Close()
			return err
		}
	}
	if err := br.Close(); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// reserveMessageIDs draws n message IDs from the messages table's
// sequence in one round trip, so that every statement of a batch can name
// its message without waiting for an INSERT ... RETURNING.
func reserveMessageIDs(ctx context.Context, tx pgx.Tx, n int) ([]int64, error) {
	rows, err := tx.Query(ctx, `SELECT nextval(pg_get_serial_sequence('messages', 'id')) FROM generate_series(1, $1)`, n)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err == nil && len(ids) != n {
		err = fmt.Errorf("the messages sequence gave %d IDs, want %d", len(ids), n)
	}
	return ids, err
}

// statement is one SQL statement of a submission, with its arguments.
// filing names the folder a filing statement puts an item into: it must
// change exactly one row, none meaning the folder is gone.
type statement struct {
	sql    string
	args   []any
	filing string
}

func (st statement) check(rows int64) error {
	if st.filing != "" && rows != 1 {
		return errors.New("folder " + st.filing + " of mailbox not found")
	}
	return nil
}

// batchFolderLock locks every folder a batch files into, in the order of
// their IDs, before anything is filed. Filing locks a folder's row (for
// its next UID); batches of several nodes filing in submission order
// would lock the same folders in different orders (one sender's Sent
// Items, then a shared recipient's Inbox, on one node; the reverse on
// another) and deadlock, each deadlock costing PostgreSQL's
// deadlock_timeout (1 s) before one batch is aborted and run again. In
// one global order, batches wait for each other instead. ok is false when
// the batch files into fewer than two folders: nothing to order.
func batchFolderLock(batch []*pendingCommit) (statement, bool) {
	var mailboxes []int64
	var names []string
	for _, p := range batch {
		if p.sub.SentItems != 0 {
			mailboxes, names = append(mailboxes, p.sub.SentItems), append(names, store.SentItems)
		}
		for _, d := range p.sub.Local {
			if !d.NotBefore.After(p.sub.ReceivedAt) {
				mailboxes, names = append(mailboxes, d.Mailbox), append(names, d.Folder)
			}
		}
	}
	if len(mailboxes) < 2 {
		return statement{}, false
	}
	return statement{sql: `SELECT f.id FROM folders f
		JOIN unnest($1::bigint[], $2::text[]) AS w(mailbox_id, name) ON f.mailbox_id = w.mailbox_id AND f.name = w.name
		ORDER BY f.id FOR UPDATE OF f`, args: []any{mailboxes, names}}, true
}

// insertSubmission writes a message row with its items one statement at
// a time, within tx (for the notices the outbound queue generates); blob
// is the rest of its body (0 when message_bodies holds all of it), size
// its whole size. It sets sub.ID.
func insertSubmission(ctx context.Context, tx *sql.Tx, sub *store.Submission, blob int64, size int64) error {
	if err := tx.QueryRowContext(ctx, `SELECT nextval(pg_get_serial_sequence('messages', 'id'))`).Scan(&sub.ID); err != nil {
		return err
	}
	for _, st := range submissionStatements(sub, blob, size) {
		res, err := tx.ExecContext(ctx, st.sql, st.args...)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		if err := st.check(n); err != nil {
			return err
		}
	}
	return nil
}

// submissionStatements are the statements that store sub, whose ID is
// drawn already: its message row and body, its trace events, the copy in
// the sender's Sent Items, its local deliveries (filed now, or queued
// until paced) and its outbound queue items. The one list serves the
// pipelined commit and insertSubmission alike.
func submissionStatements(sub *store.Submission, blob int64, size int64) []statement {
	var bodyBlob any
	if blob != 0 {
		bodyBlob = blob
	}
	var auth any
	if sub.AuthMailbox != 0 {
		auth = sub.AuthMailbox
	}
	now := nanos(sub.ReceivedAt)
	out := []statement{
		{sql: `INSERT INTO messages (id, org_id, message_id, subject, received_at, envelope_from,
		auth_mailbox, client_ip, recipients, size, body_blob, inbound_connector, auth_protocol, tls_version, session_id, external_recipients)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
			args: []any{sub.ID, sub.OrgID, sub.MessageID, sub.Subject, now, sub.EnvelopeFrom, auth, sub.ClientIP,
				sub.Recipients, size, bodyBlob, sub.InboundConnector, sub.AuthProtocol, sub.TLSVersion, sub.SessionID, sub.ExternalRecipients}},
		{sql: "INSERT INTO message_bodies (message, data) VALUES ($1, $2)", args: []any{sub.ID, nonNilBytes(sub.Body)}},
		// No Receive event: TraceEvents makes it from the message's row.
	}
	for _, e := range sub.Events {
		out = append(out, eventStatement(sub.ID, sub.ReceivedAt, e.Event, e.Recipient, e.Detail, e.RemoteHost))
	}
	if sub.SentItems != 0 {
		// The sender has read what it sent: Exchange files the copy read.
		out = append(out, fileStatement(sub.SentItems, store.SentItems, sub.ID, now, flagSeen, size))
	}
	for _, d := range sub.Local {
		if d.NotBefore.After(sub.ReceivedAt) {
			out = append(out, statement{sql: `INSERT INTO queue (message, recipient, mailbox_id, folder, not_before)
				VALUES ($1, $2, $3, $4, $5)`, args: []any{sub.ID, d.Recipient, d.Mailbox, d.Folder, nanos(d.NotBefore)}})
			continue
		}
		out = append(out, fileStatement(d.Mailbox, d.Folder, sub.ID, now, 0, size),
			eventStatement(sub.ID, sub.ReceivedAt, store.EventDeliver, d.Recipient, "Folder "+d.Folder, ""))
	}
	for _, d := range sub.Remote {
		out = append(out, statement{sql: `INSERT INTO queue (message, recipient, folder, not_before)
			VALUES ($1, $2, '', $3)`, args: []any{sub.ID, d.Recipient, max(nanos(d.NotBefore), now)}})
	}
	return out
}

// eventStatement records a message trace event.
func eventStatement(message int64, at time.Time, event, recipient, detail, remote string) statement {
	if at.IsZero() {
		at = time.Now()
	}
	return statement{sql: `INSERT INTO trace_events (message, at, event, recipient, detail, remote_host)
		VALUES ($1, $2, $3, $4, $5, $6)`, args: []any{message, nanos(at), event, recipient, detail, remote}}
}

// nonNilBytes keeps an empty body from being stored as NULL.
func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// fileItem puts message into a mailbox folder, unread (its size read
// from its row).
func fileItem(ctx context.Context, tx *sql.Tx, mailbox int64, folder string, message, at int64) error {
	st := fileStatement(mailbox, folder, message, at, 0, nil)
	res, err := tx.ExecContext(ctx, st.sql, st.args...)
	if err != nil {
		return err
	}
	n, _ := res.RowsAffected()
	return st.check(n)
}

// fileStatement puts message (of size bytes; nil: read from its row) into
// a mailbox folder with system flags (sysflag bits), giving it the
// folder's next UID and a new MODSEQ in the same statement, so that UIDs are strictly ascending in
// commit order (RFC 9051 section 2.3.1.1): the UPDATE locks the folder's
// row until the transaction ends. It changes no row if the folder is gone.
func fileStatement(mailbox int64, folder string, message, at int64, sysflags int, size any) statement {
	return statement{sql: `WITH f AS (UPDATE folders SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1
		WHERE mailbox_id = $1 AND name = $2 RETURNING id, uid_next - 1 AS uid, highest_modseq)
		INSERT INTO folder_items (folder_id, message, received_at, uid, sysflags, modseq, size)
		SELECT f.id, $3, $4, f.uid, $5, f.highest_modseq, COALESCE($6::bigint, (SELECT size FROM messages WHERE id = $3)) FROM f`,
		args: []any{mailbox, folder, message, at, sysflags, size}, filing: folder}
}

// DeliverDue files paced local deliveries whose time has come. A delivery
// whose mailbox was removed meanwhile was dropped with it (cascade).
func (s *Store) DeliverDue(ctx context.Context, now time.Time) (int, error) {
	type due struct {
		id, mailbox, message int64
		folder, recipient    string
	}
	var items []due
	err := each(ctx, s.r, `SELECT id, mailbox_id, message, folder, recipient FROM queue
		WHERE mailbox_id IS NOT NULL AND not_before <= $1 ORDER BY not_before LIMIT 500`, func(rows *sql.Rows) error {
		var d due
		if err := rows.Scan(&d.id, &d.mailbox, &d.message, &d.folder, &d.recipient); err != nil {
			return err
		}
		items = append(items, d)
		return nil
	}, nanos(now))
	if err != nil || len(items) == 0 {
		return 0, err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		for _, d := range items {
			res, err := tx.ExecContext(ctx, "DELETE FROM queue WHERE id = $1", d.id)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue // removed meanwhile
			}
			if err := fileItem(ctx, tx, d.mailbox, d.folder, d.message, nanos(now)); err != nil {
				return err
			}
			if err := insertEvent(ctx, tx, d.message, now, store.EventDeliver, d.recipient, "Folder "+d.folder, ""); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	var touched []int64
	for _, d := range items {
		touched = append(touched, d.mailbox)
	}
	s.changed(touched...)
	return len(items), nil
}

// RecipientHistory returns, per mailbox and submission, the recipients of
// authenticated submissions since the given time.
func (s *Store) RecipientHistory(ctx context.Context, since time.Time) ([]store.RecipientCount, error) {
	var out []store.RecipientCount
	err := each(ctx, s.r, `SELECT auth_mailbox, received_at, recipients, external_recipients FROM messages
		WHERE auth_mailbox IS NOT NULL AND received_at >= $1`, func(rows *sql.Rows) error {
		var c store.RecipientCount
		var at int64
		if err := rows.Scan(&c.Mailbox, &at, &c.Recipients, &c.External); err != nil {
			return err
		}
		c.At = fromNanos(at)
		out = append(out, c)
		return nil
	}, nanos(since))
	return out, err
}

// FolderStatistics counts the items and bytes in each of a mailbox's folders.
func (s *Store) FolderStatistics(ctx context.Context, mailbox int64) ([]store.FolderStatistics, error) {
	var out []store.FolderStatistics
	err := each(ctx, s.r, `SELECT f.name, f.type, COUNT(m.id), COALESCE(SUM(m.size), 0)::bigint
		FROM folders f LEFT JOIN folder_items i ON i.folder_id = f.id LEFT JOIN messages m ON m.id = i.message
		WHERE f.mailbox_id = $1 GROUP BY f.id ORDER BY f.id`, func(rows *sql.Rows) error {
		var f store.FolderStatistics
		if err := rows.Scan(&f.Name, &f.FolderType, &f.ItemsInFolder, &f.FolderSize); err != nil {
			return err
		}
		f.FolderPath = "/" + f.Name
		if f.FolderType == "Root" {
			f.FolderPath = "/"
		}
		out = append(out, f)
		return nil
	}, mailbox)
	return out, err
}

// FolderItems lists a folder's messages, oldest first.
func (s *Store) FolderItems(ctx context.Context, mailbox int64, folder string) ([]store.Item, error) {
	var out []store.Item
	err := each(ctx, s.r, `SELECT i.id, m.id, m.message_id, m.subject, m.envelope_from, i.received_at, m.size
		FROM folder_items i JOIN folders f ON f.id = i.folder_id JOIN messages m ON m.id = i.message
		WHERE f.mailbox_id = $1 AND f.name = $2 ORDER BY i.received_at, i.id`, func(rows *sql.Rows) error {
		var it store.Item
		var at int64
		if err := rows.Scan(&it.ID, &it.Message, &it.MessageID, &it.Subject, &it.From, &at, &it.Size); err != nil {
			return err
		}
		it.ReceivedAt = fromNanos(at)
		out = append(out, it)
		return nil
	}, mailbox, folder)
	return out, err
}

// QueueItems lists every queued delivery, soonest first.
func (s *Store) QueueItems(ctx context.Context) ([]store.QueueItem, error) {
	var out []store.QueueItem
	err := each(ctx, s.r, `SELECT q.id, q.message, m.message_id, m.subject, m.envelope_from, q.recipient,
		q.mailbox_id IS NOT NULL, q.not_before, q.attempts, q.last_error, m.size, m.received_at, q.leased_until, m.org_id
		FROM queue q JOIN messages m ON m.id = q.message ORDER BY q.not_before, q.id`, func(rows *sql.Rows) error {
		var q store.QueueItem
		var nb, rec, leased int64
		if err := rows.Scan(&q.ID, &q.Message, &q.MessageID, &q.Subject, &q.FromAddress, &q.Recipient, &q.Local,
			&nb, &q.Attempts, &q.LastError, &q.Size, &rec, &leased, &q.OrgID); err != nil {
			return err
		}
		q.NotBefore, q.ReceivedAt = fromNanos(nb), fromNanos(rec)
		if leased != 0 {
			q.LeasedUntil = fromNanos(leased)
		}
		out = append(out, q)
		return nil
	})
	return out, err
}
