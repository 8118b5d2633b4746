// Package postgres is Postern's store for several nodes: one PostgreSQL
// database that every node shares, through github.com/jackc/pgx/v5's
// connection pool. It implements store.Store with the SQLite store's
// semantics, query for query (internal/store/sqlite is the reference; the
// shared tests in internal/store/storetest run against both).
//
// Durability: every connection runs with synchronous_commit=on, whatever
// the server's default, so a committed transaction is in the write-ahead
// log on disk (and on synchronous standbys, if configured) before Commit
// returns; a "250" is never given for a message PostgreSQL could lose.
// Submissions are group-committed as on SQLite: those waiting when the
// committer becomes free share one transaction and one WAL flush.
//
// Concurrency differs from SQLite, which has one writer: here writers run
// at once, on this node and on others. Every transaction that changes a
// folder locks the folder's row first (UPDATE, or SELECT ... FOR UPDATE),
// so changes to one folder are serialised as on SQLite and UIDs stay
// strictly ascending in commit order; outbound items are leased with
// FOR UPDATE SKIP LOCKED. A transaction that loses a deadlock or a
// serialisation conflict is run again (inTx).
//
// Bodies: message_bodies holds a small message whole, or the header fields
// Postern added in front of a large one, whose rest is a blob of 256 KiB
// chunks (bytea rows; see bodies.go for why not large objects).
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"postern.dev/postern/internal/mailnotify"
	"postern.dev/postern/internal/store"
	"postern.dev/postern/internal/store/sqlrow"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the PostgreSQL store. It implements store.Store.
type Store struct {
	// Ephemeral is the front ends' short-lived state (store.Ephemeral),
	// and Changes the directory change log's reads, in the SQL both
	// stores share.
	sqlrow.Ephemeral
	sqlrow.Changes

	pool *pgxpool.Pool
	// w and r are the same database/sql handle over the pool: the names
	// keep the queries side by side with the SQLite store's, which has a
	// writer and a reader pool.
	w, r *sql.DB

	hub *mailnotify.Hub
	// relay, while RelayMailboxChanges runs, takes the mailboxes this
	// node's commits changed to announce them to the other nodes.
	relay atomic.Pointer[mailboxRelay]

	commits chan *pendingCommit
	// arrivals are the messages being received that the group committer
	// waits for (store.GatherGroup).
	arrivals *store.Arrivals
	closing  chan struct{}
	done     sync.WaitGroup
	once     sync.Once

	sizes sizeCache
}

var _ store.Server = (*Store)(nil)

// maxBatch bounds how many submissions share one transaction, so that one
// batch's latency stays small.
const maxBatch = 128

// IsURL reports whether a --store value names a PostgreSQL database.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Open connects to the database at url (postgres://USER@HOST:PORT/DB...,
// libpq's URL form, which pgx reads) and brings its schema up to date.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error can quote the URL, password included.
		return nil, errors.New("the PostgreSQL URL is not valid (want postgres://USER@HOST:PORT/DATABASE)")
	}
	// synchronous_commit=on for every connection: a server configured with
	// it off (or "local" on a replica set) must not weaken what "250" means.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	cfg.ConnConfig.RuntimeParams["application_name"] = "postern"
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL %s: %w", where(cfg), err)
	}
	db := stdlib.OpenDBFromPool(pool)
	if err := migrate(ctx, db); err != nil {
		db.Close()
		pool.Close()
		return nil, fmt.Errorf("PostgreSQL %s: %w", where(cfg), err)
	}
	s := &Store{pool: pool, w: db, r: db, commits: make(chan *pendingCommit, maxBatch), arrivals: store.NewArrivals(), closing: make(chan struct{}),
		hub: mailnotify.New()}
	s.Ephemeral = sqlrow.Ephemeral{Dollar: true, InTx: s.inTx, DB: db, Internal: internal}
	s.Changes = sqlrow.Changes{Dollar: true, PositionQuery: positionQuery, Internal: internal,
		ReadTx: func(ctx context.Context) (*sql.Tx, error) { return s.r.BeginTx(ctx, snapshot) }}
	s.done.Add(1)
	go s.commitLoop()
	return s, nil
}

