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
// not block for long); see store.DirectoryWatcher. After each (re)connect
// it reports all=true: whatever changed before the LISTEN took effect, at
// start or during an outage, was not heard.
// It returns when ctx ends or the store is closed.
func (s *Store) WatchDirectory(ctx context.Context, changed func(all bool, keys []directory.Key)) {
	ctx, cancel := s.untilClosed(ctx)
	defer cancel()
	s.listenLoop(ctx, "directory change listener", directoryChannel,
		func() { changed(true, nil) },
		func(payload string) { changed(false, []directory.Key{payloadKey(payload)}) })
}

// untilClosed is ctx, also ended when the store closes.
func (s *Store) untilClosed(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// listenLoop LISTENs on channel on a connection of its own, calling
// connected after each successful LISTEN and heard for each notification,
// and reconnects with backoff when the connection fails, until ctx ends.
func (s *Store) listenLoop(ctx context.Context, what, channel string, connected func(), heard func(payload string)) {
	backoff := listenBackoffMin
	for ctx.Err() == nil {
		ok, err := s.listenOnce(ctx, channel, connected, heard)
		if ctx.Err() != nil {
			return
		}
		if ok {
			// The connection worked before it failed: start over from
			// the shortest wait.
			backoff = listenBackoffMin
		}
		slog.Warn(what+": connection lost; reconnecting", "err", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, listenBackoffMax)
	}
}

// listenOnce connects, LISTENs and relays notifications until the
// connection fails; it reports whether the LISTEN succeeded.
func (s *Store) listenOnce(ctx context.Context, channel string, connected func(), heard func(payload string)) (bool, error) {
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
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return false, err
	}
	connected()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		heard(n.Payload)
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
