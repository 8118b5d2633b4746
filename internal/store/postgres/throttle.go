package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"postern.dev/postern/internal/auth"
	"postern.dev/postern/internal/limits"
	"postern.dev/postern/internal/metrics"
)

// AddressThrottle returns the failed-sign-in throttle of every client
// address kept in the database (migration 009), shared by every node, so
// that guesses spread over the nodes meet the budget one node would give
// (issue 14). It keeps auth.Throttle's rules exactly: attempts in flight
// count against the budget (parallel guesses verify no more passwords
// than sequential ones), failures expire with the window, the
// BlockAfter-th blocks the address for BlockFor, a success clears
// nothing, and at most MaxTracked addresses are remembered. Reserve and
// Done cost one round trip each (postern_throttle_reserve and _done),
// Check one read.
//
// An attempt stays in flight until Done, or, if its node died before
// Done, until attemptFlight after the address's last reservation, so that
// a dead node's attempts do not hold an address's budget for ever.
func (s *Store) AddressThrottle(cfg auth.ThrottleConfig) auth.AddressThrottle {
	if cfg.MaxTracked <= 0 {
		cfg.MaxTracked = auth.DefaultThrottleConfig.MaxTracked
	}
	return &addressThrottle{s: s, cfg: cfg}
}

// attemptFlight bounds how long a reserved attempt whose Done never came
// counts: far above what a sign-in takes (the delay, at most MaxDelay, a
// wait at the verification gate, one argon2id verification or a token
// check).
const attemptFlight = 2 * time.Minute

// throttleTimeout bounds one round trip of the throttle: it has no
// caller's context (sign-ins run under the session's own deadlines), and
// Done runs when the client may have gone.
const throttleTimeout = 5 * time.Second

type addressThrottle struct {
	s   *Store
	cfg auth.ThrottleConfig

	// settled wakes this node's Pending sign-ins of an address when one
	// of its attempts here ends (auth.PendingWaiter); attempts on other
	// nodes are seen by polling (settlePoll).
	mu      sync.Mutex
	settled map[string]chan struct{}
}

var _ auth.PendingWaiter = (*addressThrottle)(nil)

// settlePoll is how often a Pending sign-in looks again at its address's
// budget, for attempts ending on other nodes: one round trip each time,
// for at most PendingWait.
const settlePoll = 250 * time.Millisecond

// Settled implements auth.PendingWaiter.
func (t *addressThrottle) Settled(ip netip.Addr) <-chan struct{} {
	src := limits.Source(ip).String()
	t.mu.Lock()
	if t.settled == nil {
		t.settled = map[string]chan struct{}{}
	}
	c := t.settled[src]
	if c == nil {
		c = make(chan struct{})
		t.settled[src] = c
		time.AfterFunc(settlePoll, func() { t.wake(src, c) })
	}
	t.mu.Unlock()
	return c
}

// wake closes src's channel if it is still c.
func (t *addressThrottle) wake(src string, c chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.settled[src] == c {
		delete(t.settled, src)
		close(c)
	}
}

// PendingWait implements auth.PendingWaiter.
func (t *addressThrottle) PendingWait() time.Duration { return t.cfg.PendingWait }

func ms(t time.Time) int64 { return t.UnixMilli() }

// Reserve implements auth.AddressThrottle.
func (t *addressThrottle) Reserve(ip netip.Addr, now time.Time) (*auth.Attempt, time.Duration, auth.Verdict) {
	ctx, cancel := context.WithTimeout(context.Background(), throttleTimeout)
	defer cancel()
	src := limits.Source(ip).String()
	var verdict, failures int
	err := t.s.pool.QueryRow(ctx, "SELECT * FROM postern_throttle_reserve($1, $2, $3, $4, $5, $6)",
		src, ms(now), t.cfg.Window.Milliseconds(), t.cfg.BlockAfter, t.cfg.MaxTracked, attemptFlight.Milliseconds()).Scan(&verdict, &failures)
	if err != nil {
		slog.Warn("reading an address's failed sign-ins", "source", src, "err", internal(err))
		return nil, 0, auth.Unavailable
	}
	switch verdict {
	case 1:
		metrics.AuthThrottled.Inc()
		return nil, 0, auth.Blocked
	case 2:
		metrics.AuthThrottled.Inc()
		return nil, 0, auth.Pending
	}
	delay := t.cfg.Delay(failures)
	if delay > 0 {
		metrics.AuthThrottled.Inc()
	}
	return auth.NewAttempt(func(failed bool, now time.Time) { t.done(src, failed, now) }), delay, auth.Admit
}

func (t *addressThrottle) done(src string, failed bool, now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), throttleTimeout)
	defer cancel()
	defer func() {
		t.mu.Lock()
		c := t.settled[src]
		t.mu.Unlock()
		if c != nil {
			t.wake(src, c)
		}
	}()
	_, err := t.s.pool.Exec(ctx, "SELECT postern_throttle_done($1, $2, $3, $4, $5, $6, $7)",
		src, ms(now), failed, t.cfg.Window.Milliseconds(), t.cfg.BlockAfter, t.cfg.BlockFor.Milliseconds(), t.cfg.MaxTracked)
	if err != nil {
		// The attempt leaves the flight when attemptFlight has passed; a
		// failure is lost (the database was unreachable: no sign-in
		// could be admitted meanwhile either).
		slog.Warn("recording a sign-in attempt's outcome", "source", src, "failed", failed, "err", internal(err))
	}
}

// Check implements auth.AddressThrottle.
func (t *addressThrottle) Check(ip netip.Addr, now time.Time) (time.Duration, auth.Verdict) {
	ctx, cancel := context.WithTimeout(context.Background(), throttleTimeout)
	defer cancel()
	src := limits.Source(ip).String()
	var failures int
	var last, blockedUntil int64
	err := t.s.pool.QueryRow(ctx, "SELECT failures, last_ms, blocked_until FROM auth_failures WHERE source = $1", src).
		Scan(&failures, &last, &blockedUntil)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, auth.Admit
	case err != nil:
		slog.Warn("reading an address's failed sign-ins", "source", src, "err", internal(err))
		return 0, auth.Unavailable
	case ms(now) < blockedUntil:
		metrics.AuthThrottled.Inc()
		return 0, auth.Blocked
	case ms(now)-last > t.cfg.Window.Milliseconds():
		return 0, auth.Admit
	}
	return t.cfg.Delay(failures), auth.Admit
}

// SweepThrottle drops the addresses whose failures no longer count (not
// blocked, out of the window, nothing in flight): the table's cap is
// kept at every new address, this keeps it small between floods.
func (s *Store) SweepThrottle(ctx context.Context, cfg auth.ThrottleConfig, now time.Time) error {
	_, err := s.pool.Exec(ctx, "SELECT postern_throttle_sweep($1, $2, -1)", ms(now), cfg.Window.Milliseconds())
	if err != nil {
		return fmt.Errorf("sweeping the failed sign-ins: %w", internal(err))
	}
	return nil
}
