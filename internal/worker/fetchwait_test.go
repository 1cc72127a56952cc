package worker

import (
	"testing"
	"time"
)

// With ExitWhenIdle, a worker that still holds deliveries fetches with a
// short wait, so that it notices the idle consumer soon after its last
// ack; otherwise, and without ExitWhenIdle, a fetch waits FetchMaxWait.
func TestFetchWaitShortWhileAnExitingWorkerHoldsDeliveries(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		exit     bool
		inFlight int64
		want     time.Duration
	}{
		{true, 3, idlePoll},
		{true, 0, 2 * time.Second},
		{false, 3, 2 * time.Second},
		{false, 0, 2 * time.Second},
	} {
		w := New(Config{ExitWhenIdle: c.exit, FetchMaxWait: 2 * time.Second}, nil, nil, nil, nil, nil)
		w.stats.inflight.Store(c.inFlight)
		if got := w.fetchWait(); got != c.want {
			t.Errorf("ExitWhenIdle %v, %d in flight: fetch wait %v, want %v", c.exit, c.inFlight, got, c.want)
		}
	}
	w := New(Config{ExitWhenIdle: true, FetchMaxWait: 20 * time.Millisecond}, nil, nil, nil, nil, nil)
	w.stats.inflight.Store(1)
	if got := w.fetchWait(); got != 20*time.Millisecond {
		t.Errorf("a FetchMaxWait below idlePoll: fetch wait %v, want it kept (20ms)", got)
	}
}
