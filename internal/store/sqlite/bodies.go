package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"postern.dev/postern/internal/store"
)

// BodiesDir is the directory, inside the data directory, of the body files
// of large messages.
const BodiesDir = "bodies"

// Body files. A submission with a BodyFile (a spooled upload) gets a body
// file of its own, named at random: a hard link to the spooled file when
// the file system allows (no copy of a 50 MB upload), a copy otherwise.
// Several commits of one spooled file (one message for two organizations)
// get one link each, so each body file has exactly one row and is removed
// with it, without reference counting.
//
// Ordering, so that "250" still means durable (README "Durability"): the
// file's data is fsync'ed and linked before the submission joins a group
// commit; the group committer fsyncs the bodies directory once per batch
// (making every new name durable) before the SQLite transaction that refers
// to them commits. A crash between the two leaves a file no row names;
// SweepBodies removes such orphans when the server starts. Releasing works the other way round: the row
// forgets the file in a committed transaction, then the file is removed; a
// crash in between again leaves an orphan for SweepBodies at the next start.

// prepareBody makes sub's BodyFile durable under a new name in the bodies
// directory and returns that name and the message's whole size.
func (s *Store) prepareBody(sub *store.Submission) (name string, size int64, err error) {
	src, err := os.Open(sub.BodyFile)
	if err != nil {
		return "", 0, err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return "", 0, err
	}
	// fsync works on any descriptor of the file: it flushes the inode's
	// data, which a hard link shares.
	if err := src.Sync(); err != nil {
		return "", 0, err
	}
	name = newBodyName()
	dst := filepath.Join(s.dir, BodiesDir, name)
	if err := os.Link(sub.BodyFile, dst); err != nil {
		// Another file system (a spool mounted elsewhere), or no hard
		// links: copy.
		if err := copyFile(src, dst); err != nil {
			os.Remove(dst)
			return "", 0, err
		}
	}
	return name, int64(len(sub.Body)) + st.Size(), nil
}

