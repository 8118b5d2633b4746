package auth

import (
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReserveDecisions walks the per-address throttle through its
// decisions with a fake clock: delays counted over failures (never over
// attempts in flight), Pending while the budget is reserved, Blocked after
// BlockAfter failures, and a fresh start after the lockout.
func TestReserveDecisions(t *testing.T) {
	cfg := ThrottleConfig{Window: 15 * time.Minute, SlowAfter: 3, BlockAfter: 5, BlockFor: 15 * time.Minute, MaxDelay: 5 * time.Second}
	ip := netip.MustParseAddr("192.0.2.7")
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	type step struct {
		at      time.Duration // after t0
		reserve bool          // reserve a new attempt (else: finish the oldest one held)
		failed  bool          // when finishing
		verdict Verdict
		delay   time.Duration
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"parallel attempts fill the budget", []step{
			{reserve: true, verdict: Admit}, {reserve: true, verdict: Admit}, {reserve: true, verdict: Admit},
			{reserve: true, verdict: Admit}, {reserve: true, verdict: Admit},
			{reserve: true, verdict: Pending},
		}},
		{"a success frees its place", []step{
			{reserve: true}, {reserve: true}, {reserve: true}, {reserve: true}, {reserve: true},
			{reserve: true, verdict: Pending},
			{failed: false},
			{reserve: true},
		}},
		{"failures lock the address out", []step{
			{reserve: true}, {failed: true}, {reserve: true}, {failed: true}, {reserve: true}, {failed: true},
			{reserve: true, delay: time.Second}, {failed: true}, {reserve: true, delay: 2 * time.Second}, {failed: true},
			{reserve: true, verdict: Blocked},
			{at: 14 * time.Minute, reserve: true, verdict: Blocked},
			{at: 16 * time.Minute, reserve: true, verdict: Admit},
		}},
		{"failures expire with the window", []step{
			{reserve: true}, {failed: true}, {reserve: true}, {failed: true}, {reserve: true}, {failed: true},
			{at: time.Minute, reserve: true, delay: time.Second}, {failed: false},
			{at: 17 * time.Minute, reserve: true, verdict: Admit},
		}},
		{"a reservation held across the window", []step{
			{reserve: true}, {failed: true}, {reserve: true}, {failed: true}, {reserve: true}, {failed: true},
			{at: time.Minute, reserve: true, delay: time.Second},
			{at: 30 * time.Minute, failed: true},
			{at: 30 * time.Minute, reserve: true, verdict: Admit},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := NewThrottle(cfg)
			var held []*Attempt
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				if !s.reserve {
					held[0].Done(s.failed, now)
					held[0].Done(true, now) // a second Done does nothing
					held = held[1:]
					continue
				}
				a, d, v := th.Reserve(ip, now)
				if v != s.verdict || d != s.delay || (a != nil) != (v == Admit) {
					t.Fatalf("step %d: verdict %v delay %v attempt %v, want %v %v", i, v, d, a != nil, s.verdict, s.delay)
				}
				if a != nil {
					held = append(held, a)
				}
			}
		})
	}
}

// TestParallelGuessesAreBounded: N parallel wrong guesses from one address
// verify at most BlockAfter passwords; the rest are refused before any
// verification. Run with -race.
func TestParallelGuessesAreBounded(t *testing.T) {
	th := NewThrottle(DefaultThrottleConfig)
	lo := NewLockout(DefaultLockoutConfig)
	ip := netip.MustParseAddr("198.51.100.20")
	const n = 200
	var verified, refused atomic.Int32
	var wg, decided sync.WaitGroup
	decided.Add(n)
	allDecided := make(chan struct{})
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			now := time.Now()
			a, _, v := th.Reserve(ip, now)
			if v != Admit {
				refused.Add(1)
				decided.Done()
				return
			}
			s, locked := lo.Begin("mailbox:1", ip, fmt.Sprint("guess", i), now)
			if locked {
				refused.Add(1)
				a.Done(true, now)
				decided.Done()
				return
			}
			verified.Add(1)
			decided.Done()
			// The "verification" lasts until every guess has been
			// admitted or refused: the worst case for a throttle that
			// counted failures only once they are known.
			<-allDecided
			s.Done(true, false, now)
			a.Done(true, now)
		})
	}
	close(start)
	decided.Wait()
	close(allDecided)
	wg.Wait()
	if v := verified.Load(); v < 1 || v > int32(DefaultThrottleConfig.BlockAfter) {
		t.Fatalf("%d of %d parallel guesses verified, want 1..%d", v, n, DefaultThrottleConfig.BlockAfter)
	}
	if verified.Load()+refused.Load() != n {
		t.Fatal("every guess is either verified or refused")
	}
}

