package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Body segments. A message the group committer stores from memory (every
// message but a large spooled upload) has its place reserved by its own
// session at the end of the current segment file,
// DATA/bodies/NNNNNNNNNN.seg, before it joins a commit group; its row
// names the segment, the offset and the body's CRC-32C (migration 024).
// The group writes its bodies into their places, one pwritev(2) for each
// run of adjacent places, while its rows are inserted, and commits its
// transaction once they are there: the moment it commits, readers (the
// outbound queue, IMAP) may read a body its row names.
//
// Why: in message_bodies a 10 KiB body took three overflow pages, each
// written to the WAL in the committer's transaction and again into the
// database file by a checkpoint, one system call per page each time: most
// of what the single writer spent per message in the profile of relay
// (BENCHMARKS.md). In a segment it is written once, never copied again.
// Why the group writes them rather than each session: in the CPU profile
// of relay with connections reused, the sessions' own 10 KiB writes into
// the one segment file took 36 µs each, in the kernel; the group's vectored
// writes, made beside its transaction rather than in the committer's
// goroutine, 11 µs a body (BENCHMARKS.md, "Eighth run").
//
// Durability ("250" only once the message is durable, README
// "Durability"): the committer syncs the segments its group's bodies are
// in (fdatasync) at the same time as SQLite syncs the group's
// transaction, and reports the group committed only when both have
// returned. A crash can therefore leave only the last
// group's rows durable with bodies that are not: none of them was
// reported. Start-up (SweepBodies) checks the newest bodies against their
// CRCs and removes such messages, as if their commit had never begun;
// their senders, who had no "250", send them again.
//
// A segment is never written at an offset twice. Releasing a body punches
// a hole over it (the file system frees its blocks); a segment whose last
// body is released, and that nobody writes to any more, is removed.
const (
	segmentSuffix = ".seg"
	// maxSegmentBytes is where the log starts a new segment: big enough
	// that segments are rare, small enough that a released one goes soon.
	maxSegmentBytes = 64 << 20
	// atRiskMessages is how many of the newest messages start-up checks:
	// more than a commit group (maxBatch) and the few messages another
	// transaction may add while the group's bodies are being synced.
	atRiskMessages = 2 * maxBatch
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// bodyCRC is the checksum a row keeps of its segment body.
func bodyCRC(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func segmentName(seq int64) string { return fmt.Sprintf("%010d%s", seq, segmentSuffix) }

// parseSegmentName returns the sequence number a segment file's name
// carries.
func parseSegmentName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || digits == "" {
		return 0, false
	}
	seq, err := strconv.ParseInt(digits, 10, 64)
	return seq, err == nil && seq > 0
}

// segment is an open segment file.
type segment struct {
	seq int64
	f   *os.File
	// refs counts the bodies written into it whose commit has not ended,
	// plus one while it is the log's current segment; the file is closed
	// when it falls to zero, and no body can be added after that.
	refs atomic.Int32
	// named is set once the directory entry is durable.
	named atomic.Bool
}

// syncData makes the segment's contents durable (fdatasync: its data and
// its size, not its times).
func (s *segment) syncData() error {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = fdatasync(int(fd)) }); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("syncing body segment %s: %w", segmentName(s.seq), serr)
	}
	return nil
}

// segmentLog appends bodies to the current segment of a bodies directory.
type segmentLog struct {
	dir string
	max int64

	mu   sync.Mutex
	cur  *segment
	off  int64              // the next free offset in cur
	next int64              // the sequence number of the next segment
	open map[int64]*segment // segments with refs
	// emptied are segments whose last body was released while they were
	// still open: removeEmptied tries them again.
	emptied map[int64]bool
	closed  bool
}

// newSegmentLog starts a log whose first segment (created on the first
// append, so that a store only read from never makes one) comes after
// every segment named in dir or in body_segments.
func newSegmentLog(dir string, lastInDB int64) (*segmentLog, error) {
	last := lastInDB
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		if seq, ok := parseSegmentName(e.Name()); ok && seq > last {
			last = seq
		}
	}
	return &segmentLog{dir: dir, max: maxSegmentBytes, next: last + 1, open: map[int64]*segment{}, emptied: map[int64]bool{}}, nil
}

// reserve takes size bytes at the end of the current segment, starting a
// new segment when it is full, and returns the segment (with a reference
// the caller gives back with release once the body's commit has ended) and
// the offset. The body is written there by its commit group (writeBodies).
func (l *segmentLog) reserve(size int64) (*segment, int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, 0, errClosed
	}
	if l.cur == nil || (l.off > 0 && l.off+size > l.max) {
		if err := l.rotate(); err != nil {
			return nil, 0, err
		}
	}
	seg, off := l.cur, l.off
	l.off += size
	seg.refs.Add(1)
	return seg, off, nil
}

