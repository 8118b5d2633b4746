package sqlite

import (
	"context"
	"database/sql"
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
	file string // its body file (in the bodies directory), "" for none
	size int64
	done chan error
}

// Commit hands the submission to the group committer and waits until the
// transaction that holds it is durable. A spooled body is made durable
// under its own name first, here, in the submitter's goroutine, so that
// concurrent large uploads fsync in parallel rather than one after the
// other in the committer.
func (s *Store) Commit(ctx context.Context, sub *store.Submission) error {
	p := &pendingCommit{sub: sub, size: int64(len(sub.Body)), done: make(chan error, 1)}
	if sub.BodyFile != "" {
		var err error
		if p.file, p.size, err = s.prepareBody(sub); err != nil {
			return fmt.Errorf("body file: %w", err)
		}
	}
	select {
	case s.commits <- p:
	case <-s.closing:
		s.removeBodies(nonEmpty(p.file))
		return errClosed
	case <-ctx.Done():
		s.removeBodies(nonEmpty(p.file))
		return ctx.Err()
	}
	// Once taken, the commit is seen through even if ctx ends: the client
	// may already be gone, but a half-known outcome must not be reported.
	return <-p.done
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// commitLoop is the group committer: it takes every commit that is waiting,
// writes them in one transaction (one fsync under synchronous=FULL) and
// reports the outcome to each. While a batch is on its way to the disk, new
// commits queue up for the next one, so batches grow with the load.
func (s *Store) commitLoop() {
	defer s.done.Done()
	for {
		var batch []*pendingCommit
		select {
		case p := <-s.commits:
			batch = append(batch, p)
		case <-s.closing:
			s.drain()
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case p := <-s.commits:
				batch = append(batch, p)
			default:
				break fill
			}
		}
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
			p.done <- errClosed
		default:
			return
		}
	}
}

func (s *Store) commitBatch(batch []*pendingCommit) {
	ctx := context.Background()
	var err error
	for _, p := range batch {
		if p.file != "" {
			// One directory fsync makes every new body file name of the
			// batch durable, before any row refers to one.
			err = s.syncBodiesDir()
			break
		}
	}
	if err == nil {
		err = s.inTx(ctx, func(sqlTx *sql.Tx) error {
			tx := s.prepared(sqlTx)
			uids, err := reserveUIDs(ctx, tx, batch)
			if err != nil {
				return err
			}
			for _, p := range batch {
				if err := insertSubmission(ctx, tx, uids, p.sub, p.file, p.size); err != nil {
					return err
				}
			}
			return nil
		})
	}
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
		s.hub.Notify(touched...)
	}
	for _, p := range batch {
		if err != nil {
			p.sub.ID = 0
			s.removeBodies(nonEmpty(p.file))
		}
		p.done <- err
	}
}

