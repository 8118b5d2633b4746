package auth

import (
	"errors"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"postern.dev/postern/internal/metrics"
)

// GateConfig bounds password verifications. An argon2id verification at
// DefaultParams allocates 19 MiB for its whole run, so the number running at
// once is what bounds the memory a flood of AUTH attempts can make the
// server spend (DESIGN.md, "Bounded under attack": password verifications in
// flight are capped before they are spent).
type GateConfig struct {
	// Concurrency is how many verifications run at once. More than the
	// cores only adds memory: argon2id with one lane is CPU-bound.
	Concurrency int
	// Queue is how many more may wait for a turn; past it an attempt is
	// refused at once. Negative: none wait.
	Queue int
	// Wait is the longest an attempt waits for its turn.
	Wait time.Duration
	// PerAddress is how many verifications one client address (IPv6 per
	// /64) may have running or waiting, so that one address cannot take
	// the whole queue from the others.
	PerAddress int
}

// DefaultGateConfig: one verification per core (at most 8, 152 MiB of
// argon2id memory), 64 waiting, 5 seconds of wait at most, 8 per address.
// At the ~40-100 verifications a second these machines manage (DESIGN.md),
// a full queue drains in about a second.
var DefaultGateConfig = GateConfig{Concurrency: min(runtime.GOMAXPROCS(0), 8), Queue: 64, Wait: 5 * time.Second, PerAddress: 8}

// ErrBusy is returned when a verification was refused or waited too long:
// the client should try again later (RFC 4954 section 6's 454 4.7.0).
var ErrBusy = errors.New("too many password verifications in progress")

// Gate runs password verifications with bounded concurrency and a bounded,
// first-come-first-served wait queue, with a share per client address. A
// refused attempt costs nothing but a map lookup, so a flood gets quick
// refusals, never unbounded memory or goroutines stuck for long.
type Gate struct {
	cfg GateConfig
	sem chan struct{}

	mu      sync.Mutex
	waiting int
	held    map[netip.Prefix]int // running or waiting per address; at most Concurrency+Queue keys
	// overShare counts attempts waiting because their address holds its
	// share (at most Queue); left is closed, and replaced, when an attempt
	// leaves while any of them waits.
	overShare int
	left      chan struct{}
	drained   func()

	verified, refused atomic.Int64
}

// NewGate makes a gate; zero fields take DefaultGateConfig's values.
func NewGate(cfg GateConfig) *Gate {
	cfg = cfg.withDefaults()
	return &Gate{cfg: cfg, sem: make(chan struct{}, cfg.Concurrency), held: make(map[netip.Prefix]int), left: make(chan struct{})}
}

// OnDrained sets f to be called whenever the gate empties: the last
// verification finished and none waits. The server returns the
// verifications' memory to the operating system then (memlimit.Releaser):
// each argon2id verification leaves 19 MiB of garbage that the collector,
// paced by the heap of the busy moment, would otherwise keep for minutes.
// f runs on the goroutine of the verification that finished; it must not
// block.
func (g *Gate) OnDrained(f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.drained = f
}

func (cfg GateConfig) withDefaults() GateConfig {
	d := DefaultGateConfig
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = d.Concurrency
	}
	if cfg.Queue < 0 {
		cfg.Queue = 0
	} else if cfg.Queue == 0 {
		cfg.Queue = d.Queue
	}
	if cfg.Wait <= 0 {
		cfg.Wait = d.Wait
	}
	if cfg.PerAddress <= 0 {
		cfg.PerAddress = d.PerAddress
	}
	return cfg
}

// Config returns the gate's effective configuration.
func (g *Gate) Config() GateConfig {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cfg
}

// Reconfigure changes the bounds (a configuration reload; zero fields take
// the defaults, as in NewGate). Attempts admitted before it finish under
// the bounds they were admitted by: a new concurrency starts a new set of
// slots, so for the length of the verifications already running (tens of
// milliseconds) up to both sets may run.
func (g *Gate) Reconfigure(cfg GateConfig) {
	cfg = cfg.withDefaults()
	g.mu.Lock()
	defer g.mu.Unlock()
	if cfg.Concurrency != g.cfg.Concurrency {
		g.sem = make(chan struct{}, cfg.Concurrency)
	}
	g.cfg = cfg
}

