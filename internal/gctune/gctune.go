// Package gctune keeps Go's garbage collector from running over and over
// while a process's live heap is small: it lets the heap grow to a floor
// (GC_HEAP_FLOOR_MB) before a collection, where Go's default (GOGC=100)
// collects whenever the heap doubles.
//
// enqueue and the worker hold a small live heap (tens of MB: a few chunks of
// lines, the prompts in flight) and allocate fast (every message, every
// ack), so with the default the collector runs several times a second and
// takes a tenth of their CPU on a busy machine. With a floor of 128 MB it
// runs a few times a minute, and peak RSS is the floor whatever the input
// size, instead of twice a live heap that varies with the collector's timing.
//
// After every collection the tuner sets GOGC so that the next heap goal is
// the floor: GOGC = 100 × (floor − live) / live, but never below a least
// value (Go's 100 for enqueue, 200 for the worker). A live heap of half the
// floor or more gets that least value, so the heap never grows past twice
// its live size for the tuner's sake: a process that holds a lot is
// collected as if the tuner were not there. An operator's own GOGC or
// GOMEMLIMIT wins: the commands do not start a tuner then (Overridden).
package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// DefaultPercent is Go's GOGC default.
const DefaultPercent = 100

// minLive is the least live heap the tuner assumes: Go's own minimum heap
// goal is 4 MB at GOGC=100, and before the first collection (no live heap
// measured yet) this keeps the first goal at the floor, not far beyond it.
const minLive = 4 << 20

// Percent is the GOGC that puts the next heap goal at floor bytes for a
// live heap of live bytes (at least minLive), 100 × (floor − live) / live,
// or least if that is more.
func Percent(live, floor uint64, least int) int {
	live = max(live, minLive)
	if floor <= live {
		return least
	}
	return max(int((floor-live)*100/live), least)
}

// Overridden reports which of GOGC and GOMEMLIMIT lookup finds set, "" when
// neither: the operator's own collector settings win over the tuner's.
func Overridden(lookup func(string) (string, bool)) string {
	for _, name := range []string{"GOGC", "GOMEMLIMIT"} {
		if _, ok := lookup(name); ok {
			return name
		}
	}
	return ""
}

// StartUnlessOverridden is Start unless lookup (os.LookupEnv) finds GOGC or
// GOMEMLIMIT set: then it changes nothing and returns a nil Tuner (whose
// Stop does nothing) and the variable's name.
func StartUnlessOverridden(lookup func(string) (string, bool), floorBytes uint64, least int) (*Tuner, string) {
	if name := Overridden(lookup); name != "" {
		return nil, name
	}
	return Start(floorBytes, least), ""
}

// Tuner sets GOGC after every collection while it runs.
type Tuner struct {
	floor uint64
	least int
	prev  int // GOGC before Start, restored by Stop

	mu      sync.Mutex
	stopped bool
	percent int // last set
	cycles  uint64
}

// sentinel is allocated once per collection: its cleanup runs after the
// collection that finds it unreachable, which re-tunes and allocates the
// next one. A pointer field keeps it out of the tiny allocator, whose
// objects may share a block and never be found unreachable on their own.
type sentinel struct {
	_ *byte
	_ [8]byte
}

// Start sets GOGC to least and then, until Stop, after every collection to
// Percent(live heap, floorBytes, least). A floor of 0 (or one at most
// twice the live heap) leaves GOGC at least.
func Start(floorBytes uint64, least int) *Tuner {
	t := &Tuner{floor: floorBytes, least: least, percent: least}
	t.prev = debug.SetGCPercent(least)
	if floorBytes > 0 {
		t.tune()
	}
	return t
}

// Stop ends the tuning and puts back the GOGC that Start found. A nil
// Tuner (StartUnlessOverridden's when overridden) does nothing.
func (t *Tuner) Stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped {
		t.stopped = true
		debug.SetGCPercent(t.prev)
	}
}

// lastPercent is the GOGC the tuner set last.
func (t *Tuner) lastPercent() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.percent
}

// seen is how many collections the tuner has seen.
func (t *Tuner) seen() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cycles
}

// tune sets GOGC for the live heap the last collection left and arms the
// sentinel of the next one. It runs at Start and then on the cleanup
// goroutine after every collection.
func (t *Tuner) tune() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	p := Percent(liveHeap(), t.floor, t.least)
	if p != t.percent {
		debug.SetGCPercent(p)
		t.percent = p
	}
	runtime.AddCleanup(new(sentinel), func(t *Tuner) {
		t.mu.Lock()
		t.cycles++
		t.mu.Unlock()
		t.tune()
	}, t)
}

// liveHeap is the heap the last collection marked live (0 before the
// first one).
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
