package limit

import (
	"context"
	"errors"
	"math"
	"sort"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/promptcascade/promptcascade/internal/llm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock runs AfterFunc callbacks when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// Advance moves the clock and runs the callbacks that fell due, in order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	for {
		sort.Slice(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
		if len(c.timers) == 0 || c.timers[0].at.After(end) {
			break
		}
		t := c.timers[0]
		c.timers = c.timers[1:]
		if t.stopped {
			continue
		}
		t.stopped = true
		c.now = t.at
		c.mu.Unlock()
		t.f()
		c.mu.Lock()
	}
	c.now = end
	c.mu.Unlock()
}

type bundle struct {
	clock *fakeClock
	l     *Limiter
}

func setup(t *testing.T, o Options) *bundle {
	t.Helper()
	c := newFakeClock()
	o.Clock = c
	return &bundle{clock: c, l: New("sim/test", o)}
}

func (b *bundle) acquire(t *testing.T, w Want) *Permit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := b.l.Acquire(ctx, w)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	return p
}

// pending starts an Acquire in the background; its permit arrives on the
// returned channel.
func (b *bundle) pending(t *testing.T, ctx context.Context, w Want) <-chan *Permit {
	t.Helper()
	ch := make(chan *Permit, 1)
	before := b.l.Snapshot().Waiting
	go func() {
		p, err := b.l.Acquire(ctx, w)
		if err != nil {
			close(ch)
			return
		}
		ch <- p
	}()
	waitFor(t, "the call to queue", func() bool { return b.l.Snapshot().Waiting > before })
	return ch
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if f() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func granted(t *testing.T, ch <-chan *Permit) *Permit {
	t.Helper()
	select {
	case p, ok := <-ch:
		if !ok {
			t.Fatal("Acquire failed")
		}
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("Acquire still waits")
	}
	return nil
}

func stillWaiting(t *testing.T, ch <-chan *Permit) {
	t.Helper()
	select {
	case <-ch:
		t.Fatal("Acquire returned; it should still wait")
	case <-time.After(20 * time.Millisecond):
	}
}

func TestConcurrencyLimitQueuesInOrder(t *testing.T) {
	b := setup(t, Options{Initial: 2, Max: 2})
	p1, p2 := b.acquire(t, Want{}), b.acquire(t, Want{})
	ctx := context.Background()
	third := b.pending(t, ctx, Want{})
	fourth := b.pending(t, ctx, Want{})
	if s := b.l.Snapshot(); s.InFlight != 2 || s.Waiting != 2 || s.Limit != 2 {
		t.Fatalf("snapshot %+v, want 2 in flight, 2 waiting, limit 2", s)
	}
	stillWaiting(t, third)
	p1.Done(Result{Kind: Answered, Latency: time.Millisecond})
	p3 := granted(t, third)
	stillWaiting(t, fourth)
	p2.Done(Result{Kind: Neutral})
	p4 := granted(t, fourth)
	p3.Done(Result{Kind: Answered})
	p4.Done(Result{Kind: Answered})
	p4.Done(Result{Kind: Answered}) // a second Done is ignored
	if s := b.l.Snapshot(); s.InFlight != 0 || s.Waiting != 0 || s.Calls != 4 || s.Answered != 3 {
		t.Fatalf("snapshot %+v, want nothing in flight, 4 calls, 3 answered", s)
	}
}

func TestCanceledWaitLeavesTheQueue(t *testing.T) {
	b := setup(t, Options{Initial: 1, Max: 1})
	p := b.acquire(t, Want{})
	ctx, cancel := context.WithCancel(context.Background())
	ch := b.pending(t, ctx, Want{})
	next := b.pending(t, context.Background(), Want{})
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("a canceled Acquire returned a permit")
	}
	waitFor(t, "the canceled call to leave the queue", func() bool { return b.l.Snapshot().Waiting == 1 })
	p.Done(Result{Kind: Answered})
	granted(t, next).Done(Result{Kind: Answered})
	if s := b.l.Snapshot(); s.InFlight != 0 || s.Waiting != 0 {
		t.Fatalf("snapshot %+v", s)
	}
}

