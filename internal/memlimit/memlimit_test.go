package memlimit

import (
	"math"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "", want: 0}, {in: "0", want: 0}, {in: "off", want: 0}, {in: "OFF", want: 0},
		{in: "1048576", want: 1 << 20}, {in: "512MiB", want: 512 << 20}, {in: "2GiB", want: 2 << 30},
		{in: "64 KiB", want: 64 << 10}, {in: "500MB", want: 500e6}, {in: "1gb", want: 1e9}, {in: "100B", want: 100},
		{in: "12TiB", bad: true}, {in: "-1MiB", bad: true}, {in: "MiB", bad: true}, {in: "1.5GiB", bad: true},
		{in: "9223372036854775807GiB", bad: true}, {in: "lots", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, bad %v", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestApply(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetMemoryLimit(math.MaxInt64)
	if n, from := Apply(256 << 20); n != 256<<20 || from != "memory_limit" || debug.SetMemoryLimit(-1) != 256<<20 {
		t.Fatalf("Apply(256MiB) = %d %s", n, from)
	}
	if n, from := Apply(0); n != 0 || from != "none" || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Fatalf("Apply(0) = %d %s", n, from)
	}
	t.Setenv("GOMEMLIMIT", "300MiB") // set before start in real use; here only its presence counts
	if _, from := Apply(256 << 20); from != "GOMEMLIMIT" || debug.SetMemoryLimit(-1) == 256<<20 {
		t.Fatalf("GOMEMLIMIT set: from %s, limit %d", from, debug.SetMemoryLimit(-1))
	}
}

// TestReleaser: calls while a release is scheduled fold into it; the next
// comes no sooner than MinInterval after the last; a release due while
// Busy is skipped.
func TestReleaser(t *testing.T) {
	var released atomic.Int32
	r := NewReleaser(10*time.Millisecond, 200*time.Millisecond)
	r.release = func() { released.Add(1) }
	for range 100 {
		r.Soon()
	}
	waitFor(t, func() bool { return r.Releases() == 1 })
	begin := time.Now()
	r.Soon()
	r.Soon()
	waitFor(t, func() bool { return r.Releases() == 2 })
	if since := time.Since(begin); since < 150*time.Millisecond {
		t.Fatalf("second release %v after the first was asked, want at least MinInterval later", since)
	}
	if n := released.Load(); n != 2 {
		t.Fatalf("%d releases, want 2", n)
	}

	var busy atomic.Bool
	busy.Store(true)
	r = NewReleaser(time.Millisecond, 0)
	r.release = func() { released.Add(1) }
	r.Busy = busy.Load
	r.Soon()
	waitFor(t, func() bool { r.mu.Lock(); defer r.mu.Unlock(); return !r.pending })
	if r.Releases() != 0 {
		t.Fatal("released while busy")
	}
	busy.Store(false)
	r.Soon()
	waitFor(t, func() bool { return r.Releases() == 1 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 30 s")
		}
	}
}

// FuzzParseSize: no input panics, and a size accepted is never negative.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"512MiB", "2 GiB", "off", "0", "9223372036854775807", "8EiB", "-1KB", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
	})
}