// where names a database for an error message, without its password.
func where(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// migrationLock is the advisory lock key under which migrations run, so
// that nodes starting at once apply each migration once.
const migrationLock = 0x706f737465726e // "postern"

// migrate applies the embedded migrations newer than the database's
// schema_version, each in its own transaction, under an advisory lock.
// It is the SQLite store's runner (user_version there), with the version
// in a table: numbered files, applied in order, never edited once released.
func migrate(ctx context.Context, db *sql.DB) error {
	// CREATE TABLE IF NOT EXISTS is not safe against itself: two nodes
	// running it at once can both miss the table and one fails on the
	// catalogue's unique index. So it, too, runs under the lock.
	if err := func() error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return err
		}
		return tx.Commit()
	}(); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for i, name := range names {
		n := i + 1
		if want := fmt.Sprintf("migrations/%03d_", n); !strings.HasPrefix(name, want) {
			return fmt.Errorf("migration %s: want number %03d", name, n)
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		err = func() error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
				return err
			}
			var version int
			err = tx.QueryRowContext(ctx, "SELECT version FROM schema_version").Scan(&version)
			if err == sql.ErrNoRows {
				if _, err := tx.ExecContext(ctx, "INSERT INTO schema_version (version) VALUES (0)"); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
			if version >= n {
				return nil
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("migration %s: %w", name, err)
			}
			if _, err := tx.ExecContext(ctx, "UPDATE schema_version SET version = $1", n); err != nil {
				return err
			}
			return tx.Commit()
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

// Close stops the group committer (after it has finished the commits it has
// taken) and closes the pool.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.closing) })
	s.done.Wait()
	err := s.w.Close()
	s.pool.Close()
	return err
}

// nanos and fromNanos convert times as the stores keep them (sqlrow).
func nanos(t time.Time) int64 { return sqlrow.Nanos(t) }

func fromNanos(n int64) time.Time { return sqlrow.FromNanos(n) }

// PostgreSQL error codes (appendix A of its manual).
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
	serializationFail   = "40001"
	deadlockDetected    = "40P01"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// isConstraint reports whether err is a UNIQUE constraint failure.
func isConstraint(err error) bool { return pgCode(err) == uniqueViolation }

// maxTxAttempts bounds how often a transaction that lost a deadlock or a
// serialisation conflict is run again.
const maxTxAttempts = 5

// inTx runs fn in a write transaction, again (from the start) when
// PostgreSQL aborted it to break a deadlock: writers on several nodes can
// lock the same folders in different orders, which SQLite's single writer
// never did.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tryTx(ctx, fn)
		if c := pgCode(err); (c == deadlockDetected || c == serializationFail) && attempt < maxTxAttempts {
			continue
		}
		return internal(err)
	}
}

func (s *Store) tryTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// internal marks a failure of the storage itself (the database down, a
// disk full) with store.ErrInternal, so that the admin service and the
// REST API tell it from a request's fault; the store's own kinds and a
// cancelled context pass unchanged.
func internal(err error) error {
	switch {
	case err == nil, errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrInternal),
		errors.Is(err, store.ErrTooBig), errors.Is(err, store.ErrDefaultFolder), errors.Is(err, store.ErrHasChildren),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrInternal, err)
}

// args collects the parameters of a query built piece by piece and names
// each by its position ($1, $2...), PostgreSQL's placeholder syntax.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// snapshot is a read-only transaction that reads one snapshot throughout,
// as a SQLite read transaction does (PostgreSQL's default, READ
// COMMITTED, takes a new one per statement). A read-only REPEATABLE READ
// transaction never fails for a conflict.
var snapshot = &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead}
