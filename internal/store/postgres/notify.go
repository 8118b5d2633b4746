package postgres

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"postern.dev/postern/internal/directory"
)

// directoryChannel is the NOTIFY channel the directory triggers send on:
// migration 008's "table:id" for a changed row of a table applied row by
// row, migration 005's "table" for a statement on another table.
const directoryChannel = "postern_directory"

// Backoff between attempts to reconnect the listener: short first, so a
// restarted database is heard again quickly, capped so that a long outage
// costs one attempt every few seconds.
const (
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
)

var _ interface {
	WatchDirectory(ctx context.Context, changed func(all bool, keys []directory.Key))
} = (*Store)(nil)

// WatchDirectory listens for directory changes on a connection of its own
// (LISTEN holds its connection for good, so it cannot come from the pool)
// and calls changed for each (the caller coalesces a burst: changed must
// not block for long); see store.DirectoryWatcher.
// It returns when ctx ends or the store is closed.
func (s *Store) WatchDirectory(ctx context.Context, changed func(all bool, keys []directory.Key)) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := listenBackoffMin
	for ctx.Err() == nil {
		heard, err := s.listen(ctx, changed)
		if ctx.Err() != nil {
			return
		}
		if heard {
			// The connection worked before it failed: start over from
			// the shortest wait.
			backoff = listenBackoffMin
		}
		slog.Warn("directory change listener: connection lost; reconnecting", "err", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, listenBackoffMax)
	}
}

// listen connects, LISTENs, reports all=true (whatever changed before the
// LISTEN took effect, at start or during an outage, was not heard), then
// relays notifications until the connection fails. It reports whether
// the LISTEN succeeded.
func (s *Store) listen(ctx context.Context, changed func(all bool, keys []directory.Key)) (bool, error) {
	cfg := s.pool.Config().ConnConfig.Copy()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return false, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(cctx)
		cancel()
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+directoryChannel); err != nil {
		return false, err
	}
	changed(true, nil)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		changed(false, []directory.Key{payloadKey(n.Payload)})
	}
}

// payloadKey reads a notification's payload: "table:id" names a row,
// "table" (or anything unreadable) the whole table.
func payloadKey(payload string) directory.Key {
	table, id, ok := strings.Cut(payload, ":")
	if !ok {
		return directory.Key{Table: payload}
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return directory.Key{Table: table}
	}
	return directory.Key{Table: table, ID: n}
}