// rotate makes a new segment current (l.mu held).
func (l *segmentLog) rotate() error {
	seq := l.next
	f, err := os.OpenFile(filepath.Join(l.dir, segmentName(seq)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating body segment: %w", err)
	}
	l.next++
	seg := &segment{seq: seq, f: f}
	seg.refs.Store(1) // current
	l.open[seq] = seg
	if old := l.cur; old != nil {
		l.releaseLocked(old)
	}
	l.cur, l.off = seg, 0
	return nil
}

// release gives back a reference taken by append.
func (l *segmentLog) release(seg *segment) {
	l.mu.Lock()
	l.releaseLocked(seg)
	l.mu.Unlock()
}

func (l *segmentLog) releaseLocked(seg *segment) {
	if seg.refs.Add(-1) == 0 {
		delete(l.open, seg.seq)
		seg.f.Close()
	}
}

// close closes the current segment (its bodies' commits have ended).
func (l *segmentLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.cur != nil {
		l.releaseLocked(l.cur)
		l.cur = nil
	}
}

// isOpen reports whether bodies may still be added to segment seq.
func (l *segmentLog) isOpen(seq int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[seq] != nil
}

// segmentRange is a released body's place in its segment.
type segmentRange struct {
	seq, off, size int64
}

// released is what a transaction that released bodies leaves to remove
// once it has committed: body files, the ranges of segment bodies, and
// segments whose last body it released.
type released struct {
	files   []string
	ranges  []segmentRange
	emptied []int64
}

// removeReleased removes what a committed transaction released: body
// files, the blocks of segment bodies (a hole punched over each), and the
// segments nothing refers to any more.
func (s *Store) removeReleased(r released) {
	s.removeBodies(r.files)
	for _, g := range r.ranges {
		if err := punchHole(filepath.Join(s.dir, BodiesDir, segmentName(g.seq)), g.off, g.size); err != nil &&
			!errors.Is(err, fs.ErrNotExist) {
			slog.Debug("punching a hole in a body segment", "segment", segmentName(g.seq), "err", err)
		}
	}
	s.removeEmptied(r.emptied)
}

// removeEmptied removes the segments among seqs (and those left from
// before) that hold no live body and can get none: a segment still open
// (current, or with a commit under way) is left for a later call. The
// count is read again in a write transaction begun after the segment was
// seen closed: only the committer adds to it, and its last commit into the
// segment ended before the segment closed, so the count read is final.
func (s *Store) removeEmptied(seqs []int64) {
	l := s.segs
	l.mu.Lock()
	for _, seq := range seqs {
		l.emptied[seq] = true
	}
	var closed []int64
	for seq := range l.emptied {
		if l.open[seq] == nil {
			closed = append(closed, seq)
		}
	}
	l.mu.Unlock()
	if len(closed) == 0 {
		return
	}
	var gone []int64
	err := s.inTx(context.Background(), func(tx *sql.Tx) error {
		gone = gone[:0]
		for _, seq := range closed {
			var live int64
			err := tx.QueryRow("SELECT live FROM body_segments WHERE seq = ?", seq).Scan(&live)
			if err == sql.ErrNoRows {
				live = 0
			} else if err != nil {
				return err
			}
			if live > 0 {
				continue // filled again meanwhile: not empty after all
			}
			if _, err := tx.Exec("DELETE FROM body_segments WHERE seq = ?", seq); err != nil {
				return err
			}
			gone = append(gone, seq)
		}
		return nil
	})
	if err != nil {
		slog.Warn("removing emptied body segments", "err", err)
		return
	}
	l.mu.Lock()
	for _, seq := range closed {
		delete(l.emptied, seq)
	}
	l.mu.Unlock()
	for _, seq := range gone {
		if err := os.Remove(filepath.Join(s.dir, BodiesDir, segmentName(seq))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			slog.Warn("removing an emptied body segment", "segment", segmentName(seq), "err", err)
		}
	}
}

// sweepSegments is start-up's part for segments (SweepBodies): it removes
// the newest messages whose bodies a crash left incomplete (see above),
// then the segment files no live body is in. It returns how many of each.
func (s *Store) sweepSegments(ctx context.Context) (torn, files int, err error) {
	torn, err = s.removeTornBodies(ctx)
	if err != nil {
		return 0, 0, err
	}
	live, err := columnSet[int64](ctx, s.w, "SELECT seq FROM body_segments WHERE live > 0")
	if err != nil {
		return torn, 0, err
	}
	if _, err := s.w.ExecContext(ctx, "DELETE FROM body_segments WHERE live <= 0"); err != nil {
		return torn, 0, err
	}
	dir := filepath.Join(s.dir, BodiesDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return torn, 0, err
	}
	for _, e := range entries {
		seq, ok := parseSegmentName(e.Name())
		if !ok || live[seq] || s.segs.isOpen(seq) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err == nil {
			files++
		}
	}
	return torn, files, nil
}

// removeTornBodies checks the segment bodies of the newest messages against
// their CRCs and removes the messages whose bodies do not match: the last
// commit group before a crash, whose rows reached the disk but whose
// bodies did not, and which no client was told had been accepted.
func (s *Store) removeTornBodies(ctx context.Context) (int, error) {
	type candidate struct {
		id, seq, off, size int64
		crc                uint32
		messageID          string
	}
	var newest []candidate
	err := each(ctx, s.w, `SELECT id, body_seg, body_off, size, body_crc, message_id FROM
		(SELECT id, body_seg, body_off, size, body_crc, message_id FROM messages ORDER BY id DESC LIMIT ?)
		WHERE body_seg IS NOT NULL`, func(rows *sql.Rows) error {
		var c candidate
		if err := rows.Scan(&c.id, &c.seq, &c.off, &c.size, &c.crc, &c.messageID); err != nil {
			return err
		}
		newest = append(newest, c)
		return nil
	}, atRiskMessages)
	if err != nil {
		return 0, err
	}
	var torn []candidate
	for _, c := range newest {
		_, err := ReadSegmentBody(filepath.Join(s.dir, BodiesDir), c.seq, c.off, c.size, c.crc)
		if errors.Is(err, ErrBodyChanged) {
			torn = append(torn, c)
		} else if err != nil {
			return 0, err
		}
	}
	if len(torn) == 0 {
		return 0, nil
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		for _, c := range torn {
			for _, q := range []string{"DELETE FROM folder_items WHERE message = ?", "DELETE FROM queue WHERE message = ?",
				"DELETE FROM trace_events WHERE message = ?", "DELETE FROM message_bodies WHERE message = ?",
				"DELETE FROM messages WHERE id = ?"} {
				if _, err := tx.ExecContext(ctx, q, c.id); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, "UPDATE body_segments SET live = live - 1 WHERE seq = ?", c.seq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, c := range torn {
		slog.Warn("removed a message whose commit a crash interrupted (its sender was not told it was accepted)",
			"message", c.id, "message_id", c.messageID)
	}
	return len(torn), nil
}

// ReadSegmentBody reads a body from segment seq of the bodies directory dir
// and checks it against its CRC. Whatever is not the body the row
// describes (a segment removed, a range punched out or never written, the
// bytes changed) is ErrBodyChanged: the body was released after its row
// was read, or a crash interrupted its commit.
func ReadSegmentBody(dir string, seq, off, size int64, crc uint32) ([]byte, error) {
	f, err := os.Open(filepath.Join(dir, segmentName(seq)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("body segment %s: %w", segmentName(seq), ErrBodyChanged)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, size)
	if _, err := f.ReadAt(b, off); errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("body segment %s at %d: short: %w", segmentName(seq), off, ErrBodyChanged)
	} else if err != nil {
		return nil, fmt.Errorf("body segment %s: %w", segmentName(seq), err)
	}
	if bodyCRC(b) != crc {
		return nil, fmt.Errorf("body segment %s at %d: %w", segmentName(seq), off, ErrBodyChanged)
	}
	return b, nil
}

// ErrBodyChanged is ReadSegmentBody's failure when the bytes are not the
// body the row describes.
var ErrBodyChanged = errors.New("the body does not match its checksum")

// writeBodies writes the bodies of ps, all in s, at the offsets they
// reserved: one vectored write for each run of adjacent bodies.
func (s *segment) writeBodies(ps []*pendingCommit) error {
	slices.SortFunc(ps, func(a, b *pendingCommit) int { return cmp.Compare(a.body.off, b.body.off) })
	for i := 0; i < len(ps); {
		j, end := i+1, ps[i].body.off+int64(len(ps[i].sub.Body))
		for j < len(ps) && ps[j].body.off == end {
			end += int64(len(ps[j].sub.Body))
			j++
		}
		bufs := make([][]byte, 0, j-i)
		for _, p := range ps[i:j] {
			bufs = append(bufs, p.sub.Body)
		}
		if err := writeAtv(s.f, bufs, ps[i].body.off); err != nil {
			return fmt.Errorf("writing body segment %s: %w", segmentName(s.seq), err)
		}
		i = j
	}
	return nil
}
