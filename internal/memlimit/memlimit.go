// Package memlimit sets the Go runtime's soft memory limit, gives memory
// back to the operating system after bursts of large, short-lived
// allocations (argon2id password verifications: 19 MiB each), and paces
// the collector for a small live heap (TuneGC, gctuner.go).
//
// Why both: the Go collector paces itself by the heap of the last
// collection. During a burst of first sign-ins that heap is full of
// argon2id blocks, so the next collection is due only when the heap has
// grown to about twice that, and an idle server allocates too little to
// get there: the dead blocks stay resident until the forced collection
// every two minutes, and the scavenger returns them slowly after that.
// Releaser collects and returns them once the burst is over; a soft limit
// (GOMEMLIMIT, or memory_limit in the configuration) makes the collector
// work harder, during the burst too, as the process nears the limit.
package memlimit

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Apply sets the runtime's soft memory limit to limit bytes (0: none),
// unless the GOMEMLIMIT environment variable is set, which the runtime
// has applied already and which wins. It returns the limit in force and
// where it comes from ("GOMEMLIMIT", "memory_limit" or "none").
func Apply(limit int64) (int64, string) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1), "GOMEMLIMIT"
	}
	if limit <= 0 {
		debug.SetMemoryLimit(math.MaxInt64)
		return 0, "none"
	}
	debug.SetMemoryLimit(limit)
	return limit, "memory_limit"
}

// ParseSize reads a size as the configuration writes it: a number of
// bytes with an optional unit B, KiB, MiB, GiB (powers of 1024) or KB,
// MB, GB (powers of 1000); "0", "" and "off" mean no limit.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" || strings.EqualFold(s, "off") {
		return 0, nil
	}
	num := strings.TrimRight(s, "BbKkMmGgIi ")
	unit := strings.TrimSpace(s[len(num):])
	mult := map[string]int64{"": 1, "b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
		"kb": 1e3, "mb": 1e6, "gb": 1e9}[strings.ToLower(unit)]
	n, err := strconv.ParseInt(num, 10, 64)
	if mult == 0 || err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is not a size (e.g. 512MiB, 2GiB, off)", s)
	}
	return n * mult, nil
}

// Releaser returns freed memory to the operating system (a collection,
// then debug.FreeOSMemory) a moment after a burst ends, at most once per
// MinInterval, so that a steady trickle of verifications does not turn
// into a full collection each.
type Releaser struct {
	// Delay is how long after Soon the memory is released, so that
	// attempts that arrive together are one burst.
	Delay time.Duration
	// MinInterval is the least time between two releases.
	MinInterval time.Duration
	// Busy, when set, reports that the burst goes on; a release due then
	// is skipped (the next Soon schedules another).
	Busy func() bool
	// release is debug.FreeOSMemory; replaced in tests.
	release func()

	mu      sync.Mutex
	pending bool
	last    time.Time
	count   int
}

// NewReleaser makes a Releaser with the given delay and least interval.
func NewReleaser(delay, minInterval time.Duration) *Releaser {
	return &Releaser{Delay: delay, MinInterval: minInterval, release: debug.FreeOSMemory}
}

// Soon schedules a release: Delay from now, or once MinInterval has passed
// since the last one. Calls while one is scheduled fold into it. It never
// blocks.
func (r *Releaser) Soon() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending {
		return
	}
	r.pending = true
	wait := r.Delay
	if next := time.Until(r.last.Add(r.MinInterval)); next > wait {
		wait = next
	}
	time.AfterFunc(wait, r.fire)
}

func (r *Releaser) fire() {
	if r.Busy != nil && r.Busy() {
		r.mu.Lock()
		r.pending = false
		r.mu.Unlock()
		return
	}
	r.release()
	r.mu.Lock()
	r.pending = false
	r.last = time.Now()
	r.count++
	r.mu.Unlock()
}

// Releases returns how many releases ran.
func (r *Releaser) Releases() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}