// fill takes every permit the limit allows now.
func (b *bundle) fill(t *testing.T) []*Permit {
	t.Helper()
	var ps []*Permit
	for b.l.Snapshot().InFlight < b.l.Snapshot().Limit {
		ps = append(ps, b.acquire(t, Want{}))
	}
	return ps
}

func doneAll(ps []*Permit, r Result) {
	for _, p := range ps {
		p.Done(r)
	}
}

func TestSlowStartThenAdditiveIncrease(t *testing.T) {
	b := setup(t, Options{Initial: 1, Max: 100})
	// Slow start: every answer while the limit is binding adds one.
	// (A call counts when at least half the limit was in use as it started:
	// 1 → 2 → 4 → 7.)
	for _, want := range []int{2, 4, 7} {
		doneAll(b.fill(t), Result{Kind: Answered})
		if got := b.l.Snapshot().Limit; got != want {
			t.Fatalf("limit %d after a slow-start round, want %d", got, want)
		}
	}
	// An answer while the limit is not binding does not grow it.
	b.acquire(t, Want{}).Done(Result{Kind: Answered})
	if got := b.l.Snapshot().Limit; got != 7 {
		t.Fatalf("limit %d after an answer with room to spare, want 7", got)
	}
	// One timeout does not cut; a second in a row does: 4 in flight when it
	// came back (itself included), 4 * 0.75 = 3.
	ps := make([]*Permit, 5)
	for i := range ps {
		ps[i] = b.acquire(t, Want{})
	}
	ps[0].Done(Result{Kind: TimedOut})
	if got := b.l.Snapshot().Limit; got != 7 {
		t.Fatalf("limit %d after one timeout, want 7", got)
	}
	ps[1].Done(Result{Kind: TimedOut})
	if got := b.l.Snapshot().Limit; got != 3 {
		t.Fatalf("limit %d after two timeouts in a row, want 3", got)
	}
	doneAll(ps[2:], Result{Kind: Answered})
	// Out of slow start: about one more per round of limit answers.
	for range 6 {
		doneAll(b.fill(t), Result{Kind: Answered})
	}
	if got := b.l.Snapshot().Limit; got < 7 || got > 9 {
		t.Fatalf("limit %d after 6 additive rounds from 3, want about 9 (no longer doubling)", got)
	}
}

func TestLimitNeverPassesMaxConcurrency(t *testing.T) {
	b := setup(t, Options{Caps: Caps{MaxConcurrency: 3}, Initial: 10, Max: 100})
	if got := b.l.Snapshot().Limit; got != 3 {
		t.Fatalf("initial limit %d, want max_concurrency 3", got)
	}
	for range 50 {
		ps := []*Permit{b.acquire(t, Want{}), b.acquire(t, Want{}), b.acquire(t, Want{})}
		for _, p := range ps {
			p.Done(Result{Kind: Answered})
		}
	}
	if got := b.l.Snapshot().Limit; got != 3 {
		t.Fatalf("limit %d, want it capped at 3", got)
	}
}

// answerAt makes n calls, one every gap of fake time, each answered at once.
func (b *bundle) answerAt(t *testing.T, n int, gap time.Duration) {
	t.Helper()
	for range n {
		b.acquire(t, Want{}).Done(Result{Kind: Answered, Latency: time.Millisecond})
		b.clock.Advance(gap)
	}
}