// TestLockoutDecisions: the smart lockout with a fake clock.
func TestLockoutDecisions(t *testing.T) {
	cfg := LockoutConfig{Threshold: 3, Window: 15 * time.Minute, Duration: time.Minute, MaxDuration: 3 * time.Minute,
		FamiliarFor: 24 * time.Hour, FamiliarPerAccount: 2, MaxAccounts: 100}
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	home, home2, home3 := "192.0.2.1", "192.0.2.2", "192.0.2.3"
	type step struct {
		at       time.Duration
		addr     string
		password string // "right" succeeds, anything else fails
		account  string // default "a"
		locked   bool   // expected from Begin
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"unfamiliar failures lock, familiar keeps working", []step{
			{addr: home, password: "right"},
			{addr: "203.0.113.1", password: "g1"}, {addr: "203.0.113.2", password: "g2"}, {addr: "203.0.113.3", password: "g3"},
			{addr: "203.0.113.4", password: "right", locked: true},
			{addr: home, password: "right"},
			{addr: home, password: "typo"},                      // familiar failures are not counted
			{addr: "203.0.113.1", password: "g4", account: "b"}, // another account is not locked
			{at: 61 * time.Second, addr: "203.0.113.4", password: "right"},
		}},
		{"first failure after a lockout locks again, for twice as long, up to the maximum", []step{
			{addr: "203.0.113.1", password: "g1"}, {addr: "203.0.113.1", password: "g2"}, {addr: "203.0.113.1", password: "g3"},
			{at: 59 * time.Second, addr: "203.0.113.9", password: "g4", locked: true},
			{at: 61 * time.Second, addr: "203.0.113.9", password: "g4"},
			{at: 62 * time.Second, addr: "203.0.113.9", password: "g5", locked: true},
			{at: 180 * time.Second, addr: "203.0.113.9", password: "g5", locked: true},
			{at: 182 * time.Second, addr: "203.0.113.9", password: "g5"},
			{at: 183 * time.Second, password: "g6", addr: "203.0.113.9", locked: true},
			{at: 361 * time.Second, password: "g6", addr: "203.0.113.9", locked: true},
			{at: 364 * time.Second, password: "g6", addr: "203.0.113.9"},
		}},
		{"a repeated wrong password is counted once", []step{
			{addr: "203.0.113.1", password: "stale"}, {addr: "203.0.113.1", password: "stale"}, {addr: "203.0.113.1", password: "stale"},
			{addr: "203.0.113.1", password: "stale"}, {addr: "203.0.113.1", password: "other"},
			{addr: "203.0.113.1", password: "third"},
			{addr: "203.0.113.1", password: "right", locked: true},
		}},
		{"failures expire", []step{
			{addr: "203.0.113.1", password: "g1"}, {addr: "203.0.113.1", password: "g2"},
			{at: 16 * time.Minute, addr: "203.0.113.1", password: "g3"},
			{at: 16 * time.Minute, addr: "203.0.113.1", password: "g4"},
			{at: 16 * time.Minute, addr: "203.0.113.1", password: "right"},
		}},
		{"familiar addresses are bounded per account and expire", []step{
			{addr: home, password: "right"}, {addr: home2, password: "right"}, {addr: home3, password: "right"},
			{addr: "203.0.113.1", password: "g1"}, {addr: "203.0.113.1", password: "g2"}, {addr: "203.0.113.1", password: "g3"},
			{addr: home3, password: "right"}, {addr: home2, password: "right"},
			{addr: home, password: "right", locked: true}, // the oldest of three was forgotten
			{at: 25 * time.Hour, addr: "203.0.113.1", password: "g4"},
			{at: 25 * time.Hour, addr: home2, password: "g5"},
			{at: 25 * time.Hour, addr: home3, password: "g6"},
			{at: 25 * time.Hour, addr: home2, password: "right", locked: true}, // no longer familiar
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLockout(cfg)
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				acct := s.account
				if acct == "" {
					acct = "a"
				}
				ip := netip.MustParseAddr(s.addr)
				si, locked := l.Begin(acct, ip, s.password, now)
				if locked != s.locked {
					t.Fatalf("step %d (%s from %s at %v): locked %v, want %v", i, s.password, s.addr, s.at, locked, s.locked)
				}
				if l.Locked(acct, ip, now) != (locked && l.accounts[acct] != nil && now.Before(l.accounts[acct].lockedUntil)) {
					t.Fatalf("step %d: Locked disagrees with Begin", i)
				}
				if !locked {
					si.Done(s.password != "right", s.password == "right", now)
				}
			}
		})
	}
}

