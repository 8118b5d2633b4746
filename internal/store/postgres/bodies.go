package postgres

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"postern.dev/postern/internal/store"
)

// Large bodies. A submission with a BodyFile (a spooled upload) or a large
// IMAP APPEND gets a blob: a body_blobs row and the body in body_chunks
// rows of chunkSize bytes, written and committed in a transaction of its
// own before the message that refers to it joins a group commit, as the
// SQLite store fsyncs a body file before the commit that names it. A crash
// (of this node, or of the database connection) in between leaves a blob
// no message refers to; SweepBodies removes those.
//
// Why chunked bytea and not large objects (lo_*): a large object is not
// removed with the row that refers to it (it needs lo_unlink, or the lo
// extension's trigger), it is dumped and granted apart from tables, and
// reading one in pieces needs a transaction open for the whole read (a
// slow IMAP client fetching 35 MB would hold it for minutes). Chunk rows
// are plain rows: removed by ON DELETE CASCADE in the transaction that
// releases the message, replicated and backed up like every other row,
// and read by one short query per chunk, so memory per open body stays at
// one chunk whatever the message's size.
const chunkSize = 256 << 10

// writeBlob stores r (at most max bytes; more fails with store.ErrTooBig
// and stores nothing) as a new blob, committed when it returns.
func (s *Store) writeBlob(ctx context.Context, r io.Reader, max int64) (id, size int64, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		size = 0
		if err := tx.QueryRowContext(ctx, `INSERT INTO body_blobs (created, size) VALUES ($1, 0) RETURNING id`,
			time.Now().UnixNano()).Scan(&id); err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO body_chunks (blob, seq, data) VALUES ($1, $2, $3)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		buf := make([]byte, chunkSize)
		for seq := 0; ; seq++ {
			n, rerr := io.ReadFull(r, buf)
			if n > 0 {
				size += int64(n)
				if size > max {
					return store.ErrTooBig
				}
				if _, err := stmt.ExecContext(ctx, id, seq, buf[:n]); err != nil {
					return err
				}
			}
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				break
			}
			if rerr != nil {
				return fmt.Errorf("reading the message: %w", rerr)
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE body_blobs SET size = $1 WHERE id = $2`, size, id)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	return id, size, nil
}

// prepareBody stores sub's BodyFile as a blob and returns it with the
// message's whole size.
func (s *Store) prepareBody(ctx context.Context, sub *store.Submission) (blob, size int64, err error) {
	f, err := os.Open(sub.BodyFile)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	blob, size, err = s.writeBlob(ctx, f, 1<<62)
	return blob, int64(len(sub.Body)) + size, err
}

// removeBlobs deletes blobs no message refers to (a commit that failed
// after its blob was written). A blob some message does refer to (the
// commit's outcome was lost, yet it committed) is kept: the foreign key
// refuses its deletion.
func (s *Store) removeBlobs(ids []int64) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, id := range ids {
		// Left for SweepBodies when this fails.
		s.w.ExecContext(ctx, `DELETE FROM body_blobs b WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.body_blob = b.id)`, id)
	}
}

// orphanAge is how old a blob no message refers to must be before
// SweepBodies removes it: other nodes may be committing the message that
// will refer to it, which takes seconds, not an hour.
const orphanAge = time.Hour

// SweepBodies removes blobs no message refers to that are older than
// orphanAge: what a crash left between writing a blob and committing its
// message. Unlike the SQLite store's sweep, it is safe while other nodes
// commit (it leaves recent blobs alone).
func (s *Store) SweepBodies(ctx context.Context) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM body_blobs b WHERE created < $1
			AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.body_blob = b.id)`, time.Now().Add(-orphanAge).UnixNano())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// MessageBody opens a message: its row in message_bodies, then its blob's
