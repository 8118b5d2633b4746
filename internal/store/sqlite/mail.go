package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"postern.dev/postern/internal/store"
)

// errClosed is returned to commits that arrive after Close.
var errClosed = errors.New("store is closed")

type pendingCommit struct {
	sub  *store.Submission
	done chan error
}

// Commit hands the submission to the group committer and waits until the
// transaction that holds it is durable.
func (s *Store) Commit(ctx context.Context, sub *store.Submission) error {
	p := &pendingCommit{sub: sub, done: make(chan error, 1)}
	select {
	case s.commits <- p:
	case <-s.closing:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once taken, the commit is seen through even if ctx ends: the client
	// may already be gone, but a half-known outcome must not be reported.
	return <-p.done
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
		s.commitBatch(batch)
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
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, p := range batch {
			if err := insertSubmission(ctx, tx, p.sub); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(batch) > 1 {
		// One bad submission must not fail its neighbours: retry each alone.
		for _, p := range batch {
			s.commitBatch([]*pendingCommit{p})
		}
		return
	}
	for _, p := range batch {
		if err != nil {
			p.sub.ID = 0
		}
		p.done <- err
	}
}

func insertSubmission(ctx context.Context, tx *sql.Tx, sub *store.Submission) error {
	var auth any
	if sub.AuthMailbox != 0 {
		auth = sub.AuthMailbox
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO messages (org_id, message_id, subject, received_at, envelope_from,
		auth_mailbox, client_ip, recipients, size, body, inbound_connector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sub.OrgID, sub.MessageID, sub.Subject, nanos(sub.ReceivedAt), sub.EnvelopeFrom, auth, sub.ClientIP,
		sub.Recipients, len(sub.Body), sub.Body, sub.InboundConnector)
	if err != nil {
		return err
	}
	if sub.ID, err = res.LastInsertId(); err != nil {
		return err
	}
	now := nanos(sub.ReceivedAt)
	if sub.SentItems != 0 {
		if err := fileItem(ctx, tx, sub.SentItems, store.SentItems, sub.ID, now); err != nil {
			return err
		}
	}
	for _, d := range sub.Local {
		if d.NotBefore.After(sub.ReceivedAt) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO queue (message, recipient, mailbox_id, folder, not_before)
				VALUES (?, ?, ?, ?, ?)`, sub.ID, d.Recipient, d.Mailbox, d.Folder, nanos(d.NotBefore)); err != nil {
				return err
			}
			continue
		}
		if err := fileItem(ctx, tx, d.Mailbox, d.Folder, sub.ID, now); err != nil {
			return err
		}
	}
	for _, d := range sub.Remote {
		if _, err := tx.ExecContext(ctx, `INSERT INTO queue (message, recipient, folder, not_before)
			VALUES (?, ?, '', ?)`, sub.ID, d.Recipient, max(nanos(d.NotBefore), now)); err != nil {
			return err
		}
	}
	return nil
}

// fileItem puts message into a mailbox folder.
func fileItem(ctx context.Context, tx *sql.Tx, mailbox int64, folder string, message, at int64) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO folder_items (folder_id, message, received_at)
		SELECT id, ?, ? FROM folders WHERE mailbox_id = ? AND name = ?`, message, at, mailbox, folder)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return errors.New("folder " + folder + " of mailbox not found")
	}
	return nil
}

// DeliverDue files paced local deliveries whose time has come. A delivery
// whose mailbox was removed meanwhile was dropped with it (cascade).
func (s *Store) DeliverDue(ctx context.Context, now time.Time) (int, error) {
	type due struct {
		id, mailbox, message int64
		folder               string
	}
	var items []due
	err := each(ctx, s.r, `SELECT id, mailbox_id, message, folder FROM queue
		WHERE mailbox_id IS NOT NULL AND not_before <= ? ORDER BY not_before LIMIT 500`, func(rows *sql.Rows) error {
		var d due
		if err := rows.Scan(&d.id, &d.mailbox, &d.message, &d.folder); err != nil {
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
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(items), nil
}

// RecipientHistory returns, per mailbox and submission, the recipients of
// authenticated submissions since the given time.
func (s *Store) RecipientHistory(ctx context.Context, since time.Time) ([]store.RecipientCount, error) {
	var out []store.RecipientCount
	err := each(ctx, s.r, `SELECT auth_mailbox, received_at, recipients FROM messages
		WHERE auth_mailbox IS NOT NULL AND received_at >= ?`, func(rows *sql.Rows) error {
		var c store.RecipientCount
		var at int64
		if err := rows.Scan(&c.Mailbox, &at, &c.Recipients); err != nil {
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
	err := each(ctx, s.r, `SELECT i.id, m.message_id, m.subject, m.envelope_from, i.received_at, m.size, m.body
		FROM folder_items i JOIN folders f ON f.id = i.folder_id JOIN messages m ON m.id = i.message
		WHERE f.mailbox_id = ? AND f.name = ? ORDER BY i.received_at, i.id`, func(rows *sql.Rows) error {
		var it store.Item
		var at int64
		if err := rows.Scan(&it.ID, &it.MessageID, &it.Subject, &it.From, &at, &it.Size, &it.Body); err != nil {
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
		q.mailbox_id IS NOT NULL, q.not_before, q.attempts, q.last_error, m.size, m.received_at
		FROM queue q JOIN messages m ON m.id = q.message ORDER BY q.not_before, q.id`, func(rows *sql.Rows) error {
		var q store.QueueItem
		var nb, rec int64
		if err := rows.Scan(&q.ID, &q.Message, &q.MessageID, &q.Subject, &q.FromAddress, &q.Recipient, &q.Local,
			&nb, &q.Attempts, &q.LastError, &q.Size, &rec); err != nil {
			return err
		}
		q.NotBefore, q.ReceivedAt = fromNanos(nb), fromNanos(rec)
		out = append(out, q)
		return nil
	})
	return out, err
}
