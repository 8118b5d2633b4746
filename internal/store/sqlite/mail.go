package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"postern.dev/postern/internal/metrics"
	"postern.dev/postern/internal/store"
)

// errClosed is returned to commits that arrive after Close.
var errClosed = errors.New("store is closed")

type pendingCommit struct {
	sub  *store.Submission
	body bodyPlace
	seg  *segment // the segment body is in, referenced until the commit ends
	done chan error
}

// bodyPlace says where a message's body goes besides its row: a body file
// (a spooled upload), a place in a segment (seq > 0), or neither (the
// body is a row of message_bodies). size is the whole message's size.
type bodyPlace struct {
	file     string
	size     int64
	seq, off int64
	crc      uint32
}

// Commit hands the submission to the group committer and waits until the
// transaction that holds it is durable. Its body's place is taken first,
// here: a spooled body is made durable under its own name, one held in
// memory gets a place in the current segment, which its commit group
// fills (segments.go).
func (s *Store) Commit(ctx context.Context, sub *store.Submission) error {
	p := &pendingCommit{sub: sub, body: bodyPlace{size: int64(len(sub.Body))}, done: make(chan error, 1)}
	switch {
	case sub.BodyFile != "":
		var err error
		if p.body.file, p.body.size, err = s.prepareBody(sub); err != nil {
			return fmt.Errorf("body file: %w", err)
		}
	case len(sub.Body) > 0:
		seg, off, err := s.segs.reserve(int64(len(sub.Body)))
		if err != nil {
			return fmt.Errorf("body: %w", err)
		}
		p.seg, p.body.seq, p.body.off, p.body.crc = seg, seg.seq, off, bodyCRC(sub.Body)
	}
	select {
	case s.commits <- p:
		sub.Arrival.Arrived()
	case <-s.closing:
		p.abandon(s)
		return errClosed
	case <-ctx.Done():
		p.abandon(s)
		return ctx.Err()
	}
	// Once taken, the commit is seen through even if ctx ends: the client
	// may already be gone, but a half-known outcome must not be reported.
	return <-p.done
}

// abandon gives back what a commit that never reached the committer took:
// its body file, its segment reference (its place in the segment stays
// unwritten, a hole, until the segment is removed).
func (p *pendingCommit) abandon(s *Store) {
	s.removeBodies(nonEmpty(p.body.file))
	if p.seg != nil {
		s.segs.release(p.seg)
	}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// Arrivals counts the messages being received that the group committer
// waits for.
func (s *Store) Arrivals() *store.Arrivals { return s.arrivals }

// commitLoop is the group committer: it takes every commit that is waiting,
// and those of messages still being received that reach it soon after
// (store.GatherGroup), writes them in one transaction (one fsync under
// synchronous=FULL) and reports the outcome to each. While a batch is on
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
		s.ckpt.beforeGroup(s.w)
		start := time.Now()
		s.commitBatch(batch)
		metrics.CommitSeconds.Observe(time.Since(start).Seconds())
		s.ckpt.committedGroup(batch)
		metrics.CommitBatch.Observe(float64(len(batch)))
	}
}

// drain fails commits that raced with Close rather than leaving them waiting.
func (s *Store) drain() {
	for {
		select {
		case p := <-s.commits:
			p.abandon(s)
			p.done <- errClosed
		default:
			return
		}
	}
}

// commitBatch commits a group: the new names in the bodies directory made
// durable first, then the group's bodies written into their places in the
// segments while its rows are inserted, the transaction committed once
// both are done (no reader may see a row whose body is not in place), and
// the segments synced while SQLite syncs the transaction; each commit is
// reported once both syncs have returned (segments.go says why a crash in
// between loses nothing reported).
func (s *Store) commitBatch(batch []*pendingCommit) {
	errs := make([]error, len(batch)) // each one's rows
	err := s.nameBodies(batch)
	var segs *segmentWrites
	if err == nil {
		segs = writeSegments(batch)
		err = s.insertBatch(batch, errs, segs.waitWritten)
	}
	for i := range errs {
		if errs[i] == nil {
			errs[i] = err
		}
	}
	var segErr error
	if segs != nil {
		segErr = segs.waitSynced()
	}
	var touched []int64
	for i, p := range batch {
		if errs[i] != nil {
			continue
		}
		filed := filedMailboxes(p.sub)
		// The sizes cached for the SMTP path's quota checks grow by what
		// was filed, rather than being read again at the next RCPT: a
		// commit costs no extra read per message.
		s.sizes.grow(p.body.size, filed...)
		touched = append(touched, filed...)
	}
	if len(touched) > 0 {
		s.hub.Notify(touched...)
	}
	for i, p := range batch {
		if errs[i] != nil {
			p.sub.ID = 0
			s.removeBodies(nonEmpty(p.body.file))
		}
		if p.seg != nil {
			s.segs.release(p.seg)
		}
		if errs[i] == nil && p.seg != nil && segErr != nil {
			// The rows are in, but the body may not be durable: the
			// sender is told to try again (a duplicate is better than a
			// loss).
			errs[i] = segErr
		}
		p.done <- errs[i]
	}
}

