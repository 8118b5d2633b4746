package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/internal/auth"
	"postern.dev/postern/internal/testpg"
)

var throttleTestConfig = auth.ThrottleConfig{Window: time.Minute, SlowAfter: 2, BlockAfter: 4, BlockFor: 2 * time.Minute,
	MaxDelay: 3 * time.Second, MaxTracked: 1000}

// TestAddressThrottleMatchesMemory: the database's throttle gives the
// in-memory one's answers (verdict and delay of Reserve, Check) to the
// same random run of sign-ins from a few addresses (IPv6 /64 neighbours
// among them) — reservations in flight, failures, successes, undecided
// ends, time passing through windows and blocks — with the two nodes
// taking turns at the database.
func TestAddressThrottleMatchesMemory(t *testing.T) {
	url := testpg.New(t)
	a, b := openTest(t, url), openTest(t, url)
	defer a.Close()
	defer b.Close()
	nodes := []auth.AddressThrottle{a.AddressThrottle(throttleTestConfig), b.AddressThrottle(throttleTestConfig)}
	mem := auth.NewThrottle(throttleTestConfig)
	addrs := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2:3")}
	type open struct{ m, d *auth.Attempt }
	var flying []open
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Unix(1_800_000_000, 0)
	seen := map[auth.Verdict]int{}
	delayed := 0
	for step := range 600 {
		// Every attempt ends within a few steps of at most 20 s each, far
		// inside the database's bound on attempts whose end never came.
		switch r := rng.IntN(10); {
		case r < 4 || len(flying) == 0:
			ip := addrs[rng.IntN(len(addrs))]
			ma, md, mv := mem.Reserve(ip, now)
			da, dd, dv := nodes[step%2].Reserve(ip, now)
			if mv != dv || md != dd {
				t.Fatalf("step %d: Reserve(%v): database %v delay %v, memory %v delay %v", step, ip, dv, dd, mv, md)
			}
			seen[mv]++
			if md > 0 {
				delayed++
			}
			if mv == auth.Admit {
				flying = append(flying, open{ma, da})
			}
		case r < 8:
			i := rng.IntN(len(flying))
			failed := rng.IntN(4) != 0
			flying[i].m.Done(failed, now)
			flying[i].d.Done(failed, now)
			flying = append(flying[:i], flying[i+1:]...)
		default:
			ip := addrs[rng.IntN(len(addrs))]
			md, mv := mem.Check(ip, now)
			dd, dv := nodes[step%2].Check(ip, now)
			if mv != dv || md != dd {
				t.Fatalf("step %d: Check(%v): database %v delay %v, memory %v delay %v", step, ip, dv, dd, mv, md)
			}
		}
		if len(flying) > 3 {
			flying[0].m.Done(true, now)
			flying[0].d.Done(true, now)
			flying = flying[1:]
		}
		now = now.Add(time.Duration(rng.IntN(20)) * time.Second)
	}
	// The run went through every case, or it proves little.
	if seen[auth.Admit] == 0 || seen[auth.Blocked] == 0 || seen[auth.Pending] == 0 || delayed == 0 {
		t.Errorf("the run missed a case: verdicts %v, %d delayed", seen, delayed)
	}
	t.Logf("verdicts %v (0 admit, 1 blocked, 2 pending), %d delayed", seen, delayed)
}

// TestAddressThrottleAcrossNodes: guesses from one address spread over
// two nodes block it after BlockAfter failures in all, as at one node; 30
// parallel reservations over both nodes admit exactly BlockAfter (the
// rest wait, Pending), so parallel guesses verify no more passwords than
// sequential ones; the table never tracks more than MaxTracked addresses;
// an unreachable database admits nothing.
func TestAddressThrottleAcrossNodes(t *testing.T) {
	url := testpg.New(t)
	a, b := openTest(t, url), openTest(t, url)
	defer b.Close()
	cfg := throttleTestConfig
	cfg.MaxTracked = 20
	nodes := []auth.AddressThrottle{a.AddressThrottle(cfg), b.AddressThrottle(cfg)}
	now := time.Unix(1_800_000_000, 0)
	ip := netip.MustParseAddr("198.51.100.7")
	for i := range cfg.BlockAfter {
		at, _, v := nodes[i%2].Reserve(ip, now)
		if v != auth.Admit {
			t.Fatalf("failure %d refused: %v", i+1, v)
		}
		at.Done(true, now)
	}
	for i, n := range nodes {
		if _, v := n.Check(ip, now); v != auth.Blocked {
			t.Errorf("node %d after %d failures over both nodes: %v, want blocked", i, cfg.BlockAfter, v)
		}
	}

	other := netip.MustParseAddr("198.51.100.8")
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for i := range 30 {
		wg.Go(func() {
			if _, _, v := nodes[i%2].Reserve(other, now); v == auth.Admit {
				mu.Lock()
				admitted++
				mu.Unlock()
			} else if v != auth.Pending {
				t.Errorf("parallel reservation: %v", v)
			}
		})
	}
	wg.Wait()
	if admitted != cfg.BlockAfter {
		t.Errorf("%d of 30 parallel reservations admitted; want %d", admitted, cfg.BlockAfter)
	}

	// The cap: 60 addresses failing once each, over both nodes.
	for i := range 60 {
		at, _, v := nodes[i%2].Reserve(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), now)
		if v != auth.Admit {
			t.Fatalf("address %d: %v", i, v)
		}
		at.Done(true, now)
	}
	var rows, size int
	must(t, b.r.QueryRow("SELECT (SELECT COUNT(*) FROM auth_failures), (SELECT n FROM auth_failures_size)").Scan(&rows, &size))
	if rows > cfg.MaxTracked || rows != size {
		t.Errorf("%d addresses tracked (size row %d); want at most %d, counted exactly", rows, size, cfg.MaxTracked)
	}
	// The sweep drops what no longer counts.
	must(t, b.SweepThrottle(context.Background(), cfg, now.Add(time.Hour)))
	must(t, b.r.QueryRow("SELECT (SELECT COUNT(*) FROM auth_failures), (SELECT n FROM auth_failures_size)").Scan(&rows, &size))
	if rows != 0 || size != 0 {
		t.Errorf("after the sweep an hour later: %d rows, size %d", rows, size)
	}

	a.Close()
	if _, _, v := nodes[0].Reserve(netip.MustParseAddr("192.0.2.99"), now); v != auth.Unavailable {
		t.Errorf("Reserve without a database: %v, want Unavailable", v)
	}
	if _, v := nodes[0].Check(netip.MustParseAddr("192.0.2.99"), now); v != auth.Unavailable {
		t.Errorf("Check without a database: %v, want Unavailable", v)
	}
}

