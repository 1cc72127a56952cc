package gctune

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		live, floor uint64
		least, want int
	}{
		{20 * mb, 128 * mb, 100, 540},  // goal 20 × 6.4 = 128 MB
		{32 * mb, 128 * mb, 100, 300},  // 32 × 4
		{64 * mb, 128 * mb, 100, 100},  // floor = twice the live heap: Go's default
		{100 * mb, 128 * mb, 100, 100}, // more than half the floor: the least value
		{200 * mb, 128 * mb, 100, 100}, // more than the floor
		{32 * mb, 128 * mb, 200, 300},
		{50 * mb, 128 * mb, 200, 200}, // 156 would be under the least
		{0, 128 * mb, 100, 3100},      // nothing measured yet: 4 MB assumed
		{1, 128 * mb, 100, 3100},
		{0, 8 * mb, 100, 100},
		{20 * mb, 0, 200, 200}, // no floor
	} {
		if got := Percent(c.live, c.floor, c.least); got != c.want {
			t.Errorf("Percent(%d MB, %d MB, %d) = %d, want %d", c.live/mb, c.floor/mb, c.least, got, c.want)
		}
	}
}

func TestOverridden(t *testing.T) {
	env := func(vars ...string) func(string) (string, bool) {
		return func(name string) (string, bool) {
			for _, v := range vars {
				if v == name {
					return "x", true
				}
			}
			return "", false
		}
	}
	if got := Overridden(env()); got != "" {
		t.Errorf("nothing set: %q", got)
	}
	if got := Overridden(env("GOGC")); got != "GOGC" {
		t.Errorf("GOGC set: %q", got)
	}
	if got := Overridden(env("GOMEMLIMIT")); got != "GOMEMLIMIT" {
		t.Errorf("GOMEMLIMIT set: %q", got)
	}
}

func TestStartZeroFloorSetsTheLeastValue(t *testing.T) {
	before := gogc(t)
	tu := Start(0, 200)
	if got := gogc(t); got != 200 {
		t.Errorf("GOGC %d after Start(0, 200)", got)
	}
	runtime.GC()
	runtime.GC()
	if got := gogc(t); got != 200 {
		t.Errorf("GOGC %d after Start(0, 200) and two collections", got)
	}
	tu.Stop()
	if got := gogc(t); got != before {
		t.Errorf("GOGC %d after Stop, was %d", got, before)
	}
}

// TestTunerFollowsLiveHeap holds a live heap above half the floor, then
// drops it: GOGC goes to the default while the heap is large and back
// above it, to the floor's value, once it is small; Stop restores GOGC.
func TestTunerFollowsLiveHeap(t *testing.T) {
	const floor = 96 << 20
	before := gogc(t)
	tu := Start(floor, DefaultPercent)
	defer tu.Stop()

	big := make([]byte, 64<<20)
	for i := range big {
		big[i] = byte(i)
	}
	collect(t, tu)
	if got := tu.lastPercent(); got != DefaultPercent {
		t.Errorf("live heap %d MB, floor 96 MB: GOGC %d, want %d", liveHeap()>>20, got, DefaultPercent)
	}
	if got := gogc(t); got != tu.lastPercent() {
		t.Errorf("runtime GOGC %d, tuner says %d", got, tu.lastPercent())
	}
	runtime.KeepAlive(big)

	collect(t, tu)
	live := liveHeap()
	want := Percent(live, floor, DefaultPercent)
	if want <= DefaultPercent {
		t.Fatalf("live heap %d MB after dropping 64 MB: the test needs it under 48 MB", live>>20)
	}
	// The tuner read the live heap of its own collection, which may be
	// one before the last: within a factor of 2 of the value for this one.
	if got := tu.lastPercent(); got < want/2 || got > 2*want {
		t.Errorf("live heap %d MB, floor 96 MB: GOGC %d, want about %d", live>>20, got, want)
	}
	if got := gogc(t); got < want/2 || got > 2*want {
		t.Errorf("runtime GOGC %d, want about %d", got, want)
	}

	tu.Stop()
	if got := gogc(t); got != before {
		t.Errorf("GOGC %d after Stop, want %d as before Start", got, before)
	}
	// A collection after Stop changes nothing.
	runtime.GC()
	runtime.GC()
	if got := gogc(t); got != before {
		t.Errorf("GOGC %d after Stop and two collections, want %d", got, before)
	}
}

// collect runs a collection and waits for the tuner to have seen it.
func collect(t *testing.T, tu *Tuner) {
	t.Helper()
	n := tu.seen()
	deadline := time.Now().Add(10 * time.Second)
	for tu.seen() == n {
		if time.Now().After(deadline) {
			t.Fatal("the tuner saw no collection within 10s of runtime.GC")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

func gogc(t *testing.T) int {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Fatal("runtime/metrics has no /gc/gogc:percent")
	}
	return int(s[0].Value.Uint64())
}

func TestStartUnlessOverridden(t *testing.T) {
	before := gogc(t)
	gogcSet := func(name string) (string, bool) { return "50", name == "GOGC" }
	tu, by := StartUnlessOverridden(gogcSet, 128<<20, 200)
	if tu != nil || by != "GOGC" {
		t.Fatalf("GOGC set: tuner %v, overridden by %q", tu, by)
	}
	tu.Stop() // a nil tuner stops without panicking
	if got := gogc(t); got != before {
		t.Errorf("GOGC %d with the operator's GOGC set, was %d", got, before)
	}
	none := func(string) (string, bool) { return "", false }
	tu, by = StartUnlessOverridden(none, 0, 200)
	if tu == nil || by != "" {
		t.Fatalf("nothing set: tuner %v, overridden by %q", tu, by)
	}
	if got := gogc(t); got != 200 {
		t.Errorf("GOGC %d after StartUnlessOverridden(0, 200)", got)
	}
	tu.Stop()
	if got := gogc(t); got != before {
		t.Errorf("GOGC %d after Stop, was %d", got, before)
	}
}