func TestRateLimitPausesAndSetsARate(t *testing.T) {
	b := setup(t, Options{})
	b.answerAt(t, 40, 25*time.Millisecond) // 40 answers/s
	p := b.acquire(t, Want{})
	p.Done(Result{Kind: RateLimited, RetryAfter: 300 * time.Millisecond})
	s := b.l.Snapshot()
	if s.Paused != 300*time.Millisecond {
		t.Fatalf("paused %v, want the retry-after 300ms", s.Paused)
	}
	if math.Abs(s.Rate-0.9*40) > 1.5 {
		t.Fatalf("rate %.1f/s, want 90%% of the 40/s answered", s.Rate)
	}
	if s.RateLimited != 1 {
		t.Fatalf("rate_limited %d, want 1", s.RateLimited)
	}
	// cascade mode: a paused model is not waited for.
	_, err := b.l.Acquire(context.Background(), Want{NoPause: true})
	var pe *PausedError
	if !errors.As(err, &pe) || pe.For != 300*time.Millisecond || pe.Model != "sim/test" {
		t.Fatalf("Acquire with NoPause while paused: %v, want a PausedError with 300ms left", err)
	}
	// wait mode: the call starts once the pause is over.
	ch := b.pending(t, context.Background(), Want{})
	b.clock.Advance(299 * time.Millisecond)
	stillWaiting(t, ch)
	b.clock.Advance(time.Millisecond)
	first := granted(t, ch)
	// The rate bucket (36/s, 3 at most at once) now spaces the calls.
	var starts []time.Time
	first.Done(Result{Kind: Answered})
	for range 20 {
		ch := make(chan *Permit, 1)
		go func() {
			p, err := b.l.Acquire(context.Background(), Want{})
			if err == nil {
				ch <- p
			}
		}()
		for {
			select {
			case p := <-ch:
				starts = append(starts, b.clock.Now())
				p.Done(Result{Kind: Answered})
			case <-time.After(2 * time.Millisecond):
				b.clock.Advance(5 * time.Millisecond)
				continue
			}
			break
		}
	}
	span := starts[len(starts)-1].Sub(starts[0]).Seconds()
	if got := float64(len(starts)-1) / span; got > 45 {
		t.Fatalf("%.1f calls/s after the rate limit, want about the adaptive rate %.1f/s", got, s.Rate)
	}
}

func TestOneCutPerRound(t *testing.T) {
	b := setup(t, Options{Initial: 8, Max: 8})
	b.answerAt(t, 20, 50*time.Millisecond) // 20 answers/s
	var ps []*Permit
	for range 8 {
		ps = append(ps, b.acquire(t, Want{}))
	}
	for _, p := range ps { // a burst of 429s from calls that started together
		p.Done(Result{Kind: RateLimited, RetryAfter: 10 * time.Millisecond})
	}
	s := b.l.Snapshot()
	if s.Limit != 6 { // 8 * 0.75, once
		t.Fatalf("limit %d after one burst of 429s, want 6 (a single cut)", s.Limit)
	}
	if math.Abs(s.Rate-18) > 1 {
		t.Fatalf("rate %.1f, want one cut to 90%% of 20/s", s.Rate)
	}
	if s.RateLimited != 8 {
		t.Fatalf("rate_limited %d, want 8", s.RateLimited)
	}
}

func TestPauseWithoutRetryAfterDoubles(t *testing.T) {
	b := setup(t, Options{})
	for i, want := range []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second} {
		b.acquire(t, Want{}).Done(Result{Kind: Overloaded})
		if got := b.l.Snapshot().Paused; got != want {
			t.Fatalf("pause %d: %v, want %v", i, got, want)
		}
		b.clock.Advance(want)
	}
	b.acquire(t, Want{}).Done(Result{Kind: Answered})
	b.acquire(t, Want{}).Done(Result{Kind: Overloaded})
	if got := b.l.Snapshot().Paused; got != 250*time.Millisecond {
		t.Fatalf("pause after an answer: %v, want it back at 250ms", got)
	}
}