// insertSubmission writes a message row with its items; file names its
// body file ("" when the body column holds all of it), size is its whole
// size.
func insertSubmission(ctx context.Context, tx execer, uids uidBlocks, sub *store.Submission, file string, size int64) error {
	var bodyFile any
	if file != "" {
		bodyFile = file
	}
	var auth any
	if sub.AuthMailbox != 0 {
		auth = sub.AuthMailbox
	}
	res, err := tx.ExecContext(ctx, insertMessageSQL,
		sub.OrgID, sub.MessageID, sub.Subject, nanos(sub.ReceivedAt), sub.EnvelopeFrom, auth, sub.ClientIP,
		sub.Recipients, size, []byte{}, bodyFile, sub.InboundConnector, sub.AuthProtocol, sub.TLSVersion, sub.SessionID, sub.ExternalRecipients)
	if err != nil {
		return err
	}
	if sub.ID, err = res.LastInsertId(); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, insertBodySQL, sub.ID, nonNilBytes(sub.Body)); err != nil {
		return err
	}
	now := nanos(sub.ReceivedAt)
	if err := insertEvent(ctx, tx, sub.ID, sub.ReceivedAt, store.EventReceive, "", receiveDetail(sub), ""); err != nil {
		return err
	}
	for _, e := range sub.Events {
		if err := insertEvent(ctx, tx, sub.ID, sub.ReceivedAt, e.Event, e.Recipient, e.Detail, e.RemoteHost); err != nil {
			return err
		}
	}
	if sub.SentItems != 0 {
		// The sender has read what it sent: Exchange files the copy read.
		if err := uids.file(ctx, tx, sub.SentItems, store.SentItems, sub.ID, now, flagSeen); err != nil {
			return err
		}
	}
	for _, d := range sub.Local {
		if d.NotBefore.After(sub.ReceivedAt) {
			if _, err := tx.ExecContext(ctx, queueLocalSQL, sub.ID, d.Recipient, d.Mailbox, d.Folder, nanos(d.NotBefore)); err != nil {
				return err
			}
			continue
		}
		if err := uids.file(ctx, tx, d.Mailbox, d.Folder, sub.ID, now, 0); err != nil {
			return err
		}
		if err := insertEvent(ctx, tx, sub.ID, sub.ReceivedAt, store.EventDeliver, d.Recipient, "Folder "+d.Folder, ""); err != nil {
			return err
		}
	}
	for _, d := range sub.Remote {
		if _, err := tx.ExecContext(ctx, queueRemoteSQL, sub.ID, d.Recipient, max(nanos(d.NotBefore), now)); err != nil {
			return err
		}
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

// receiveDetail says where a message came from, for its Receive event.
func receiveDetail(sub *store.Submission) string {
	d := "client " + sub.ClientIP
	switch {
	case sub.AuthMailbox != 0:
		d += fmt.Sprintf(", SMTP AUTH mailbox %d", sub.AuthMailbox)
	case sub.InboundConnector != "":
		d += ", inbound connector " + sub.InboundConnector
	case sub.ClientIP == "":
		d = "generated by Postern"
	}
	return d
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
	for _, k := range order {
		n := counts[k]
		var b uidBlock
		err := tx.QueryRowContext(ctx, reserveUIDsSQL, n, n, k.mailbox, k.name).Scan(&b.folderID, &b.uid, &b.modseq)
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return nil, err
		}
		// The row now holds the next free values: the block is the n
		// before them.
		b.uid, b.modseq, b.left = b.uid-int64(n), b.modseq-int64(n)+1, n
		blocks[k] = &b
	}
	return blocks, nil
}

// file puts message into a folder with its reserved UID and MODSEQ, or
// with fresh ones when none is reserved there.
func (u uidBlocks) file(ctx context.Context, tx execer, mailbox int64, folder string, message, at int64, sysflags int) error {
	b := u[folderKey{mailbox, folder}]
	if b == nil || b.left == 0 {
		return fileItemFlags(ctx, tx, mailbox, folder, message, at, sysflags)
	}
	uid, modseq := b.uid, b.modseq
	b.uid, b.modseq, b.left = b.uid+1, b.modseq+1, b.left-1
	_, err := tx.ExecContext(ctx, insertFolderItemSQL, b.folderID, message, at, uid, sysflags, modseq, message)
	return err
}

// fileItem puts message into a mailbox folder, unread.
func fileItem(ctx context.Context, tx execer, mailbox int64, folder string, message, at int64) error {
	return fileItemFlags(ctx, tx, mailbox, folder, message, at, 0)
}

// fileItemFlags puts message into a mailbox folder with system flags
// (sysflag bits), giving it the folder's next UID and a new MODSEQ in the
// same transaction, so that UIDs are strictly ascending in commit order
// (RFC 9051 section 2.3.1.1).
func fileItemFlags(ctx context.Context, tx execer, mailbox int64, folder string, message, at int64, sysflags int) error {
	var folderID, uid, modseq int64
	err := tx.QueryRowContext(ctx, nextUIDSQL, mailbox, folder).Scan(&folderID, &uid, &modseq)
	if err == sql.ErrNoRows {
		return errors.New("folder " + folder + " of mailbox not found")
	}
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, insertFolderItemSQL, folderID, message, at, uid, sysflags, modseq, message)
	return err
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