// BenchmarkAddressThrottle: one sign-in's cost on the database's throttle,
// Reserve then Done (two round trips), over 1,000 addresses.
func BenchmarkAddressThrottle(b *testing.B) {
	url := testpg.New(b)
	s := openTest(b, url)
	defer s.Close()
	th := s.AddressThrottle(auth.DefaultThrottleConfig)
	now := time.Unix(1_800_000_000, 0)
	for i := 0; b.Loop(); i++ {
		ip := netip.AddrFrom4([4]byte{10, 0, byte(i / 250 % 4), byte(i % 250)})
		at, _, v := th.Reserve(ip, now)
		if v != auth.Admit {
			b.Fatal(v)
		}
		at.Done(false, now)
	}
}

// BenchmarkConnectionSlots: one connection's cost on the database's slots,
// Acquire then Release (two round trips), over 1,000 mailboxes.
func BenchmarkConnectionSlots(b *testing.B) {
	url := testpg.New(b)
	s := openTest(b, url)
	defer s.Close()
	ctx := context.Background()
	slots, err := s.ConnectionSlots(ctx, fmt.Sprint("bench-", b.N), 3, time.Minute)
	must(b, err)
	for i := 0; b.Loop(); i++ {
		slot, held, err := slots.Acquire(ctx, int64(i%1000))
		if err != nil || !held {
			b.Fatal(held, err)
		}
		slots.Release(ctx, slot)
	}
}

// TestAddressThrottleSettled: a sign-in that finds its address's budget
// held (Pending) is woken at once when an attempt ends on its own node,
// and within the poll interval for one that ends on another; Reserve then
// admits it.
func TestAddressThrottleSettled(t *testing.T) {
	url := testpg.New(t)
	a, b := openTest(t, url), openTest(t, url)
	defer a.Close()
	defer b.Close()
	cfg := throttleTestConfig
	ta, tb := a.AddressThrottle(cfg).(*addressThrottle), b.AddressThrottle(cfg).(*addressThrottle)
	ip := netip.MustParseAddr("192.0.2.77")
	now := time.Now()
	var held []*auth.Attempt
	for i := range cfg.BlockAfter {
		at, _, v := []*addressThrottle{ta, tb}[i%2].Reserve(ip, now)
		if v != auth.Admit {
			t.Fatalf("attempt %d: %v", i, v)
		}
		held = append(held, at)
	}
	if _, _, v := ta.Reserve(ip, now); v != auth.Pending {
		t.Fatalf("past the budget: %v, want Pending", v)
	}
	for _, tc := range []struct {
		name string
		end  *auth.Attempt
	}{{"an attempt on this node", held[0]}, {"an attempt on the other node", held[1]}} {
		woken := ta.Settled(ip)
		tc.end.Done(false, now)
		select {
		case <-woken:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s ended: not woken", tc.name)
		}
		// The freed place is taken (and kept: the budget is full again
		// for the next case).
		if _, _, v := ta.Reserve(ip, now); v != auth.Admit {
			t.Fatalf("%s ended: Reserve %v, want Admit", tc.name, v)
		}
		if _, _, v := ta.Reserve(ip, now); v != auth.Pending {
			t.Fatalf("%s ended, its place taken again: Reserve %v, want Pending", tc.name, v)
		}
	}
	if ta.PendingWait() != cfg.PendingWait {
		t.Errorf("PendingWait %v, want %v", ta.PendingWait(), cfg.PendingWait)
	}
}