func TestRPMCap(t *testing.T) {
	b := setup(t, Options{Caps: Caps{RPM: 120}}) // 2/s, 2 at once
	b.acquire(t, Want{}).Done(Result{Kind: Answered})
	b.acquire(t, Want{}).Done(Result{Kind: Answered})
	ch := b.pending(t, context.Background(), Want{})
	b.clock.Advance(499 * time.Millisecond)
	stillWaiting(t, ch)
	b.clock.Advance(time.Millisecond)
	granted(t, ch).Done(Result{Kind: Answered})
}

func TestTPMCapCountsMaxTokensAndCorrects(t *testing.T) {
	b := setup(t, Options{Caps: Caps{TPM: 6000}}) // 100 tokens/s, 100 at once
	p := b.acquire(t, Want{InputTokens: 60, MaxTokens: 40})
	ch := b.pending(t, context.Background(), Want{InputTokens: 10, MaxTokens: 40})
	b.clock.Advance(400 * time.Millisecond) // 40 tokens back; 50 needed
	stillWaiting(t, ch)
	// The first call used only 70 of its 100: the 30 come back.
	p.Done(Result{Kind: Answered, InputTokens: 60, OutputTokens: 10})
	granted(t, ch).Done(Result{Kind: Answered, InputTokens: 10, OutputTokens: 40})
	// A call bigger than the bucket waits for a full bucket, then runs.
	ch = b.pending(t, context.Background(), Want{InputTokens: 500, MaxTokens: 1})
	b.clock.Advance(time.Second)
	granted(t, ch).Done(Result{Kind: Answered})
}

func TestQuotaHeadersPaceBeforeThe429(t *testing.T) {
	b := setup(t, Options{})
	// Plenty left: the headers do not limit.
	plenty := llm.Quota{Requests: llm.QuotaWindow{Known: true, Limit: 100, Remaining: 90, Reset: 6 * time.Second}}
	b.acquire(t, Want{}).Done(Result{Kind: Answered, Quota: plenty})
	b.acquire(t, Want{}).Done(Result{Kind: Answered, Quota: plenty})
	b.acquire(t, Want{}).Done(Result{Kind: Answered, Quota: plenty})
	// Two of 100 left, full again in 9.8 s: 10 per second.
	low := llm.Quota{Requests: llm.QuotaWindow{Known: true, Limit: 100, Remaining: 2, Reset: 9800 * time.Millisecond}}
	b.acquire(t, Want{}).Done(Result{Kind: Answered, Quota: low})
	b.acquire(t, Want{}).Done(Result{Kind: Answered})
	b.acquire(t, Want{}).Done(Result{Kind: Answered})
	ch := b.pending(t, context.Background(), Want{})
	b.clock.Advance(99 * time.Millisecond)
	stillWaiting(t, ch)
	b.clock.Advance(time.Millisecond)
	granted(t, ch).Done(Result{Kind: Answered})
	if s := b.l.Snapshot(); s.RateLimited != 0 || s.Rate != 0 {
		t.Fatalf("snapshot %+v: pacing from headers needs no 429 and sets no adaptive rate", s)
	}
}

func TestDeadlineFollowsP99(t *testing.T) {
	b := setup(t, Options{})
	if got := b.l.Deadline(30 * time.Second); got != 30*time.Second {
		t.Fatalf("deadline before any answer: %v, want the timeout", got)
	}
	for i := range 200 {
		d := 200 * time.Millisecond
		if i%100 == 0 {
			d = 900 * time.Millisecond // the slowest 1%
		}
		b.acquire(t, Want{}).Done(Result{Kind: Answered, Latency: d})
	}
	if got := b.l.Deadline(30 * time.Second); got != 2700*time.Millisecond {
		t.Fatalf("deadline %v, want 3 × the p99 900ms", got)
	}
	if got := b.l.Deadline(2 * time.Second); got != 2*time.Second {
		t.Fatalf("deadline %v, want never above the timeout", got)
	}
	fast := setup(t, Options{})
	for range 200 {
		fast.acquire(t, Want{}).Done(Result{Kind: Answered, Latency: time.Millisecond})
	}
	if got := fast.l.Deadline(30 * time.Second); got != time.Second {
		t.Fatalf("deadline %v for a 1 ms model, want the floor of 1s", got)
	}
}

