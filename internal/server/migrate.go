package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"postern.dev/postern/internal/config"
	"postern.dev/postern/internal/store"
	"postern.dev/postern/internal/store/postgres"
	"postern.dev/postern/internal/store/sqlite"
)

// MigrateToPostgres copies the single-node installation in dataDir (its
// SQLite store and body files) into the empty PostgreSQL database at url,
// for `postern migrate --from sqlite:DIR --to URL`, then verifies the copy:
// every table's row count, and each organization's message trace (the
// newest 1,000 messages, with each recipient's state), read from both
// stores. It takes the data directory's lock: the node must be stopped.
// What it did goes to out.
func MigrateToPostgres(ctx context.Context, dataDir, url string, out io.Writer) error {
	if err := config.CheckStoreURL(url); err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	if _, err := prepareDataDirFor(dataDir, false, true); err != nil {
		return err
	}
	lock, err := lockDataDir(dataDir)
	if errors.Is(err, ErrDataDirInUse) {
		return fmt.Errorf("%w: stop its server first (the copy must not miss what it writes meanwhile)", err)
	}
	if err != nil {
		return err
	}
	defer lock.Unlock()
	// Opening the SQLite store brings its schema up to date, the one the
	// copy expects.
	src, err := sqlite.Open(dataDir)
	if err != nil {
		return err
	}
	defer src.Close()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "postern.db")+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer raw.Close()
	dst, err := postgres.Open(ctx, url)
	if err != nil {
		return err
	}
	defer dst.Close()
	copied, err := dst.CopyFromSQLite(ctx, raw, filepath.Join(dataDir, sqlite.BodiesDir))
	if err != nil {
		return err
	}
	want, err := dst.TableCounts(ctx, raw)
	if err != nil {
		return err
	}
	got, err := dst.TableCounts(ctx, nil)
	if err != nil {
		return err
	}
	tables := make([]string, 0, len(want))
	for t := range want {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	var bad []string
	fmt.Fprintf(out, "%-28s %10s %10s\n", "table", "sqlite", "postgres")
	for _, t := range tables {
		fmt.Fprintf(out, "%-28s %10d %10d\n", t, want[t], got[t])
		if want[t] != got[t] || copied[t] != want[t] {
			bad = append(bad, t)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("the copy differs in the tables %s", strings.Join(bad, ", "))
	}
	dir, err := src.LoadDirectory(ctx)
	if err != nil {
		return err
	}
	traced := 0
	for _, o := range dir.Organizations {
		a, n, err := traceText(ctx, src, o.ID)
		if err != nil {
			return err
		}
		b, _, err := traceText(ctx, dst, o.ID)
		if err != nil {
			return err
		}
		if a != b {
			return fmt.Errorf("organization %s: the message trace read from PostgreSQL differs from SQLite's", o.Name)
		}
		traced += n
	}
	fmt.Fprintf(out, "message trace: the same %d messages in both stores\n", traced)
	return nil
}

// traceText is an organization's message trace as text, for comparing,
// and how many messages it shows.
func traceText(ctx context.Context, s store.Store, org int64) (string, int, error) {
	ms, err := s.MessageTrace(ctx, store.TraceQuery{OrgID: org, Limit: 1000})
	if err != nil {
		return "", 0, err
	}
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "\n\t%d %s %q %s %s %d", m.Message, m.MessageID, m.Subject, m.Sender, m.ReceivedAt, m.Size)
		for _, r := range m.Recipients {
			fmt.Fprintf(&b, "\n\t\t%s %s %q %v", r.Address, r.LastEvent, r.Detail, r.Queued)
		}
	}
	return b.String(), len(ms), nil
}
