package backoff

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCeilingDoublesUpToMax(t *testing.T) {
	t.Parallel()
	p := Policy{Base: 100 * time.Millisecond, Max: time.Second}
	for n, want := range map[int]time.Duration{
		-1: 100 * time.Millisecond, 0: 100 * time.Millisecond, 1: 100 * time.Millisecond,
		2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 4: 800 * time.Millisecond,
		5: time.Second, 60: time.Second, 1 << 30: time.Second,
	} {
		if got := p.Ceiling(n); got != want {
			t.Errorf("Ceiling(%d) = %s, want %s", n, got, want)
		}
	}
	if got := (Policy{Base: time.Hour, Max: time.Minute}).Ceiling(1); got != time.Minute {
		t.Errorf("a Base above Max is capped: %s", got)
	}
}

// Full jitter: the draw spans the whole interval [0, Ceiling], not only its
// upper half (the worker's old "full jitter" drew from [d/2, d]).
func TestDelayIsFullJitter(t *testing.T) {
	t.Parallel()
	p := Policy{Base: time.Second, Max: time.Minute}
	if got := p.DelayAt(3, 0); got != 0 {
		t.Errorf("DelayAt(3, 0) = %s, want 0", got)
	}
	if got := p.DelayAt(3, 0.25); got != time.Second {
		t.Errorf("DelayAt(3, 0.25) = %s, want 1s (a quarter of 4s)", got)
	}
	if got := p.DelayAt(3, 0.9999999999); got != 4*time.Second {
		t.Errorf("DelayAt(3, ~1) = %s, want the ceiling 4s", got)
	}
	var low, high int
	for range 2000 {
		d := p.Delay(2)
		if d < 0 || d > 2*time.Second {
			t.Fatalf("Delay(2) = %s, outside [0, 2s]", d)
		}
		if d < time.Second/2 {
			low++
		}
		if d > 3*time.Second/2 {
			high++
		}
	}
	// Each quarter holds about 500 of 2000 draws; 300 is far in the tail.
	if low < 300 || high < 300 {
		t.Errorf("draws not spread over [0, 2s]: %d below 0.5s, %d above 1.5s", low, high)
	}
}

func TestSleep(t *testing.T) {
	t.Parallel()
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("a whole sleep: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("a canceled ctx: %v", err)
	}
	if err := Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("d = 0 with a canceled ctx: %v", err)
	}
	if err := Sleep(context.Background(), -time.Second); err != nil {
		t.Errorf("d < 0: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Sleep(ctx, time.Hour) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ctx ending mid-sleep: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Sleep did not return when ctx ended")
	}
}

// Equal jitter never draws less than half the ceiling.
func TestDelayEqualKeepsHalfTheCeiling(t *testing.T) {
	t.Parallel()
	p := Policy{Base: time.Second, Max: 2 * time.Minute}
	for n := 1; n <= 10; n++ {
		c := p.Ceiling(n)
		for range 200 {
			if d := p.DelayEqual(n); d < c/2 || d > c {
				t.Fatalf("DelayEqual(%d) = %s, outside [%s, %s]", n, d, c/2, c)
			}
		}
	}
}

// Sleep reuses its timers: one stopped by a ctx that ended as it fired
// must not end a later Sleep early with that stale fire.
func TestSleepReusedTimersWaitTheWholeTime(t *testing.T) {
	t.Parallel()
	for i := range 200 {
		// The ctx ends about when the timer fires: either may win.
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%5)*50*time.Microsecond)
		_ = Sleep(ctx, 100*time.Microsecond)
		cancel()
		const d = 2 * time.Millisecond
		start := time.Now()
		if err := Sleep(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got < d {
			t.Fatalf("round %d: a %v sleep ended after %v (a reused timer's stale fire)", i, d, got)
		}
	}
}

// BenchmarkSleep is one short sleep under a cancellable ctx, as the
// simulated provider's latency runs under a call's deadline.
func BenchmarkSleep(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		if err := Sleep(ctx, time.Microsecond); err != nil {
			b.Fatal(err)
		}
	}
}