// TestLockoutInFlightCounts: attempts from unfamiliar addresses still being
// verified count against the threshold.
func TestLockoutInFlightCounts(t *testing.T) {
	l := NewLockout(LockoutConfig{Threshold: 2})
	now := time.Now()
	a, _ := l.Begin("x", netip.MustParseAddr("203.0.113.1"), "p1", now)
	b, _ := l.Begin("x", netip.MustParseAddr("203.0.113.2"), "p2", now)
	if _, locked := l.Begin("x", netip.MustParseAddr("203.0.113.3"), "p3", now); !locked {
		t.Fatal("a third attempt while two are in flight must wait for them")
	}
	a.Done(false, false, now) // not decided: frees its place
	if c, locked := l.Begin("x", netip.MustParseAddr("203.0.113.3"), "p3", now); locked {
		t.Fatal("a freed place is available again")
	} else {
		c.Done(true, false, now)
	}
	b.Done(true, false, now)
	if !l.Locked("x", netip.MustParseAddr("203.0.113.4"), now) {
		t.Fatal("two failures lock")
	}
}

// TestLockoutBounded: a spray over many names keeps both tables within
// MaxAccounts.
func TestLockoutBounded(t *testing.T) {
	l := NewLockout(LockoutConfig{MaxAccounts: 50})
	now := time.Now()
	ip := netip.MustParseAddr("203.0.113.1")
	for i := range 1000 {
		s, _ := l.Begin(fmt.Sprint("name:", i), ip, "p", now)
		s.Done(i%2 == 0, i%2 == 1, now)
	}
	if len(l.accounts) > 50 || len(l.familiar) > 50 {
		t.Fatalf("tables grew to %d and %d", len(l.accounts), len(l.familiar))
	}
	th := NewThrottle(ThrottleConfig{Window: time.Minute, SlowAfter: 3, BlockAfter: 10, BlockFor: time.Minute, MaxDelay: time.Second, MaxTracked: 50})
	for i := range 1000 {
		a, _, _ := th.Reserve(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), now)
		a.Done(true, now)
	}
	if len(th.addrs) > 50 {
		t.Fatalf("throttle grew to %d", len(th.addrs))
	}
}

// TestGateAdmission: the gate's decisions, by state.
func TestGateAdmission(t *testing.T) {
	a, b := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("192.0.2.2/32")
	tests := []struct {
		name    string
		running int // slots taken
		waiting int
		held    map[netip.Prefix]int
		from    netip.Prefix
		queue   bool
		busy    bool
	}{
		{name: "free slot", from: a},
		{name: "slots busy, queue has room", running: 2, waiting: 1, from: a, queue: true},
		{name: "queue full", running: 2, waiting: 3, from: a, busy: true},
		{name: "address holds its share", held: map[netip.Prefix]int{a: 2}, from: a, busy: true},
		{name: "another address is not limited by it", running: 2, held: map[netip.Prefix]int{a: 2}, from: b, queue: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewGate(GateConfig{Concurrency: 2, Queue: 3, Wait: time.Second, PerAddress: 2})
			for range tt.running {
				g.sem <- struct{}{}
			}
			g.waiting = tt.waiting
			for k, v := range tt.held {
				g.held[k] = v
			}
			before := g.held[tt.from]
			queue, err := g.admit(tt.from)
			if (err != nil) != tt.busy || queue != tt.queue {
				t.Fatalf("queue %v err %v, want queue %v busy %v", queue, err, tt.queue, tt.busy)
			}
			if want := before + map[bool]int{true: 0, false: 1}[tt.busy]; g.held[tt.from] != want {
				t.Fatalf("held %d, want %d", g.held[tt.from], want)
			}
		})
	}
}

