package auth

import (
	"net/netip"
	"sync"
	"time"
)

// ThrottleConfig sets how failed logins from one address are slowed down.
type ThrottleConfig struct {
	Window     time.Duration // failures older than this are forgotten
	SlowAfter  int           // failures before replies are delayed
	BlockAfter int           // failures that lock the address out
	BlockFor   time.Duration // how long a lockout lasts
	MaxDelay   time.Duration
	MaxTracked int // addresses remembered at most
}

// DefaultThrottleConfig: delays from the 4th failure in 15 minutes (1 s,
// 2 s, 4 s, capped at 5 s), lockout for 15 minutes at the 10th.
var DefaultThrottleConfig = ThrottleConfig{
	Window: 15 * time.Minute, SlowAfter: 3, BlockAfter: 10, BlockFor: 15 * time.Minute,
	MaxDelay: 5 * time.Second, MaxTracked: 100000,
}

// Throttle counts failed logins per client address (IPv6 per /64, the
// usual size of one site's network) regardless of the user name tried, so
// that guessing many passwords or many mailboxes from one place slows down
// and then stops, while the replies stay the same for existing and unknown
// mailboxes. A successful login does not clear the count — otherwise one
// valid account would let its holder reset it between guesses; failures
// expire with the window. It never sleeps itself: the caller waits.
type Throttle struct {
	cfg ThrottleConfig

	mu    sync.Mutex
	addrs map[netip.Prefix]*failures
}

type failures struct {
	count        int
	last         time.Time
	blockedUntil time.Time
}

// NewThrottle makes a throttle. A zero MaxTracked means the default; a
// zero cap would otherwise empty the table at every failure.
func NewThrottle(cfg ThrottleConfig) *Throttle {
	if cfg.MaxTracked <= 0 {
		cfg.MaxTracked = DefaultThrottleConfig.MaxTracked
	}
	return &Throttle{cfg: cfg, addrs: make(map[netip.Prefix]*failures)}
}

func key(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

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
		delete(t.addrs, k)
		return nil
	}
	return f
}

// Check says how long to delay the next login attempt from ip, or that ip
// is locked out.
func (t *Throttle) Check(ip netip.Addr, now time.Time) (delay time.Duration, blocked bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.current(key(ip), now)
	switch {
	case f == nil:
		return 0, false
	case now.Before(f.blockedUntil):
		return 0, true
	case f.count < t.cfg.SlowAfter:
		return 0, false
	}
	delay = time.Second << min(f.count-t.cfg.SlowAfter, 16)
	return min(delay, t.cfg.MaxDelay), false
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
	f.count++
	f.last = now
	if f.count >= t.cfg.BlockAfter {
		f.blockedUntil = now.Add(t.cfg.BlockFor)
		f.count = 0 // after the lockout the address starts afresh
	}
}

// sweep drops stale records, and arbitrary ones if all are fresh, so that a
// flood from many addresses cannot grow memory without bound.
func (t *Throttle) sweep(now time.Time) {
	for k := range t.addrs {
		t.current(k, now)
	}
	for k := range t.addrs {
		if len(t.addrs) < t.cfg.MaxTracked {
			break
		}
		delete(t.addrs, k)
	}
}
