package auth

import (
	"net/netip"
	"sync"
	"time"
)

// ThrottleConfig sets how failed sign-ins from one address are slowed
// down and then refused.
type ThrottleConfig struct {
	Window     time.Duration // an address's failures are forgotten this long after its last one
	SlowAfter  int           // failures before the next attempt is delayed
	BlockAfter int           // failures that lock the address out
	BlockFor   time.Duration // how long a lockout lasts, from the failure that caused it
	MaxDelay   time.Duration // cap on the doubling delay
}

// DefaultThrottleConfig delays attempts from the 4th failure within 15
// minutes (1 s, 2 s, 4 s, then 5 s each) and locks the address out for 15
// minutes at the 10th.
var DefaultThrottleConfig = ThrottleConfig{
	Window:     15 * time.Minute,
	SlowAfter:  3,
	BlockAfter: 10,
	BlockFor:   15 * time.Minute,
	MaxDelay:   5 * time.Second,
}

// maxTrackedAddrs bounds the throttle's memory (on the order of 100 bytes
// an address), so that failures from a great many addresses cannot
// exhaust it.
const maxTrackedAddrs = 100_000

// Throttle counts failed sign-ins per client address, whatever the user
// name tried, so that guessing passwords — or mailbox names — from one
// place slows down and then stops, while the replies stay the same for
// existing and unknown mailboxes. IPv6 clients are counted per /64, the
// smallest prefix a site is normally assigned (RFC 6177), since one host
// can use any address in it.
//
// A record is forgotten Window after its most recent failure, so failures
// spaced less than Window apart keep adding up: stricter than a sliding
// window, and constant memory an address.
//
// Throttle never sleeps: Check returns the delay and the caller waits.
type Throttle struct {
	cfg        ThrottleConfig
	maxTracked int

	mu      sync.Mutex
	records map[netip.Prefix]*failures
}

type failures struct {
	count        int       // since the record started or the last lockout
	last         time.Time // most recent failure
	blockedUntil time.Time
}

// NewThrottle returns a throttle configured by cfg.
func NewThrottle(cfg ThrottleConfig) *Throttle {
	return &Throttle{cfg: cfg, maxTracked: maxTrackedAddrs, records: make(map[netip.Prefix]*failures)}
}

// throttleKey is the address's /32 (IPv4, including IPv4-mapped IPv6) or
// /64 (IPv6). An invalid address yields the zero Prefix, one shared key.
func throttleKey(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

func (f *failures) blocked(now time.Time) bool { return now.Before(f.blockedUntil) }

func (f *failures) stale(now time.Time, window time.Duration) bool {
	return !f.blocked(now) && now.Sub(f.last) >= window
}

// live returns k's record, or nil if there is none or it went stale (and
// is then dropped).
func (t *Throttle) live(k netip.Prefix, now time.Time) *failures {
	f := t.records[k]
	if f != nil && f.stale(now, t.cfg.Window) {
		delete(t.records, k)
		return nil
	}
	return f
}

// Check returns how long the caller should wait before checking the next
// password from ip, or blocked if ip is locked out and the attempt must be
// refused without checking anything.
func (t *Throttle) Check(ip netip.Addr, now time.Time) (delay time.Duration, blocked bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.live(throttleKey(ip), now)
	switch {
	case f == nil:
		return 0, false
	case f.blocked(now):
		return 0, true
	}
	return t.delay(f.count), false
}

// delay is 0 below SlowAfter failures, then 1 s doubling with each further
// failure, capped at MaxDelay.
func (t *Throttle) delay(count int) time.Duration {
	extra := count - t.cfg.SlowAfter
	if extra < 0 {
		return 0
	}
	// 2^30 s still fits a Duration; past that the cap applies anyway.
	return min(time.Second<<min(extra, 30), t.cfg.MaxDelay)
}

// Failure records a failed sign-in from ip. The BlockAfter-th failure
// locks the address out for BlockFor and starts its count afresh, so that
// after the lockout it is delayed again only from the SlowAfter-th new
// failure.
func (t *Throttle) Failure(ip netip.Addr, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := throttleKey(ip)
	f := t.live(k, now)
	if f == nil {
		if len(t.records) >= t.maxTracked {
			t.evict(now)
		}
		f = &failures{}
		t.records[k] = f
	}
	f.count++
	f.last = now
	if f.count >= t.cfg.BlockAfter {
		f.count = 0
		f.blockedUntil = now.Add(t.cfg.BlockFor)
	}
}

// Success records a successful sign-in from ip and clears its record,
// lockout included (Check having let the attempt through, a lockout can
// only be one that a concurrent attempt just caused). Note that a client
// holding one valid account can thereby reset its count between guesses
// at other accounts; a caller that cares may skip Success.
func (t *Throttle) Success(ip netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.records, throttleKey(ip))
}

// evict runs when the table is full: it drops stale records and then, if
// needed, arbitrary ones until a tenth of the room is free, so that the
// scan is paid once per many new addresses rather than on each.
func (t *Throttle) evict(now time.Time) {
	for k, f := range t.records {
		if f.stale(now, t.cfg.Window) {
			delete(t.records, k)
		}
	}
	target := t.maxTracked - max(t.maxTracked/10, 1)
	for k := range t.records {
		if len(t.records) <= target {
			break
		}
		delete(t.records, k)
	}
}