// nameBodies makes the batch's new names in the bodies directory durable
// (body files, and a segment started since the last group): one directory
// fsync, before any row refers to one.
func (s *Store) nameBodies(batch []*pendingCommit) error {
	need := false
	for _, p := range batch {
		if p.body.file != "" || (p.seg != nil && !p.seg.named.Load()) {
			need = true
			break
		}
	}
	if !need {
		return nil
	}
	if err := s.syncBodiesDir(); err != nil {
		return err
	}
	for _, p := range batch {
		if p.seg != nil {
			p.seg.named.Store(true)
		}
	}
	return nil
}

// segmentWrites is how far writeSegments has come: written is closed once
// every body of the group is in its place (in the page cache, as a reader
// would see it), synced once the segments are durable too; each error is
// the first failure, set before its channel closes.
type segmentWrites struct {
	written, synced   chan struct{}
	writeErr, syncErr error
}

// waitWritten waits until the bodies are in place. It may be called more
// than once (insertBatch commits each message alone after a failure).
func (w *segmentWrites) waitWritten() error {
	<-w.written
	return w.writeErr
}

// waitSynced waits until the segments are durable (or failed).
func (w *segmentWrites) waitSynced() error {
	<-w.synced
	return w.syncErr
}

// testHookBodyWrite, when set by a test, runs before each segment's bodies
// are written (a slow disk).
var testHookBodyWrite func()

