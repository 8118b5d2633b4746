package postgres

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// directoryChannel is the NOTIFY channel migration 004's triggers send on;
// the payload is the changed table's name.
const directoryChannel = "postern_directory"

// Backoff between attempts to reconnect the listener: short first, so a
// restarted database is heard again quickly, capped so that a long outage
// costs one attempt every few seconds.
const (
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
)

var _ interface {
	WatchDirectory(ctx context.Context, changed func(all bool, tables []string))
} = (*Store)(nil)

// WatchDirectory listens for directory changes on a connection of its own
// (LISTEN holds its connection for good, so it cannot come from the pool)
// and calls changed for each (the caller coalesces a burst: changed must
// not block for long); see store.DirectoryWatcher.
// It returns when ctx ends or the store is closed.
func (s *Store) WatchDirectory(ctx context.Context, changed func(all bool, tables []string)) {
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
func (s *Store) listen(ctx context.Context, changed func(all bool, tables []string)) (bool, error) {
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
		changed(false, []string{n.Payload})
	}
}
