package auth

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

// TestGateReconfigure: new bounds apply to attempts admitted after the
// change; an attempt running under the old slots finishes and frees them
// without touching the new ones; zero fields take the defaults.
func TestGateReconfigure(t *testing.T) {
	g := NewGate(GateConfig{Concurrency: 1, Queue: -1, Wait: time.Second, PerAddress: 4})
	ip := netip.MustParseAddr("192.0.2.1")
	running, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		g.Do(ip, func() { close(running); <-release })
	})
	<-running
	if err := g.Do(ip, func() {}); err != ErrBusy {
		t.Fatalf("one slot, no queue: %v", err)
	}
	g.Reconfigure(GateConfig{Concurrency: 2, Queue: -1, Wait: time.Second, PerAddress: 4})
	if c := g.Config(); c.Concurrency != 2 || c.Queue != 0 {
		t.Fatalf("config %+v", c)
	}
	ran := false
	if err := g.Do(ip, func() { ran = true }); err != nil || !ran {
		t.Fatalf("after raising the concurrency: %v", err)
	}
	close(release)
	wg.Wait()
	if in, waiting := g.Load(); in != 0 || waiting != 0 || len(g.held) != 0 {
		t.Fatalf("left over: %d running, %d waiting, held %v", in, waiting, g.held)
	}
	g.Reconfigure(GateConfig{PerAddress: 1})
	if c := g.Config(); c.Concurrency != DefaultGateConfig.Concurrency || c.Queue != DefaultGateConfig.Queue || c.PerAddress != 1 {
		t.Fatalf("defaults: %+v", c)
	}
}

// TestLockoutReconfigure: a lowered threshold counts the failures already
// recorded; zero fields take the defaults.
func TestLockoutReconfigure(t *testing.T) {
	l := NewLockout(LockoutConfig{Threshold: 5})
	now := time.Now()
	for i, p := range []string{"a", "b"} {
		s, locked := l.Begin("x", netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)}), p, now)
		if locked {
			t.Fatal("locked early")
		}
		s.Done(true, false, now)
	}
	if l.Locked("x", netip.MustParseAddr("203.0.113.9"), now) {
		t.Fatal("two failures under a threshold of 5")
	}
	l.Reconfigure(LockoutConfig{Threshold: 3, Duration: 2 * time.Minute})
	s, _ := l.Begin("x", netip.MustParseAddr("203.0.113.3"), "c", now)
	s.Done(true, false, now)
	if !l.Locked("x", netip.MustParseAddr("203.0.113.9"), now.Add(90*time.Second)) {
		t.Fatal("the third failure under the new threshold of 3 locks, for the new 2 minutes")
	}
	if c := l.Config(); c.MaxAccounts != DefaultLockoutConfig.MaxAccounts || c.Window != DefaultLockoutConfig.Window {
		t.Fatalf("defaults: %+v", c)
	}
}
