package auth

import (
	"net/netip"
	"sync"
	"time"

	"postern.dev/postern/internal/limits"
	"postern.dev/postern/internal/metrics"
)

// ThrottleConfig sets how failed logins from one address are slowed down.
type ThrottleConfig struct {
	Window     time.Duration // failures older than this are forgotten
	SlowAfter  int           // failures before replies are delayed
	BlockAfter int           // failures that lock the address out
	BlockFor   time.Duration // how long a lockout lasts
	MaxDelay   time.Duration
	MaxTracked int // addresses remembered at most
	// PendingWait is how long a sign-in may wait while its address's
	// budget is held by attempts still being checked (Pending), before it
	// hears "454 4.7.0"; 0: not at all.
	PendingWait time.Duration
}

// DefaultThrottleConfig: delays from the 4th failure in 15 minutes (1 s,
// 2 s, 4 s, capped at 5 s), lockout for 15 minutes at the 10th. An attempt
// beyond the 10 in flight waits up to 10 s for their outcome: fifty users
// of one print server signing in at once are checked ten at a time, while
// fifty parallel guesses still stop after ten.
var DefaultThrottleConfig = ThrottleConfig{
	Window: 15 * time.Minute, SlowAfter: 3, BlockAfter: 10, BlockFor: 15 * time.Minute,
	MaxDelay: 5 * time.Second, MaxTracked: 100000, PendingWait: 10 * time.Second,
}

// AddressThrottle is the failed-sign-in budget of each client address that
// every sign-in (SMTP AUTH, IMAP4, POP3, the admin center, the built-in
// issuer) goes through. Throttle is one node's, in memory (the SQLite
// store, one node); a store several nodes share provides one that counts
// in the database, so that guesses spread over the nodes meet the same
// budget as guesses at one node.
type AddressThrottle interface {
	// Reserve admits a sign-in attempt from ip (Admit, with the delay to
	// wait before checking its credentials and the Attempt to end), or
	// refuses it: Blocked, Pending, or Unavailable when the budget could
	// not be read (never an Admit then).
	Reserve(ip netip.Addr, now time.Time) (*Attempt, time.Duration, Verdict)
	// Check says how long to delay the next sign-in from ip without
	// reserving a place (a login already verified, which cannot be a
	// guess): Admit with a delay, Blocked, or Unavailable.
	Check(ip netip.Addr, now time.Time) (time.Duration, Verdict)
}

// PendingWaiter is an AddressThrottle that can tell when one of an
// address's attempts in flight ends, so that a Pending sign-in waits for
// their outcome rather than hearing 454 at once (see Throttle.Settled).
type PendingWaiter interface {
	// Settled returns a channel closed when an attempt of ip's may have
	// ended: Reserve may then decide otherwise than Pending.
	Settled(ip netip.Addr) <-chan struct{}
	// PendingWait is how long a Pending sign-in may wait; 0: not at all.
	PendingWait() time.Duration
}

var _ PendingWaiter = (*Throttle)(nil)

// Throttle counts failed logins per client address (IPv6 per /64, the
// usual size of one site's network) regardless of the user name tried, so
// that guessing many passwords or many mailboxes from one place slows down
// and then stops, while the replies stay the same for existing and unknown
// mailboxes. A successful login does not clear the count — otherwise one
// valid account would let its holder reset it between guesses; failures
// expire with the window. It never sleeps itself: the caller waits.
//
// Sign-ins use Reserve, which counts attempts still being verified against
// the budget, so that N parallel guesses from one address verify at most
// BlockAfter passwords, not N (Check then Failure would let every parallel
// guess pass Check before the first Failure is recorded).
type Throttle struct {
	cfg ThrottleConfig

	mu    sync.Mutex
	addrs map[netip.Prefix]*failures
}