// TestGateBoundsConcurrency floods a gate from many addresses and checks
// that no more than Concurrency verifications ever run at once, that the
// excess is refused, that waiters past Wait give up, and that the gate is
// empty afterwards.
func TestGateBoundsConcurrency(t *testing.T) {
	g := NewGate(GateConfig{Concurrency: 2, Queue: 4, Wait: 20 * time.Millisecond, PerAddress: 3})
	release := make(chan struct{})
	var running, peak atomic.Int32
	var ok, busy atomic.Int32
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(i % 5)})
			err := g.Do(ip, func() {
				n := running.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				<-release
				running.Add(-1)
			})
			if err == nil {
				ok.Add(1)
			} else {
				busy.Add(1)
			}
		})
	}
	// The two running verifications hold their slots until released, so
	// every other attempt is refused at once or gives up after Wait.
	for deadline := time.Now().Add(30 * time.Second); busy.Load() < 58; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d refused", busy.Load())
		}
	}
	close(release)
	wg.Wait()
	if peak.Load() > 2 || ok.Load() != 2 || busy.Load() != 58 {
		t.Fatalf("peak %d, verified %d, refused %d", peak.Load(), ok.Load(), busy.Load())
	}
	if v, r := g.Stats(); v != 2 || r != 58 {
		t.Fatalf("stats %d %d", v, r)
	}
	if len(g.held) != 0 || g.waiting != 0 || len(g.sem) != 0 {
		t.Fatalf("gate not empty: %v %d %d", g.held, g.waiting, len(g.sem))
	}
	// A waiter is served when a slot frees within Wait.
	g = NewGate(GateConfig{Concurrency: 1, Queue: 1, Wait: time.Minute, PerAddress: 2})
	release = make(chan struct{})
	started, done := make(chan struct{}), make(chan error)
	go func() { done <- g.Do(netip.MustParseAddr("192.0.2.1"), func() { close(started); <-release }) }()
	<-started
	go func() { done <- g.Do(netip.MustParseAddr("192.0.2.2"), func() {}) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		g.mu.Lock()
		w := g.waiting
		g.mu.Unlock()
		if w == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("second attempt never queued")
		}
	}
	if err := g.Do(netip.MustParseAddr("192.0.2.3"), func() {}); err != ErrBusy {
		t.Fatalf("third attempt with a full queue: %v", err)
	}
	close(release) // the first finishes, the waiter runs
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestDummyCostsTheSame: unknown users are verified against a hash with
// the parameters every stored hash is made with.
func TestDummyCostsTheSame(t *testing.T) {
	p, _, key, err := decodeHash(dummyHash)
	if err != nil {
		t.Fatal(err)
	}
	if p.Memory != DefaultParams.Memory || p.Time != DefaultParams.Time || p.Threads != DefaultParams.Threads || uint32(len(key)) != DefaultParams.KeyLen {
		t.Fatalf("dummy hash %v, stored hashes %v", p, DefaultParams)
	}
	real, _ := HashPassword("x")
	if !strings.HasPrefix(real, strings.Join(strings.Split(dummyHash, "$")[:4], "$")+"$") {
		t.Fatalf("dummy %s and real %s differ in parameters", dummyHash, real)
	}
}

