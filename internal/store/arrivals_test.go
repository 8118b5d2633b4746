package store

import (
	"testing"
	"time"
)

// gather runs GatherGroup on a queue holding queued, with beside (when
// not nil) running in its own goroutine once the first has been taken.
func gather(t *testing.T, a *Arrivals, queued []int, linger time.Duration, limit int, beside func(q chan int)) []int {
	t.Helper()
	q := make(chan int, 16)
	for _, v := range queued {
		q <- v
	}
	first := <-q
	if beside != nil {
		go beside(q)
	}
	done := make(chan []int, 1)
	go func() { done <- GatherGroup(first, q, limit, a, linger, nil) }()
	select {
	case g := <-done:
		return g
	case <-time.After(30 * time.Second):
		t.Fatal("GatherGroup did not return (waiting for an arrival that had ended?)")
		return nil
	}
}

func TestGatherGroup(t *testing.T) {
	const long = time.Hour // a wait that must never run its course
	t.Run("nothing expected: what is queued, at once", func(t *testing.T) {
		g := gather(t, NewArrivals(), []int{1, 2, 3}, long, 128, nil)
		if len(g) != 3 {
			t.Fatalf("group %v, want [1 2 3]", g)
		}
	})
	t.Run("an expected message joins the group", func(t *testing.T) {
		a := NewArrivals()
		r := a.Begin()
		g := gather(t, a, []int{1}, long, 128, func(q chan int) {
			time.Sleep(10 * time.Millisecond) // still being received
			q <- 2
			r.Arrived()
		})
		if len(g) != 2 || g[1] != 2 {
			t.Fatalf("group %v, want [1 2]", g)
		}
		if a.Expected() != 0 {
			t.Fatalf("%d still expected", a.Expected())
		}
	})
	t.Run("an arrival that ends without a commit ends the wait", func(t *testing.T) {
		a := NewArrivals()
		r := a.Begin()
		g := gather(t, a, []int{1}, long, 128, func(chan int) {
			time.Sleep(10 * time.Millisecond)
			r.Arrived() // refused at the end of DATA
			r.Arrived() // and ended again by a deferred call: counted once
		})
		if len(g) != 1 || a.Expected() != 0 {
			t.Fatalf("group %v, %d expected", g, a.Expected())
		}
	})
	t.Run("the wait is bounded by linger", func(t *testing.T) {
		a := NewArrivals()
		a.Begin() // a slow upload that will not finish in time
		start := time.Now()
		g := gather(t, a, []int{1}, 20*time.Millisecond, 128, nil)
		if len(g) != 1 {
			t.Fatalf("group %v", g)
		}
		if waited := time.Since(start); waited < 20*time.Millisecond {
			t.Fatalf("returned after %v, before linger", waited)
		}
	})
	t.Run("a full group does not wait", func(t *testing.T) {
		a := NewArrivals()
		a.Begin()
		g := gather(t, a, []int{1, 2, 3, 4}, long, 3, nil)
		if len(g) != 3 {
			t.Fatalf("group %v, want 3 of them", g)
		}
	})
	t.Run("stop ends the wait", func(t *testing.T) {
		a := NewArrivals()
		a.Begin()
		q := make(chan int, 1)
		stop := make(chan struct{})
		close(stop)
		if g := GatherGroup(0, q, 128, a, long, stop); len(g) != 1 {
			t.Fatalf("group %v", g)
		}
	})
	t.Run("a stale token does not end the wait", func(t *testing.T) {
		a := NewArrivals()
		a.Begin().Arrived() // leaves a token: none expected, once
		r := a.Begin()
		g := gather(t, a, []int{1}, long, 128, func(q chan int) {
			time.Sleep(10 * time.Millisecond)
			q <- 2
			r.Arrived()
		})
		if len(g) != 2 {
			t.Fatalf("group %v, want [1 2]", g)
		}
	})
	t.Run("nil counts nothing", func(t *testing.T) {
		var a *Arrivals
		r := a.Begin()
		r.Arrived()
		if a.Expected() != 0 {
			t.Fatal("nil Arrivals expects something")
		}
		q := make(chan int, 1)
		q <- 2
		if g := GatherGroup(1, q, 128, a, long, nil); len(g) != 2 {
			t.Fatalf("group %v", g)
		}
	})
}
