package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"sync/atomic"
)

// Checkpoints, off the group committer's path.
//
// In WAL mode every committed page is written twice: to the WAL at commit,
// and into the database file by a checkpoint, which SQLite runs by default
// in the connection that commits once the WAL holds 1,000 pages. For the
// group committer that meant every 4 MiB of mail, one commit group also
// paid for copying 4 MiB into the database file and syncing it, while every
// submission behind it waited: a fifth of the committer's time in the
// profile of relay at 5,700 msg/s, and more once the database outgrew the
// page cache (BENCHMARKS.md).
//
// So a checkpointer goroutine on a connection of its own copies the WAL
// into the database file while the committer goes on committing: a PASSIVE
// checkpoint takes no lock a writer needs (sqlite.org/wal.html section
// "Checkpointing"). It cannot finish the job alone, though: SQLite rewinds
// the WAL to its start (instead of growing the file) only when a write
// transaction begins with every frame of the WAL already copied, and the
// committer appends while the checkpointer copies. So the checkpointer
// makes passes (each copies what was committed during the one before)
// until one finds little new, and then the committer, between two groups,
// copies the little committed during the last pass, and the next group
// starts the WAL over.
//
// The writer keeps SQLite's automatic checkpoint as a backstop, at a larger
// size (walBackstopPages): should the checkpointer fall behind, the writer
// checkpoints itself as before, and the WAL stays bounded.
const (
	// checkpointBytes is how much the committer reckons it added to the
	// WAL (committedGroup) before it starts a checkpoint: about half of
	// what SQLite's default automatic checkpoint (1,000 pages) waits for,
	// since the reckoning is low (a message's index entries land on pages
	// of their own).
	checkpointBytes = 2 << 20
	// catchUpFrames is how little must have been appended to the WAL during
	// a pass for the committer to copy the rest; maxCheckpointPasses bounds
	// the passes when the committer appends as fast as they copy.
	catchUpFrames       = 256
	maxCheckpointPasses = 4
	// walBackstopPages is the writer's own automatic checkpoint.
	walBackstopPages = 8000
	// groupPages is how many pages a commit group writes besides its
	// messages' own, about: one per table and index it appends to.
	groupPages = 16
)

// checkpointer states: the committer moves idle → copying and done → idle,
// the checkpointer copying → done, so that the two never checkpoint at once.
const (
	ckptIdle int32 = iota
	ckptCopying
	ckptDone
)

// checkpointer copies the WAL into the database file in the background.
type checkpointer struct {
	db    *sql.DB // its own connection
	state atomic.Int32
	start chan struct{}
	// committed is what the committer reckons it added to the WAL since
	// the last checkpoint started (committedGroup); only it touches this.
	committed int64
}

func newCheckpointer(db *sql.DB) *checkpointer {
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	return &checkpointer{db: db, start: make(chan struct{}, 1)}
}

// run copies the WAL whenever the committer asks, until closing. It makes
// passes until one finds little new since the one before (what the
// committer appended meanwhile), so that the committer's catch-up is short.
func (c *checkpointer) run(closing <-chan struct{}) {
	for {
		select {
		case <-closing:
			return
		case <-c.start:
		}
		var last int64
		for pass := 0; pass < maxCheckpointPasses; pass++ {
			frames, err := checkpointPassive(c.db)
			if err != nil {
				slog.Warn("SQLite checkpoint failed; the writer checkpoints itself", "err", err)
				break
			}
			if pass > 0 && frames-last <= catchUpFrames {
				break
			}
			last = frames
		}
		c.state.Store(ckptDone)
	}
}

// committedGroup is called by the committer after each group; it starts a
// checkpoint once enough has been committed since the last one.
func (c *checkpointer) committedGroup(batch []*pendingCommit) {
	// What the group added to the WAL, roughly: the pages every group
	// rewrites (the last page of each table and index it adds to), and
	// each message's rows and index entries.
	c.committed += groupPages * 4096
	for _, p := range batch {
		c.committed += 1024
		if p.body.file == "" && p.body.seq == 0 {
			c.committed += p.body.size // a body file or segment is not in the WAL
		}
	}
	if c.committed < checkpointBytes || !c.state.CompareAndSwap(ckptIdle, ckptCopying) {
		return
	}
	c.committed = 0
	c.start <- struct{}{} // never blocks: one start per idle → copying
}

// beforeGroup is called by the committer before each group: once the
// checkpointer is done, it copies the rest itself, so that the group's
// transaction starts the WAL over.
func (c *checkpointer) beforeGroup(w *sql.DB) {
	if c.state.Load() != ckptDone {
		return
	}
	if _, err := checkpointPassive(w); err != nil {
		slog.Warn("SQLite checkpoint failed", "err", err)
	}
	c.state.Store(ckptIdle)
}

// checkpointPassive runs a PASSIVE checkpoint on db: it copies what no
// reader still needs and never waits for a lock. It returns the frames the
// WAL held when the checkpoint began.
func checkpointPassive(db *sql.DB) (frames int64, err error) {
	var busy, copied int64
	err = db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
	return frames, err
}