// writeSegments writes the batch's bodies into the places they reserved
// and syncs each segment they are in, each segment in a goroutine of its
// own, beside the group's transaction.
func writeSegments(batch []*pendingCommit) *segmentWrites {
	w := &segmentWrites{written: make(chan struct{}), synced: make(chan struct{})}
	bySeg := map[*segment][]*pendingCommit{}
	for _, p := range batch {
		if p.seg != nil {
			bySeg[p.seg] = append(bySeg[p.seg], p)
		}
	}
	if len(bySeg) == 0 {
		close(w.written)
		close(w.synced)
		return w
	}
	wrote, synced := make(chan error, len(bySeg)), make(chan error, len(bySeg))
	for seg, ps := range bySeg {
		go func() {
			if testHookBodyWrite != nil {
				testHookBodyWrite()
			}
			err := seg.writeBodies(ps)
			wrote <- err
			if err == nil {
				err = seg.syncData()
			}
			synced <- err
		}()
	}
	first := func(results chan error) (first error) {
		for range bySeg {
			if err := <-results; err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	go func() {
		w.writeErr = first(wrote)
		close(w.written)
		w.syncErr = first(synced)
		close(w.synced)
	}()
	return w
}

// insertBatch writes the batch's rows in one transaction; should that fail,
// it writes each alone, so that one bad submission does not fail its
// neighbours, and reports each one's failure in errs.
func (s *Store) insertBatch(batch []*pendingCommit, errs []error, bodiesWritten func() error) error {
	ctx := context.Background()
	insert := func(batch []*pendingCommit) error {
		err := s.inTx(ctx, func(sqlTx *sql.Tx) error {
			tx := s.prepared(sqlTx)
			uids, err := reserveUIDs(ctx, tx, batch)
			if err != nil {
				return err
			}
			live := map[int64]int{}
			rows := newGroupRows()
			for _, p := range batch {
				if err := insertSubmission(ctx, tx, uids, rows, p.sub, p.body); err != nil {
					return err
				}
				if p.body.seq != 0 {
					live[p.body.seq]++
				}
			}
			for seq, n := range live {
				if _, err := tx.ExecContext(ctx, countSegmentBodiesSQL, seq, n); err != nil {
					return err
				}
			}
			if err := rows.flush(ctx, tx); err != nil {
				return err
			}
			// Committed, the rows are seen by every reader (the queue,
			// IMAP): their bodies must be in place first.
			return bodiesWritten()
		})
		if err != nil {
			for _, p := range batch {
				p.sub.ID = 0
			}
		}
		return err
	}
	err := insert(batch)
	if err == nil || len(batch) == 1 {
		return err
	}
	for i, p := range batch {
		errs[i] = insert([]*pendingCommit{p})
	}
	return nil
}

// insertSubmission gives a message its ID and adds its rows to rows (the
// message, its trace events, its folder items and queue entries), which
// the caller flushes before its transaction commits; body says where the
// body is besides (bodyPlace).
func insertSubmission(ctx context.Context, tx execer, uids uidBlocks, rows *groupRows, sub *store.Submission, body bodyPlace) error {
	var bodyFile, seg any
	if body.file != "" {
		bodyFile = body.file
	}
	if body.seq != 0 {
		seg = body.seq
	}
	var auth any
	if sub.AuthMailbox != 0 {
		auth = sub.AuthMailbox
	}
	var err error
	if sub.ID, err = rows.messageID(ctx, tx); err != nil {
		return err
	}
	rows.messages.args = append(rows.messages.args, sub.ID,
		sub.OrgID, sub.MessageID, sub.Subject, nanos(sub.ReceivedAt), sub.EnvelopeFrom, auth, sub.ClientIP,
		sub.Recipients, body.size, []byte{}, bodyFile, sub.InboundConnector, sub.AuthProtocol, sub.TLSVersion, sub.SessionID, sub.ExternalRecipients,
		seg, body.off, body.crc)
	if body.seq == 0 {
		rows.bodies.args = append(rows.bodies.args, sub.ID, nonNilBytes(sub.Body))
	}
	now := nanos(sub.ReceivedAt)
	// No Receive event: TraceEvents makes it from the message's row.
	for _, e := range sub.Events {
		rows.event(sub.ID, sub.ReceivedAt, e.Event, e.Recipient, e.Detail, e.RemoteHost)
	}
	if sub.SentItems != 0 {
		// The sender has read what it sent: Exchange files the copy read.
		if err := uids.file(ctx, tx, rows, sub.SentItems, store.SentItems, sub.ID, now, flagSeen, body.size); err != nil {
			return err
		}
	}
	for _, d := range sub.Local {
		if d.NotBefore.After(sub.ReceivedAt) {
			rows.queue.args = append(rows.queue.args, sub.ID, d.Recipient, d.Mailbox, d.Folder, nanos(d.NotBefore))
			continue
		}
		if err := uids.file(ctx, tx, rows, d.Mailbox, d.Folder, sub.ID, now, 0, body.size); err != nil {
			return err
		}
		rows.event(sub.ID, sub.ReceivedAt, store.EventDeliver, d.Recipient, "Folder "+d.Folder, "")
	}
	for _, d := range sub.Remote {
		rows.queue.args = append(rows.queue.args, sub.ID, d.Recipient, nil, "", max(nanos(d.NotBefore), now))
	}
	return nil
}

// nonNilBytes keeps an empty body from being stored as NULL.
func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// folderKey names a folder by its mailbox and name.
type folderKey struct {
	mailbox int64
	name    string
}

// uidBlock is a run of UIDs and MODSEQs reserved in one folder.
type uidBlock struct {
	folderID, uid, modseq int64
	left                  int
}

// uidBlocks are the UIDs and MODSEQs a commit group files with, reserved
// by reserveUIDs with one UPDATE per folder instead of one per filed item
// (a group of 128 messages to one shared Inbox took 128 UPDATEs of the
// same row). Filing takes them in order, so UIDs still ascend in commit
// order (RFC 9051 section 2.3.1.1). A nil uidBlocks, or a folder without a
// reservation, files one item at a time.
type uidBlocks map[folderKey]*uidBlock

// reserveUIDs reserves, in each folder the batch files into now, as many
// UIDs and MODSEQs as it files there. A folder that is gone gets no
// reservation: filing into it fails as it did before.
func reserveUIDs(ctx context.Context, tx execer, batch []*pendingCommit) (uidBlocks, error) {
	counts := map[folderKey]int{}
	var order []folderKey
	count := func(k folderKey) {
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	for _, p := range batch {
		if p.sub.SentItems != 0 {
			count(folderKey{p.sub.SentItems, store.SentItems})
		}
		for _, d := range p.sub.Local {
			if !d.NotBefore.After(p.sub.ReceivedAt) {
				count(folderKey{d.Mailbox, d.Folder})
			}
		}
	}
	blocks := make(uidBlocks, len(order))
	// The row now holds the next free values: the block is the n before
	// them.
	reserved := func(k folderKey, folderID, uidNext, modseq int64) {
		n := counts[k]
		blocks[k] = &uidBlock{folderID: folderID, uid: uidNext - int64(n), modseq: modseq - int64(n) + 1, left: n}
	}
	switch len(order) {
	case 0:
		return blocks, nil
	case 1:
		k := order[0]
		var folderID, uidNext, modseq int64
		err := tx.QueryRowContext(ctx, reserveUIDsSQL, counts[k], counts[k], k.mailbox, k.name).Scan(&folderID, &uidNext, &modseq)
		if err == sql.ErrNoRows {
			return blocks, nil
		}
		if err != nil {
			return nil, err
		}
		reserved(k, folderID, uidNext, modseq)
		return blocks, nil
	}
	// Several folders (a submission group files into each sender's Sent
	// Items) in one statement: each UPDATE of its own cost about as much
	// again as its row (BENCHMARKS.md, "Fourth run").
	list := make([]any, 0, len(order))
	for _, k := range order {
		list = append(list, []any{k.mailbox, k.name, counts[k]})
	}
	arg, err := json.Marshal(list)
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, reserveFoldersUIDsSQL, string(arg))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k folderKey
		var folderID, uidNext, modseq int64
		if err := rows.Scan(&folderID, &k.mailbox, &k.name, &uidNext, &modseq); err != nil {
			return nil, err
		}
		reserved(k, folderID, uidNext, modseq)
	}
	return blocks, rows.Err()
}

// file adds message (size bytes) to rows as an item of a folder, with the
// UID and MODSEQ reserved there, or with fresh ones when none is reserved.
func (u uidBlocks) file(ctx context.Context, tx execer, rows *groupRows, mailbox int64, folder string, message, at int64, sysflags int, size int64) error {
	b := u[folderKey{mailbox, folder}]
	if b == nil || b.left == 0 {
		folderID, uid, modseq, err := nextUID(ctx, tx, mailbox, folder)
		if err != nil {
			return err
		}
		rows.item(folderID, message, at, uid, sysflags, modseq, size)
		return nil
	}
	rows.item(b.folderID, message, at, b.uid, sysflags, b.modseq, size)
	b.uid, b.modseq, b.left = b.uid+1, b.modseq+1, b.left-1
	return nil
}

// fileItem puts message into a mailbox folder, unread.
func fileItem(ctx context.Context, tx execer, mailbox int64, folder string, message, at int64) error {
	return fileItemFlags(ctx, tx, mailbox, folder, message, at, 0, nil)
}

// fileItemFlags puts message into a mailbox folder with system flags
// (sysflag bits), giving it the folder's next UID and a new MODSEQ in the
// same transaction, so that UIDs are strictly ascending in commit order
// (RFC 9051 section 2.3.1.1). size is the message's, or nil to look it up.
func fileItemFlags(ctx context.Context, tx execer, mailbox int64, folder string, message, at int64, sysflags int, size any) error {
	folderID, uid, modseq, err := nextUID(ctx, tx, mailbox, folder)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, insertFolderItemSQL, folderID, message, at, uid, sysflags, modseq, size, message)
	return err
}

