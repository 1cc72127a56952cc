package worker

import (
	"sync/atomic"
	"testing"
	"time"
)

// beatCount is a delivery that counts its heartbeats.
type beatCount struct {
	Delivery
	beats atomic.Int32
}

func (d *beatCount) InProgress() error { d.beats.Add(1); return nil }
func (d *beatCount) StreamSeq() uint64 { return 1 }

// A round beats only the deliveries the server last heard of a quarter of
// AckWait ago or more, and restarts their count; one unheard of for longer
// than AckWait is suspect (it may have gone to another worker); one whose
// fetch time is unknown is beaten at once. Rounds a twelfth of AckWait
// apart then beat a delivery held for long every quarter to third of
// AckWait, never one held for less than a quarter.
func TestBeatRoundBeatsOnlyWhatIsDue(t *testing.T) {
	t.Parallel()
	const ackWait = 30 * time.Second
	w := New(Config{AckWait: ackWait}, nil, nil, nil, nil, nil)
	start := time.Unix(1_000_000, 0)
	w.lastBeat.Store(start.UnixNano())
	add := func(fetched time.Time, known bool) (*task, *beatCount) {
		d := &beatCount{}
		tk := &task{d: d}
		if known {
			tk.beatAt.Store(fetched.UnixNano())
		}
		w.track(tk)
		return tk, d
	}
	fresh, freshD := add(start.Add(-time.Second), true)  // fetched a second ago
	old, oldD := add(start.Add(-11*time.Second), true)   // over a third of AckWait
	lost, lostD := add(start.Add(-31*time.Second), true) // over AckWait: may be redelivered
	_, unknownD := add(time.Time{}, false)               // tracked after a database fault
	w.beatRound(start)
	for name, c := range map[string]struct {
		d    *beatCount
		want int32
	}{"fresh": {freshD, 0}, "old": {oldD, 1}, "lost": {lostD, 1}, "unknown": {unknownD, 1}} {
		if got := c.d.beats.Load(); got != c.want {
			t.Errorf("%s delivery: %d beats in the first round, want %d", name, got, c.want)
		}
	}
	if fresh.suspect.Load() || old.suspect.Load() || !lost.suspect.Load() {
		t.Errorf("suspect: fresh %v, old %v, lost %v; want only the one unheard of for over AckWait",
			fresh.suspect.Load(), old.suspect.Load(), lost.suspect.Load())
	}
	if got := time.Unix(0, old.beatAt.Load()); !got.Equal(start) {
		t.Errorf("old delivery last heard of at %v, want the round's %v", got, start)
	}

	// Rounds every twelfth of AckWait for two AckWaits: the gap between
	// two beats of a delivery (or its fetch and its first beat) stays
	// within [AckWait/4, AckWait/3].
	last := map[*task]time.Time{fresh: start.Add(-time.Second), old: start}
	var beats []time.Time
	for i := 1; i <= 24; i++ {
		now := start.Add(time.Duration(i) * ackWait / 12)
		before := freshD.beats.Load()
		w.beatRound(now)
		if freshD.beats.Load() > before {
			beats = append(beats, now)
		}
		for tk := range last {
			if at := time.Unix(0, tk.beatAt.Load()); !at.Equal(last[tk]) {
				if gap := at.Sub(last[tk]); gap < ackWait/4 || gap > ackWait/3 {
					t.Errorf("beats %v apart, want within [AckWait/4, AckWait/3]", gap)
				}
				last[tk] = at
			}
		}
	}
	if len(beats) != 8 {
		t.Errorf("delivery held for two AckWaits beaten %d times (%v), want 8 (every 7.5 s)", len(beats), beats)
	}
	if fresh.suspect.Load() {
		t.Error("a delivery beaten in time became suspect")
	}

	// Settled deliveries are beaten no more.
	w.untrack(fresh)
	before := freshD.beats.Load()
	w.beatRound(start.Add(3 * ackWait))
	if freshD.beats.Load() != before {
		t.Error("a settled delivery was beaten")
	}
}

// Heartbeats per delivery by how long it is held, with rounds a twelfth
// of AckWait apart: none under a quarter of AckWait (a prompt answered
// within a 200 ms model's latency), then one per quarter to third of
// AckWait (a quarter when the rounds fall on it, as with AckWait 30 s:
// 8 a minute against the 6 of beating every third of AckWait).
func TestBeatsByHoldTime(t *testing.T) {
	t.Parallel()
	const ackWait = 30 * time.Second
	for _, c := range []struct {
		held time.Duration
		want int32
	}{{200 * time.Millisecond, 0}, {7 * time.Second, 0}, {16 * time.Second, 2}, {61 * time.Second, 8}} {
		w := New(Config{AckWait: ackWait}, nil, nil, nil, nil, nil)
		start := time.Unix(1_000_000, 0)
		w.lastBeat.Store(start.UnixNano())
		d := &beatCount{}
		tk := &task{d: d}
		tk.beatAt.Store(start.UnixNano())
		w.track(tk)
		for now := start.Add(ackWait / 12); !now.After(start.Add(c.held)); now = now.Add(ackWait / 12) {
			w.beatRound(now)
		}
		if got := d.beats.Load(); got != c.want {
			t.Errorf("held %v: %d beats, want %d", c.held, got, c.want)
		}
	}
}
