package memlimit

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercent(t *testing.T) {
	const floor = 64 << 20
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 100},        // nothing measured yet
		{1 << 20, 1000}, // 1 MiB: 6,300% would reach the floor; capped
		{4 << 20, 1000}, // the relay benchmark's live heap: 1,500%, capped
		{8 << 20, 700},  // 8 + 56 = 64 MiB
		{16 << 20, 300}, // 16 + 48
		{32 << 20, 100}, // the default reaches the floor itself
		{48 << 20, 100}, // above half the floor: never below the default
		{floor, 100},    // at the floor
		{1 << 30, 100},  // an argon2id burst: paced as by default
	} {
		if got := gcPercent(c.live, floor, 1000); got != c.want {
			t.Errorf("gcPercent(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}

// TestTuner: after a collection with a small live heap, GOGC is raised;
// stopping gives back the value from before.
func TestTuner(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	stop := startTuner(HeapFloor, MaxGCPercent)
	gogc := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		metrics.Read(gogc)
		if gogc[0].Value.Uint64() > 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GOGC still %d after collections with a small heap", gogc[0].Value.Uint64())
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	metrics.Read(gogc)
	if gogc[0].Value.Uint64() != 100 {
		t.Errorf("GOGC %d after stop, want 100 (the value before)", gogc[0].Value.Uint64())
	}
}

func TestTuneGCLeavesOperatorsGOGC(t *testing.T) {
	t.Setenv("GOGC", "200")
	if TuneGC() {
		t.Error("tuning although GOGC is set")
	}
}