func TestStaticKeepsOnlyTheCaps(t *testing.T) {
	b := setup(t, Options{Caps: Caps{MaxConcurrency: 5}, Static: true})
	ps := b.fill(t)
	if len(ps) != 5 {
		t.Fatalf("%d calls at once, want max_concurrency 5 from the start", len(ps))
	}
	doneAll(ps, Result{Kind: RateLimited, RetryAfter: time.Minute})
	s := b.l.Snapshot()
	if s.Limit != 5 || s.Paused != 0 || s.Rate != 0 || s.RateLimited != 5 {
		t.Fatalf("snapshot %+v: a static limiter counts 429s but neither cuts nor pauses", s)
	}
	if _, err := b.l.Acquire(context.Background(), Want{NoPause: true}); err != nil {
		t.Fatalf("Acquire: %v", err)
	}
}

// After a cut the rate grows back along a cubic: to the rate of the 429
// after K = cbrt(rate × 0.1 / 2) seconds, and beyond it afterwards.
func TestRateRegrowsAlongACubic(t *testing.T) {
	b := setup(t, Options{Initial: 1, Max: 1})
	b.answerAt(t, 50, 20*time.Millisecond) // 50 answers/s
	b.acquire(t, Want{}).Done(Result{Kind: RateLimited, RetryAfter: time.Millisecond})
	cut := b.l.Snapshot().Rate
	k := math.Cbrt(50 * 0.1 / 2) // ≈ 1.4 s
	// Keep a call waiting so that the rate may grow, and answer one call
	// at a time as the clock moves.
	grow := func(until time.Duration) float64 {
		for elapsed := time.Duration(0); elapsed < until; elapsed += 100 * time.Millisecond {
			b.clock.Advance(100 * time.Millisecond)
			p := b.acquire(t, Want{})
			ch := b.pending(t, context.Background(), Want{})
			p.Done(Result{Kind: Answered})
			b.clock.Advance(100 * time.Millisecond)
			granted(t, ch).Done(Result{Kind: Answered})
			elapsed += 100 * time.Millisecond
		}
		return b.l.Snapshot().Rate
	}
	mid := grow(time.Duration(k / 2 * float64(time.Second)))
	if !(mid > cut && mid < 50) {
		t.Fatalf("rate %.1f half-way to K, want between the cut %.1f and the last 429's 50", mid, cut)
	}
	atK := grow(time.Duration(k/2*float64(time.Second)) + 200*time.Millisecond)
	if math.Abs(atK-50) > 3 {
		t.Fatalf("rate %.1f at K, want back near 50", atK)
	}
	later := grow(2 * time.Second)
	if later < 55 {
		t.Fatalf("rate %.1f 3 s after K, want a probe above 50", later)
	}
}

func TestNoWaitFailsAtOnceWithoutRoom(t *testing.T) {
	b := setup(t, Options{Initial: 1, Max: 1})
	p := b.acquire(t, Want{})
	if q, err := b.l.Acquire(context.Background(), Want{NoWait: true}); !errors.Is(err, ErrNoRoom) || q != nil {
		t.Fatalf("Acquire(NoWait) with the limit full = %v, %v; want ErrNoRoom", q, err)
	}
	if s := b.l.Snapshot(); s.Waiting != 0 || s.Calls != 1 {
		t.Fatalf("snapshot %+v: a NoWait call must neither queue nor count", s)
	}
	p.Done(Result{Kind: Answered})
	q, err := b.l.Acquire(context.Background(), Want{NoWait: true})
	if err != nil {
		t.Fatalf("Acquire(NoWait) with room: %v", err)
	}
	q.Done(Result{Kind: Neutral})
	if s := b.l.Snapshot(); s.Calls != 2 || s.InFlight != 0 {
		t.Fatalf("snapshot %+v", s)
	}
}