// chunks, read one at a time as the caller reads.
func (s *Store) MessageBody(ctx context.Context, message int64) (io.ReadCloser, error) {
	var head []byte
	var blob sql.NullInt64
	var blobSize int64
	var released bool
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(b.data, ''::bytea), m.body_blob, COALESCE(bb.size, 0), m.body_released
		FROM messages m LEFT JOIN message_bodies b ON b.message = m.id LEFT JOIN body_blobs bb ON bb.id = m.body_blob
		WHERE m.id = $1`, message).Scan(&head, &blob, &blobSize, &released)
	if err == sql.ErrNoRows || released {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, internal(err)
	}
	if !blob.Valid {
		return io.NopCloser(bytes.NewReader(head)), nil
	}
	return io.NopCloser(io.MultiReader(bytes.NewReader(head), &blobReader{ctx: ctx, db: s.r, blob: blob.Int64, left: blobSize})), nil
}

// blobReader reads a blob's chunks in order, one query per chunk.
type blobReader struct {
	ctx  context.Context
	db   *sql.DB
	blob int64
	seq  int
	left int64 // bytes not yet read
	buf  []byte
}

func (b *blobReader) Read(p []byte) (int, error) {
	if len(b.buf) == 0 {
		if b.left <= 0 {
			return 0, io.EOF
		}
		err := b.db.QueryRowContext(b.ctx, `SELECT data FROM body_chunks WHERE blob = $1 AND seq = $2`, b.blob, b.seq).Scan(&b.buf)
		if err == sql.ErrNoRows {
			// Released while being read (its last reference went).
			return 0, fmt.Errorf("message body: %w", io.ErrUnexpectedEOF)
		}
		if err != nil {
			return 0, internal(err)
		}
		b.seq++
		b.left -= int64(len(b.buf))
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

// releaseBodies gives back the bodies of those messages that nothing refers
// to any more (no folder item, no queue item), inside tx.
//
// The message row is locked first, in a statement of its own, and the
// references are counted in the next: two transactions (on two nodes) that
// each remove one of a message's last two references then take turns, and
// the second sees the first's removal committed; without the lock each
// would see the other's reference still there, and the body would stay
// forever.
func releaseBodies(ctx context.Context, tx *sql.Tx, ids []int64) error {
	seen := map[int64]bool{}
	for _, id := range ids {
		if id == 0 || seen[id] {
			continue
		}
		seen[id] = true
		var blob sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT body_blob FROM messages WHERE id = $1 AND NOT body_released FOR UPDATE`, id).Scan(&blob)
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return err
		}
		var referred bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM folder_items WHERE message = $1)
			OR EXISTS (SELECT 1 FROM queue WHERE message = $1)`, id).Scan(&referred); err != nil {
			return err
		}
		if referred {
			continue
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM message_bodies WHERE message = $1", id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET body_blob = NULL, body_released = true WHERE id = $1`, id); err != nil {
			return err
		}
		if blob.Valid {
			if _, err := tx.ExecContext(ctx, `DELETE FROM body_blobs WHERE id = $1`, blob.Int64); err != nil {
				return err
			}
		}
	}
	return nil
}

// DeleteMailbox removes a mailbox with its addresses, permissions, folders,
// items and pending local deliveries (foreign keys cascade), and the
// bodies of the messages nothing else refers to any more (Remove-Mailbox).
func (s *Store) DeleteMailbox(ctx context.Context, id int64) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var ids []int64
		err := each(ctx, tx, `SELECT i.message FROM folder_items i JOIN folders f ON f.id = i.folder_id WHERE f.mailbox_id = $1
			UNION SELECT message FROM queue WHERE mailbox_id = $1`, func(rows *sql.Rows) error {
			var m int64
			if err := rows.Scan(&m); err != nil {
				return err
			}
			ids = append(ids, m)
			return nil
		}, id)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM mailboxes WHERE id = $1", id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return releaseBodies(ctx, tx, ids)
	})
	if err == nil {
		s.changed(id)
	}
	return err
}

// ReclaimSpace does nothing: PostgreSQL's autovacuum makes the space of
// deleted rows reusable, and giving it back to the file system (VACUUM
// FULL) would lock the tables every node is writing to.
func (s *Store) ReclaimSpace(ctx context.Context) error { return nil }

// errClosed is returned to commits that arrive after Close.
var errClosed = errors.New("store is closed")