type failures struct {
	count        int
	inflight     int // reserved attempts not yet done
	last         time.Time
	blockedUntil time.Time
	// settled, when not nil, is closed when an attempt in flight ends
	// (Settled).
	settled chan struct{}
}

// NewThrottle makes a throttle. A zero MaxTracked means the default; a
// zero cap would otherwise empty the table at every failure.
func NewThrottle(cfg ThrottleConfig) *Throttle {
	if cfg.MaxTracked <= 0 {
		cfg.MaxTracked = DefaultThrottleConfig.MaxTracked
	}
	return &Throttle{cfg: cfg, addrs: make(map[netip.Prefix]*failures)}
}

// key is the unit the throttle, the gate and the lockout count by.
func key(ip netip.Addr) netip.Prefix { return limits.Source(ip) }

// current returns ip's record with expired failures forgotten; nil if none.
func (t *Throttle) current(k netip.Prefix, now time.Time) *failures {
	f := t.addrs[k]
	if f == nil {
		return nil
	}
	if now.Before(f.blockedUntil) {
		return f
	}
	if now.Sub(f.last) > t.cfg.Window {
		if f.inflight > 0 {
			f.count = 0
			return f
		}
		delete(t.addrs, k)
		return nil
	}
	return f
}

// delayFor is the wait before the attempt that follows n failures.
func (t *Throttle) delayFor(n int) time.Duration { return t.cfg.Delay(n) }

// Delay is the wait before the attempt that follows n failures: none up to
// SlowAfter, then 1 s doubling at each failure, at most MaxDelay.
func (cfg ThrottleConfig) Delay(n int) time.Duration {
	if n < cfg.SlowAfter {
		return 0
	}
	return min(time.Second<<min(n-cfg.SlowAfter, 16), cfg.MaxDelay)
}

// Verdict is the throttle's answer to a sign-in attempt.
type Verdict int

const (
	// Admit: the attempt may check its credentials.
	Admit Verdict = iota
	// Blocked: the address failed BlockAfter times; it is locked out.
	Blocked
	// Pending: the address's remaining budget is held by attempts still
	// being checked; whether they fail is not known yet, so the client is
	// told to try again (a temporary failure), not that it is locked out.
	Pending
	// Unavailable: the budget could not be read (several nodes: the
	// database is unreachable). The attempt is refused with a temporary
	// failure: an unknown budget admits no guess.
	Unavailable
)

// Attempt is a reserved place in an address's failure budget; Done
// returns it.
type Attempt struct {
	end  func(failed bool, now time.Time)
	done bool
}

// NewAttempt makes the Attempt of an AddressThrottle implementation: end
// returns its place (counting a failure), at most once.
func NewAttempt(end func(failed bool, now time.Time)) *Attempt { return &Attempt{end: end} }

// Reserve admits a sign-in attempt from ip, counting it against the
// address's budget until Done: failures plus attempts in flight never
// exceed BlockAfter, so parallel guesses verify no more passwords than
// sequential ones. The delay grows with failures. The Attempt is nil
// unless Admit.
func (t *Throttle) Reserve(ip netip.Addr, now time.Time) (*Attempt, time.Duration, Verdict) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := key(ip)
	f := t.current(k, now)
	switch {
	case f != nil && now.Before(f.blockedUntil):
		metrics.AuthThrottled.Inc()
		return nil, 0, Blocked
	case f != nil && f.count+f.inflight >= t.cfg.BlockAfter:
		metrics.AuthThrottled.Inc()
		return nil, 0, Pending
	}
	if f == nil {
		if len(t.addrs) >= t.cfg.MaxTracked {
			t.sweep(now)
		}
		f = &failures{last: now}
		t.addrs[k] = f
	}
	// The delay answers failures only: attempts in flight are bounded by
	// the Pending verdict above, and counting them here would slow every
	// device of an office behind one address that signs in at once.
	delay := t.delayFor(f.count)
	if delay > 0 {
		metrics.AuthThrottled.Inc()
	}
	f.inflight++
	return NewAttempt(func(failed bool, now time.Time) { t.done(k, failed, now) }), delay, Admit
}

