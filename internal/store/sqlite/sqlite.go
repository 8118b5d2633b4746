// Package sqlite is Postern's embedded store: one SQLite database file in
// the data directory, in WAL mode with synchronous=FULL, so that a committed
// transaction survives power loss.
//
// The driver is modernc.org/sqlite, a pure-Go SQLite: no cgo, so the single
// binary stays static, with the same write speed as the cgo driver on these
// machines (shared/reference/ecosystem.md section 2.5).
//
// Writes go through one connection (SQLite has one writer at a time; a
// single connection avoids lock-upgrade deadlocks), reads through a pool.
// Message commits are batched by a group committer: all submissions that are
// waiting when the writer becomes free share one transaction and one fsync.
// The bodies of the messages it commits stay out of the database's pages:
// a large one is a file of its own (bodies.go), a small one a place in an
// append-only segment file (segments.go), written by its session before it
// joins a group. (An IMAP APPEND or a delivery notice keeps a small body in
// message_bodies.)
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite"

	"postern.dev/postern/internal/mailnotify"
	"postern.dev/postern/internal/store"
	"postern.dev/postern/internal/store/sqlrow"
)

//go:embed migrations/*.sql
var migrations embed.FS

// FileName is the database file's name inside the data directory.
const FileName = "postern.db"

// Store is the SQLite store. It implements store.Store.
type Store struct {
	// Ephemeral is the front ends' short-lived state (store.Ephemeral),
	// and Changes the directory change log's reads, in the SQL both
	// stores share.
	sqlrow.Ephemeral
	sqlrow.Changes

	w, r *sql.DB
	dir  string // the data directory

	bodyStmt *sql.Stmt            // messageBodyQuery on r
	writes   map[string]*sql.Stmt // hotWrites prepared on w (prepared.go)

	// hub is signalled after each commit that touched a mailbox's
	// folders (IMAP IDLE).
	hub *mailnotify.Hub

	commits chan *pendingCommit
	// arrivals are the messages being received that the group committer
	// waits for (store.GatherGroup).
	arrivals *store.Arrivals
	closing  chan struct{}
	done     sync.WaitGroup
	once     sync.Once

	sizes sizeCache

	// ckpt copies the WAL into the database file beside the committer
	// (checkpoint.go).
	ckpt *checkpointer
	// segs takes the bodies of messages committed from memory
	// (segments.go).
	segs *segmentLog
}

var _ store.Server = (*Store)(nil)

// maxBatch bounds how many submissions share one transaction, so that one
// batch's latency stays small.
const maxBatch = 128

// Open opens (creating if needed) the database in dir and brings its schema
// up to date.
func Open(dir string) (*Store, error) {
	path := filepath.Join(dir, FileName)
	dsn := func(pragmas ...string) string {
		q := url.Values{}
		for _, p := range append([]string{"busy_timeout(10000)", "foreign_keys(1)"}, pragmas...) {
			q.Add("_pragma", p)
		}
		return "file:" + path + "?" + q.Encode()
	}
	// auto_vacuum must be chosen before the first table is created: a new
	// database gives the space of deleted rows back to the file system
	// (ReclaimSpace); on an existing one the pragma changes nothing.
	// temp_store=MEMORY keeps the writer's statement journals in memory: a
	// multi-row INSERT (groupRows) saves the pages it changes there, so
	// that it can be undone alone, and past 64 KiB SQLite spilled them to a
	// temporary file, with its own open, writes and close (BENCHMARKS.md,
	// "Fourth run"). The writer's other temporary storage is small; the
	// largest, a migration's index build over a big table, sorts in
	// memory once (tens of MiB for a million messages).
	w, err := sql.Open("sqlite", dsn("auto_vacuum(2)", "journal_mode(WAL)", "synchronous(FULL)", "temp_store(2)",
		fmt.Sprintf("wal_autocheckpoint(%d)", walBackstopPages))+"&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxLifetime(0)
	if err := migrate(w); err != nil {
		w.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn("query_only(1)"))
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(8)
	bodyStmt, err := r.Prepare(messageBodyQuery)
	if err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	writes, err := prepareWrites(w)
	if err != nil {
		bodyStmt.Close()
		w.Close()
		r.Close()
		return nil, err
	}
	ckptDB, err := sql.Open("sqlite", dsn())
	if err != nil {
		closeStatements(writes)
		bodyStmt.Close()
		w.Close()
		r.Close()
		return nil, err
	}
	s := &Store{w: w, r: r, dir: dir, bodyStmt: bodyStmt, writes: writes, commits: make(chan *pendingCommit, maxBatch), arrivals: store.NewArrivals(), closing: make(chan struct{}),
		hub: mailnotify.New(), ckpt: newCheckpointer(ckptDB)}
	s.Ephemeral = sqlrow.Ephemeral{InTx: s.inTx, DB: r, Internal: internal}
	s.Changes = sqlrow.Changes{Dollar: false, PositionQuery: positionQuery, Internal: internal,
		ReadTx: func(ctx context.Context) (*sql.Tx, error) { return s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}) }}
	if err := os.MkdirAll(filepath.Join(dir, BodiesDir), 0o700); err != nil {
		s.closeDBs()
		return nil, err
	}
	var lastSeg int64
	if err := w.QueryRow("SELECT COALESCE(MAX(seq), 0) FROM body_segments").Scan(&lastSeg); err != nil {
		s.closeDBs()
		return nil, err
	}
	if s.segs, err = newSegmentLog(filepath.Join(dir, BodiesDir), lastSeg); err != nil {
		s.closeDBs()
		return nil, err
	}
	s.done.Add(2)
	go s.commitLoop()
	go func() {
		defer s.done.Done()
		s.ckpt.run(s.closing)
	}()
	return s, nil
}

// migrate applies the embedded migrations newer than the database's
// user_version, each in its own transaction.
func migrate(db *sql.DB) error {
	var version int
	if err := db.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for i, name := range names {
		if i+1 <= version {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if _, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the group committer (after it has finished the commits it has
// taken) and closes the database.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.closing) })
	s.done.Wait()
	s.segs.close()
	return s.closeDBs()
}

// closeDBs closes the statements and connections: the writer last, so
// that as the last connection it checkpoints the WAL and removes it.
func (s *Store) closeDBs() error {
	s.bodyStmt.Close()
	closeStatements(s.writes)
	err := errors.Join(s.r.Close(), s.ckpt.db.Close())
	if werr := s.w.Close(); err == nil {
		err = werr
	}
	return err
}

// nanos and fromNanos convert times as the stores keep them (sqlrow).
func nanos(t time.Time) int64 { return sqlrow.Nanos(t) }

func fromNanos(n int64) time.Time { return sqlrow.FromNanos(n) }

// isConstraint reports whether err is a UNIQUE constraint failure.
func isConstraint(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// isForeignKey reports whether err is a FOREIGN KEY constraint failure: a
// row referring to one that is gone.
func isForeignKey(err error) bool {
	return err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed")
}

// inTx runs fn in a write transaction.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return internal(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return internal(err)
	}
	return internal(tx.Commit())
}

// internal marks a failure of the storage itself (SQLITE_FULL, an I/O
// error) with store.ErrInternal, so that the admin service and the REST
// API tell it from a request's fault; the store's own kinds and a
// cancelled context pass unchanged.
func internal(err error) error {
	switch {
	case err == nil, errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrInternal),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrInternal, err)
}