// errOverShare is admit's answer when the address already holds its share:
// the attempt waits for one of the address's own attempts to leave.
var errOverShare = errors.New("the address holds its share of the gate")

// admit decides whether an attempt from address k may run or wait: it is
// over its share when the address already holds PerAddress places, and
// refused when every slot is busy and the queue is full. It records the
// attempt when admitted and reports whether it has to queue. g.mu is held.
func (g *Gate) admit(k netip.Prefix) (queue bool, err error) {
	if g.held[k] >= g.cfg.PerAddress {
		return false, errOverShare
	}
	select {
	case g.sem <- struct{}{}:
		g.held[k]++
		return false, nil
	default:
	}
	if g.waiting >= g.cfg.Queue {
		return false, ErrBusy
	}
	g.waiting++
	g.held[k]++
	return true, nil
}

func (g *Gate) leave(k netip.Prefix) {
	g.mu.Lock()
	if g.held[k]--; g.held[k] <= 0 {
		delete(g.held, k)
	}
	if g.overShare > 0 {
		close(g.left)
		g.left = make(chan struct{})
	}
	drained := len(g.held) == 0 && g.overShare == 0 && g.drained != nil
	f := g.drained
	g.mu.Unlock()
	if drained {
		f()
	}
}

// admitWithin admits an attempt from k (see admit). An attempt over its
// address's share waits, up to wait, for one of the address's own attempts
// to leave, outside the shared queue: a print server whose fifty users
// sign in at once is served in turn instead of hearing 454, while the
// share still keeps one address from taking the queue from the others.
// Such waits are few: a sign-in reaches the gate only within its address's
// failed-sign-in budget (Throttle), and at most Queue attempts wait over
// their share at once. g.mu is held on entry and on return.
func (g *Gate) admitWithin(k netip.Prefix, wait time.Duration) (queue bool, err error) {
	var deadline time.Time
	for {
		queue, err = g.admit(k)
		if err != errOverShare {
			return queue, err
		}
		if g.overShare >= g.cfg.Queue {
			return false, ErrBusy
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(wait)
		}
		left := g.left
		g.overShare++
		g.mu.Unlock()
		t := time.NewTimer(time.Until(deadline))
		timedOut := false
		select {
		case <-left:
		case <-t.C:
			timedOut = true
		}
		t.Stop()
		g.mu.Lock()
		g.overShare--
		if timedOut {
			return false, ErrBusy
		}
	}
}

// Do runs verify when its turn comes, or returns ErrBusy without running it.
func (g *Gate) Do(ip netip.Addr, verify func()) error {
	k := key(ip)
	g.mu.Lock()
	queue, err := g.admitWithin(k, g.cfg.Wait)
	// The slots and the wait this attempt was admitted under, kept even
	// if a reload replaces them meanwhile.
	sem, wait := g.sem, g.cfg.Wait
	g.mu.Unlock()
	if err != nil {
		g.refused.Add(1)
		metrics.GateRefused.Inc()
		return err
	}
	if queue {
		t := time.NewTimer(wait)
		select {
		case sem <- struct{}{}:
			t.Stop()
			g.mu.Lock()
			g.waiting--
			g.mu.Unlock()
		case <-t.C:
			g.mu.Lock()
			g.waiting--
			g.mu.Unlock()
			g.leave(k)
			g.refused.Add(1)
			metrics.GateRefused.Inc()
			return ErrBusy
		}
	}
	defer func() {
		<-sem
		g.leave(k)
	}()
	verify()
	g.verified.Add(1)
	return nil
}

// Load returns how many verifications run now and how many wait for a
// turn (the postern_auth_verify_in_flight and _queued gauges).
func (g *Gate) Load() (inFlight, waiting int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sem), g.waiting
}

// Stats returns how many verifications ran and how many were refused since
// the gate was made.
func (g *Gate) Stats() (verified, refused int64) { return g.verified.Load(), g.refused.Load() }