// Done ends a reserved attempt: a failure is counted (and may lock the
// address out); a success or an attempt that was not decided (refused for
// another reason before its credentials were checked) only frees its place.
// Calling it again does nothing.
func (a *Attempt) Done(failed bool, now time.Time) {
	if a == nil || a.done {
		return
	}
	a.done = true
	a.end(failed, now)
}

func (t *Throttle) done(k netip.Prefix, failed bool, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.current(k, now)
	if f == nil { // swept while in flight (table full)
		if !failed {
			return
		}
		f = &failures{}
		t.addrs[k] = f
	} else if f.inflight > 0 {
		f.inflight--
	}
	if f.settled != nil {
		close(f.settled)
		f.settled = nil
	}
	if failed {
		t.fail(f, now)
	}
}

// Settled returns a channel closed when one of ip's attempts in flight
// ends, after which Reserve may decide otherwise than Pending: a place
// freed by a success admits the next attempt, failures lock the address
// out. A Pending sign-in waits on it (for at most PendingWait) instead of
// being refused, so that distinct accounts signing in at once from one
// address are checked in turn, BlockAfter at a time, while parallel
// guesses verify no more passwords than before. A channel already closed
// when nothing is in flight.
func (t *Throttle) Settled(ip netip.Addr) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.addrs[key(ip)]
	if f == nil || f.inflight == 0 || f.count+f.inflight < t.cfg.BlockAfter {
		// Already decidable otherwise (an attempt ended between the
		// caller's Reserve and this call).
		c := make(chan struct{})
		close(c)
		return c
	}
	if f.settled == nil {
		f.settled = make(chan struct{})
	}
	return f.settled
}

// PendingWait is how long a Pending sign-in may wait (ThrottleConfig).
func (t *Throttle) PendingWait() time.Duration { return t.cfg.PendingWait }

func (t *Throttle) fail(f *failures, now time.Time) {
	f.count++
	f.last = now
	if f.count >= t.cfg.BlockAfter {
		f.blockedUntil = now.Add(t.cfg.BlockFor)
		f.count = 0 // after the lockout the address starts afresh
	}
}

// Check says how long to delay the next login attempt from ip (Admit), or
// that ip is locked out (Blocked).
func (t *Throttle) Check(ip netip.Addr, now time.Time) (time.Duration, Verdict) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.current(key(ip), now)
	switch {
	case f == nil:
		return 0, Admit
	case now.Before(f.blockedUntil):
		metrics.AuthThrottled.Inc()
		return 0, Blocked
	}
	return t.delayFor(f.count), Admit
}

// Failure records a failed login from ip.
func (t *Throttle) Failure(ip netip.Addr, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := key(ip)
	f := t.current(k, now)
	if f == nil {
		if len(t.addrs) >= t.cfg.MaxTracked {
			t.sweep(now)
		}
		f = &failures{}
		t.addrs[k] = f
	}
	t.fail(f, now)
}

// sweep drops stale records, and arbitrary ones if all are fresh, so that a
// flood from many addresses cannot grow memory without bound. It frees a
// tenth of the room, so that its scan is paid once per many new records,
// not at every one. Records of
// attempts in flight go last; the flight is bounded by the verification
// gate and connection limits, far below MaxTracked.
func (t *Throttle) sweep(now time.Time) {
	for k := range t.addrs {
		t.current(k, now)
	}
	for _, busyToo := range []bool{false, true} {
		for k, f := range t.addrs {
			if len(t.addrs) < roomy(t.cfg.MaxTracked) {
				return
			}
			if f.inflight == 0 || busyToo {
				delete(t.addrs, k)
			}
		}
	}
}

// roomy is the size a full table is swept down to: nine tenths of max.
func roomy(max int) int { return max - max/10 }
