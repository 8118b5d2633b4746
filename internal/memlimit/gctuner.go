package memlimit

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// The collector's pace while the live heap is small.
//
// GOGC=100, the runtime's default, collects whenever the heap has grown by
// as much as was live after the last collection. Postern's live heap is
// small (about 4 MiB relaying at 50 connections) and it allocates fast (a
// relayed 10 KiB message about 24 KiB), so it collected 36 times a second,
// and the collections, with the write barriers and assists each one turns
// on, cost about a tenth of the server's CPU per message (BENCHMARKS.md,
// "Fourth run"). TuneGC therefore lets the heap grow to HeapFloor before a
// collection while what is live is far below it, by raising GOGC after
// each collection (at most to MaxGCPercent), and lowers it back to 100
// once the live heap is half the floor: a large heap, the one of an argon2id
// burst above all, is paced as by default, and the soft memory limit
// (Apply) holds in every case.
const (
	HeapFloor    = 64 << 20
	MaxGCPercent = 1000
)

// gcPercent is the GOGC that lets a heap with live bytes live grow to
// floor before the next collection, within [100, maxPercent].
func gcPercent(live, floor uint64, maxPercent int) int {
	if live == 0 || live >= floor {
		return 100
	}
	return min(max(int((floor-live)*100/live), 100), maxPercent)
}

// TuneGC keeps GOGC at gcPercent(live heap, HeapFloor, MaxGCPercent) from
// now on, adjusting it after every collection, unless the GOGC environment
// variable is set (the operator's choice wins, as GOMEMLIMIT's does in
// Apply). It reports whether it tunes; calls after the first change
// nothing (one process, one collector).
func TuneGC() bool {
	tuneOnce.Do(func() {
		if os.Getenv("GOGC") == "" {
			startTuner(HeapFloor, MaxGCPercent)
			tuning = true
		}
	})
	return tuning
}

var (
	tuneOnce sync.Once
	tuning   bool
)

// startTuner starts tuning and returns the function that stops it and
// gives GOGC back its value from before.
func startTuner(floor uint64, maxPercent int) (stop func()) {
	t := &gcTuner{floor: floor, maxPercent: maxPercent,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.before, t.last = debug.SetGCPercent(100), 100
	t.arm()
	return t.stop
}

// gcTuner hears of each collection through a finalizer on an object
// nothing refers to, set again each time: the runtime runs it after the
// collection that found the object dead.
type gcTuner struct {
	floor      uint64
	maxPercent int
	sample     []metrics.Sample
	before     int
	last       int // the GOGC set last (only the finalizer touches it)
	stopped    atomic.Bool
}

// sentinel has a pointer, so that it is not one of the tiny allocations
// the runtime packs together (whose finalizers may run late or never).
type sentinel struct{ _ *int }

func (t *gcTuner) arm() {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) { t.collected() })
}

func (t *gcTuner) collected() {
	if t.stopped.Load() {
		return
	}
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		if p := gcPercent(t.sample[0].Value.Uint64(), t.floor, t.maxPercent); p != t.last {
			debug.SetGCPercent(p)
			t.last = p
		}
	}
	t.arm()
}

func (t *gcTuner) stop() {
	if t.stopped.CompareAndSwap(false, true) {
		debug.SetGCPercent(t.before)
	}
}