func copyFile(src *os.File, dst string) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, io.NewSectionReader(src, 0, 1<<62)); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func newBodyName() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// syncBodiesDir makes the names created in the bodies directory durable
// (a new directory entry survives a crash only once the directory itself
// is fsync'ed).
func (s *Store) syncBodiesDir() error {
	d, err := os.Open(filepath.Join(s.dir, BodiesDir))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// removeBodies deletes body files whose rows no longer name them.
func (s *Store) removeBodies(names []string) {
	for _, n := range names {
		if err := os.Remove(filepath.Join(s.dir, BodiesDir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			// Left for the next start-up's sweep.
			continue
		}
	}
}

// SweepBodies removes body files that no row names: what a crash left
// between writing a file and committing its row, or between releasing a
// row and removing its file. The server calls it when it starts, before it
// accepts any message: a file being committed at that moment by another
// process on the same data directory would be taken for an orphan, so the
// offline cmdlets (which commit no messages, but may run beside a server
// that is starting) never call it.
//
// It also checks the newest segment bodies and removes the segments no
// body is in any more (sweepSegments), and counts those with the files.
func (s *Store) SweepBodies(ctx context.Context) (int, error) {
	_, segments, err := s.sweepSegments(ctx)
	if err != nil {
		return 0, err
	}
	dir := filepath.Join(s.dir, BodiesDir)
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		return segments, err
	}
	known, err := columnSet[string](ctx, s.w, "SELECT body_file FROM messages WHERE body_file IS NOT NULL")
	if err != nil {
		return 0, err
	}
	removed := segments
	for _, e := range entries {
		if _, segment := parseSegmentName(e.Name()); segment || known[e.Name()] || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err == nil {
			removed++
		}
	}
	return removed, nil
}

// messageBodyQuery is prepared once (Store.bodyStmt): an IMAP FETCH of
// 10,000 headers runs it 10,000 times, and parsing it each time was most
// of the cost.
const messageBodyQuery = `SELECT COALESCE(b.data, m.body), m.body_file, m.body_released, m.body_seg, m.body_off, m.size, m.body_crc
	FROM messages m LEFT JOIN message_bodies b ON b.message = m.id WHERE m.id = ?`

// MessageBody opens a message: its place in a segment, or its row in
// message_bodies (or, from before migration 009, its body column) followed
// by its body file if it has one.
func (s *Store) MessageBody(ctx context.Context, message int64) (io.ReadCloser, error) {
	var head []byte
	var file sql.NullString
	var released bool
	var seg sql.NullInt64
	var off, size int64
	var crc uint32
	err := s.bodyStmt.QueryRowContext(ctx, message).Scan(&head, &file, &released, &seg, &off, &size, &crc)
	if err == sql.ErrNoRows || released {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if seg.Valid {
		// A small body is read whole and checked: one released after its
		// row was read is punched out, and must read as gone, not as
		// zeros (a removed body file stays readable through an open
		// descriptor; a punched range does not).
		b, err := ReadSegmentBody(filepath.Join(s.dir, BodiesDir), seg.Int64, off, size, crc)
		if errors.Is(err, ErrBodyChanged) {
			return nil, store.ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	if !file.Valid {
		return io.NopCloser(bytes.NewReader(head)), nil
	}
	f, err := os.Open(filepath.Join(s.dir, BodiesDir, file.String))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, store.ErrNotFound // released meanwhile
	}
	if err != nil {
		return nil, err
	}
	return &bodyReader{Reader: io.MultiReader(bytes.NewReader(head), f), f: f}, nil
}

type bodyReader struct {
	io.Reader
	f *os.File
}

func (b *bodyReader) Close() error { return b.f.Close() }

// releaseBodies gives back the bodies of those messages that nothing refers
// to any more (no folder item, no queue item), inside tx; it returns what
// to remove once tx has committed (removeReleased).
func releaseBodies(ctx context.Context, tx execer, ids []int64) (released, error) {
	var r released
	seen := map[int64]bool{}
	for _, id := range ids {
		if id == 0 || seen[id] {
			continue
		}
		seen[id] = true
		var file sql.NullString
		var seg sql.NullInt64
		var off, size int64
		err := tx.QueryRowContext(ctx, unreferencedBodySQL, id).Scan(&file, &seg, &off, &size)
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return released{}, err
		}
		if _, err := tx.ExecContext(ctx, deleteBodySQL, id); err != nil {
			return released{}, err
		}
		if _, err := tx.ExecContext(ctx, releaseBodySQL, id); err != nil {
			return released{}, err
		}
		if file.Valid {
			r.files = append(r.files, file.String)
		}
		if seg.Valid {
			var live int64
			if err := tx.QueryRowContext(ctx, releaseSegmentBodySQL, seg.Int64).Scan(&live); err != nil && err != sql.ErrNoRows {
				return released{}, err
			}
			r.ranges = append(r.ranges, segmentRange{seg.Int64, off, size})
			if live <= 0 {
				r.emptied = append(r.emptied, seg.Int64)
			}
		}
	}
	return r, nil
}

// DeleteMailbox removes a mailbox with its addresses, permissions, folders,
// items and pending local deliveries (foreign keys cascade), and the
// bodies of the messages nothing else refers to any more (Remove-Mailbox).
func (s *Store) DeleteMailbox(ctx context.Context, id int64) error {
	var rel released
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var ids []int64
		err := each(ctx, tx, `SELECT i.message FROM folder_items i JOIN folders f ON f.id = i.folder_id WHERE f.mailbox_id = ?
			UNION SELECT message FROM queue WHERE mailbox_id = ?`, func(rows *sql.Rows) error {
			var m int64
			if err := rows.Scan(&m); err != nil {
				return err
			}
			ids = append(ids, m)
			return nil
		}, id, id)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM mailboxes WHERE id = ?", id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		rel, err = releaseBodies(ctx, tx, ids)
		return err
	})
	if err == nil {
		s.removeReleased(rel)
	}
	return err
}

// ReclaimSpace returns free pages to the file system (the database is
// created with auto_vacuum=INCREMENTAL; one made before that reuses its
// free pages instead) and truncates the write-ahead log. It works in steps
// of a few thousand pages so that it holds the writer only briefly.
func (s *Store) ReclaimSpace(ctx context.Context) error {
	var mode int
	if err := s.w.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&mode); err != nil {
		return err
	}
	if mode == 2 {
		for range 1000 {
			var free int
			if err := s.w.QueryRowContext(ctx, "PRAGMA freelist_count").Scan(&free); err != nil {
				return err
			}
			if free == 0 {
				break
			}
			if _, err := s.w.ExecContext(ctx, "PRAGMA incremental_vacuum(4096)"); err != nil {
				return fmt.Errorf("incremental_vacuum: %w", err)
			}
		}
	}
	_, err := s.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}
