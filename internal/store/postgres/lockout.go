package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"postern.dev/postern/internal/auth"
	"postern.dev/postern/internal/limits"
	"postern.dev/postern/internal/metrics"
)

// AccountLockout returns the per-account smart lockout kept in the
// database (migration 009), shared by every node, so that failures spread
// over the nodes lock an account at the threshold one node would, and an
// address familiar to one node is familiar to all (issue 14). It keeps
// auth.Lockout's rules exactly: familiar addresses are never counted nor
// locked out, attempts in flight count against the threshold, a repeat of
// one of the last three wrong passwords is not counted again, lockouts
// double in a run of failures, and each table tracks at most MaxAccounts
// accounts. Begin and Done cost one round trip each (postern_lockout_begin
// and _done).
//
// key keys the digests of wrong passwords; every node must use the same
// (the server derives it from the shared secret key file), so that a
// device retrying a stale password through several nodes is counted once.
func (s *Store) AccountLockout(cfg auth.LockoutConfig, key [32]byte) auth.AccountLockout {
	return &accountLockout{s: s, key: key, cfg: cfg.WithDefaults()}
}

type accountLockout struct {
	s   *Store
	key [32]byte

	mu  sync.Mutex
	cfg auth.LockoutConfig
}

// Config implements auth.AccountLockout.
func (l *accountLockout) Config() auth.LockoutConfig {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// Reconfigure implements auth.AccountLockout. What the tables hold is
// kept, as in auth.Lockout.
func (l *accountLockout) Reconfigure(cfg auth.LockoutConfig) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = cfg.WithDefaults()
}

// Admit implements auth.AccountLockout.
func (l *accountLockout) Admit(account string, ip netip.Addr, password string, now time.Time) (*auth.SignIn, bool, error) {
	cfg := l.Config()
	src := limits.Source(ip).String()
	digest := int64(auth.PasswordDigest(&l.key, password))
	ctx, cancel := context.WithTimeout(context.Background(), throttleTimeout)
	defer cancel()
	var familiar, locked bool
	err := l.s.pool.QueryRow(ctx, "SELECT * FROM postern_lockout_begin($1, $2, $3, $4, $5, $6, $7, $8)",
		account, src, ms(now), cfg.Threshold, cfg.Window.Milliseconds(), cfg.FamiliarFor.Milliseconds(), cfg.MaxAccounts,
		attemptFlight.Milliseconds()).Scan(&familiar, &locked)
	if err != nil {
		return nil, false, fmt.Errorf("reading an account's failed sign-ins: %w", internal(err))
	}
	if locked {
		metrics.AuthLockouts.Inc()
		return nil, true, nil
	}
	return auth.NewSignIn(func(failed, succeeded bool, now time.Time) {
		l.done(account, src, familiar, digest, failed, succeeded, now)
	}), false, nil
}

func (l *accountLockout) done(account, src string, familiar bool, digest int64, failed, succeeded bool, now time.Time) {
	cfg := l.Config()
	ctx, cancel := context.WithTimeout(context.Background(), throttleTimeout)
	defer cancel()
	_, err := l.s.pool.Exec(ctx, "SELECT postern_lockout_done($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
		account, src, familiar, failed, succeeded, digest, ms(now), cfg.Threshold, cfg.Window.Milliseconds(),
		cfg.Duration.Milliseconds(), cfg.MaxDuration.Milliseconds(), cfg.FamiliarFor.Milliseconds(), cfg.FamiliarPerAccount, cfg.MaxAccounts)
	if err != nil {
		// The attempt leaves the flight after attemptFlight; the outcome
		// is lost (the database was unreachable).
		slog.Warn("recording a sign-in's outcome for the smart lockout", "failed", failed, "err", internal(err))
	}
}

// SweepLockout drops the failure records that no longer count and the
// familiar addresses that expired.
func (s *Store) SweepLockout(ctx context.Context, cfg auth.LockoutConfig, now time.Time) error {
	cfg = cfg.WithDefaults()
	_, err := s.pool.Exec(ctx, "SELECT postern_lockout_sweep($1, $2, -1), postern_lockout_sweep_familiar($1, $3, -1)",
		ms(now), cfg.Window.Milliseconds(), cfg.FamiliarFor.Milliseconds())
	if err != nil {
		return fmt.Errorf("sweeping the smart lockout: %w", internal(err))
	}
	return nil
}