// BenchmarkGateFlood: one op is 1,000 verifications at DefaultParams
// attempted at once from 250 addresses through a default gate (a wave of an
// AUTH flood); reports verifications/s, how many of the 1,000 were refused
// (454) and the peak Go heap.
func BenchmarkGateFlood(b *testing.B) {
	h, _ := HashPassword("right")
	g := NewGate(GateConfig{})
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
		}
	}()
	for b.Loop() {
		var wg sync.WaitGroup
		for i := range 1000 {
			wg.Go(func() {
				g.Do(netip.AddrFrom4([4]byte{192, 0, 2, byte(i % 250)}), func() { VerifyPassword(h, "wrong") })
			})
		}
		wg.Wait()
	}
	close(stop)
	v, r := g.Stats()
	b.ReportMetric(float64(v)/b.Elapsed().Seconds(), "verifications/s")
	b.ReportMetric(float64(r)/float64(b.N), "refused/op")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
}

// TestGateShareWaits: an attempt over its address's share waits outside
// the queue for one of the address's own attempts to leave, and runs then;
// past Wait it is refused. Other addresses are not held up by it, and the
// drained hook runs once the gate is empty.
func TestGateShareWaits(t *testing.T) {
	g := NewGate(GateConfig{Concurrency: 2, Queue: 4, Wait: time.Minute, PerAddress: 1})
	var drained atomic.Int32
	g.OnDrained(func() { drained.Add(1) })
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	release := make(chan struct{})
	started := make(chan struct{})
	first := make(chan error)
	go func() { first <- g.Do(a, func() { close(started); <-release }) }()
	<-started
	second := make(chan error)
	ran := make(chan struct{})
	go func() { second <- g.Do(a, func() { close(ran) }) }()
	waitOverShare(t, g, 1)
	// Another address runs meanwhile: the waiting attempt holds no slot
	// and no place in the queue.
	if err := g.Do(b, func() {}); err != nil {
		t.Fatalf("another address: %v", err)
	}
	if n := drained.Load(); n != 0 {
		t.Fatalf("drained %d times while attempts ran or waited", n)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatalf("the attempt over its share: %v", err)
	}
	<-ran
	if n := drained.Load(); n != 1 {
		t.Fatalf("drained %d times, want 1 (when the last attempt left)", n)
	}

	// Past Wait, an attempt over its share is refused.
	g = NewGate(GateConfig{Concurrency: 1, Queue: 4, Wait: 20 * time.Millisecond, PerAddress: 1})
	release = make(chan struct{})
	started = make(chan struct{})
	go func() { first <- g.Do(a, func() { close(started); <-release }) }()
	<-started
	if err := g.Do(a, func() { t.Error("ran over its share") }); err != ErrBusy {
		t.Fatalf("over its share past Wait: %v", err)
	}
	close(release)
	<-first
	if g.overShare != 0 || len(g.held) != 0 {
		t.Fatalf("gate not empty: %d over share, held %v", g.overShare, g.held)
	}
}

func waitOverShare(t *testing.T, g *Gate, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		g.mu.Lock()
		w := g.overShare
		g.mu.Unlock()
		if w == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d attempts waiting over their share, want %d", w, n)
		}
	}
}

// TestThrottleSettled: Settled is closed at once when Reserve would not
// say Pending, and otherwise when an attempt in flight ends.
func TestThrottleSettled(t *testing.T) {
	th := NewThrottle(ThrottleConfig{Window: time.Minute, SlowAfter: 3, BlockAfter: 2, BlockFor: time.Minute, MaxDelay: time.Second})
	ip := netip.MustParseAddr("192.0.2.7")
	now := time.Now()
	closed := func(c <-chan struct{}) bool {
		select {
		case <-c:
			return true
		default:
			return false
		}
	}
	if !closed(th.Settled(ip)) {
		t.Fatal("nothing in flight: closed")
	}
	a1, _, _ := th.Reserve(ip, now)
	if !closed(th.Settled(ip)) {
		t.Fatal("a place is free: closed")
	}
	a2, _, _ := th.Reserve(ip, now)
	if _, _, v := th.Reserve(ip, now); v != Pending {
		t.Fatalf("verdict %v, want Pending", v)
	}
	c := th.Settled(ip)
	if closed(c) {
		t.Fatal("the budget is held: open")
	}
	a1.Done(false, now)
	if !closed(c) {
		t.Fatal("an attempt ended: closed")
	}
	if _, _, v := th.Reserve(ip, now); v != Admit {
		t.Fatalf("after a success: %v, want Admit", v)
	}
	a2.Done(true, now)
}
