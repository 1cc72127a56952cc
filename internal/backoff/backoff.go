// Package backoff is promptcascade's one retry spacing and its one
// cancellable sleep: the cascade's same-model retries, the worker's naks,
// commit, fetch and recovery retries, and the publisher's re-sends all wait
// by it, so that "exponential backoff" means one thing: full jitter (Delay),
// or equal jitter (DelayEqual) where a wait must not shrink to nothing.
package backoff

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Policy is capped exponential backoff with full jitter: the n-th wait
// (n >= 1) is uniformly random in [0, Ceiling(n)], where Ceiling(n) is
// min(Max, Base·2^(n-1)). Full jitter spreads the retries of many callers
// that failed together over the whole interval.
type Policy struct {
	Base time.Duration // ceiling of the first wait
	Max  time.Duration // cap of every ceiling (at least Base)
}

// Ceiling is the longest n-th wait: min(Max, Base·2^(n-1)); n below 1
// counts as 1.
func (p Policy) Ceiling(n int) time.Duration {
	d := p.Base
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	return max(min(d, p.Max), 0)
}

// Delay draws the n-th wait.
func (p Policy) Delay(n int) time.Duration {
	return p.DelayAt(n, rand.Float64())
}

// DelayAt is the n-th wait for the draw u in [0, 1): u·Ceiling(n), rounded
// so that u just below 1 gives Ceiling(n). Callers that must be
// reproducible (the cascade, seeded per prompt) bring their own u.
func (p Policy) DelayAt(n int, u float64) time.Duration {
	c := p.Ceiling(n)
	return min(time.Duration(u*float64(c+1)), c)
}

// DelayEqual draws the n-th wait with equal jitter: uniformly random in
// [Ceiling(n)/2, Ceiling(n)]. For waits that must not collapse to nothing:
// a redelivery spends one of a message's MaxDeliver deliveries, so a nak
// that full jitter drew near zero would burn them within moments.
func (p Policy) DelayEqual(n int) time.Duration {
	c := p.Ceiling(n)
	return c/2 + Policy{Base: c - c/2, Max: c - c/2}.Delay(1)
}

// Sleep waits d, or less when ctx ends first. It returns nil after the
// whole wait and ctx.Err() when ctx ended (before or during it); d <= 0
// returns ctx.Err() at once.
//
// Its timers are reused (timers): the simulated provider sleeps in it for
// every call's latency, and a new timer per call was an allocation of a
// timer and its channel at every call, 5,000 of them waiting at once at
// 5,000 in flight.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := timers.Get().(*time.Timer)
	t.Reset(d)
	select {
	case <-ctx.Done():
		// Stopped, its channel holds nothing (Go 1.23 timers): the next
		// Sleep may reuse it.
		t.Stop()
		timers.Put(t)
		return ctx.Err()
	case <-t.C:
		timers.Put(t)
		return nil
	}
}

// timers are stopped timers for Sleep.
var timers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}