// nextUID takes a folder's next UID and a new MODSEQ.
func nextUID(ctx context.Context, tx execer, mailbox int64, folder string) (folderID, uid, modseq int64, err error) {
	err = tx.QueryRowContext(ctx, nextUIDSQL, mailbox, folder).Scan(&folderID, &uid, &modseq)
	if err == sql.ErrNoRows {
		err = errors.New("folder " + folder + " of mailbox not found")
	}
	return folderID, uid, modseq, err
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
		WHERE mailbox_id IS NOT NULL AND not_before <= ? ORDER BY not_before LIMIT 500`, func(rows *sql.Rows) error {
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
			res, err := tx.ExecContext(ctx, "DELETE FROM queue WHERE id = ?", d.id)
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
		WHERE auth_mailbox IS NOT NULL AND received_at >= ?`, func(rows *sql.Rows) error {
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
	err := each(ctx, s.r, `SELECT f.name, f.type, COUNT(m.id), COALESCE(SUM(m.size), 0)
		FROM folders f LEFT JOIN folder_items i ON i.folder_id = f.id LEFT JOIN messages m ON m.id = i.message
		WHERE f.mailbox_id = ? GROUP BY f.id ORDER BY f.id`, func(rows *sql.Rows) error {
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
		WHERE f.mailbox_id = ? AND f.name = ? ORDER BY i.received_at, i.id`, func(rows *sql.Rows) error {
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
