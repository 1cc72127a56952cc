// Package limit keeps one process's calls to one model inside the provider's
// capacity, without coordinating with other processes. Each model gets a
// Limiter that combines:
//
//   - an adaptive concurrency limit (AIMD): slow start from Initial (+1 per
//     answer) until the first sign of overload, then +1/limit per answer;
//     cut to 3/4 on a rate limit, an overload, or a second timeout in a row
//     (one hung call says little about capacity);
//   - an adaptive request rate, set on the first rate limit to 90% of the
//     answers per second the model gave in the last second, cut again the same
//     way on each later rate limit, and regrown along a CUBIC curve while
//     prompts wait for it (quickly back to the rate of the last 429, a
//     plateau, then a probe above it). N processes sharing one provider key
//     settle just under its capacity without being told what it is;
//   - a pause of every new call until a server's retry-after has passed
//     (at least 5 ms, doubling while 429s continue without an answer between
//     them, up to 80 ms; without a retry-after: 250 ms, doubling up to 10 s);
//   - the provider's own rate-limit headers (x-ratelimit-*, anthropic-
//     ratelimit-*): when they report little left, calls are paced at the
//     window's refill rate, so that the limit slows calls before the 429;
//   - optional static caps from the routes file: rpm, tpm and max_concurrency.
//
// Only one cut is made per round of calls: a call that started before the
// last cut does not cut again, so a burst of 429s from one moment counts once.
//
// A Limiter also keeps the latencies of the model's answers, for an adaptive
// per-call deadline (Deadline).
package limit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
)

// Caps are a model's static limits from the routes file; zero means none.
type Caps struct {
	RPM            int // requests per minute
	TPM            int // tokens per minute: input tokens plus max_tokens (or the model's typical answer)
	MaxConcurrency int // calls in flight at once
}

// Tuning constants. They are deliberately not configuration: the limiter
// adapts, and these only set how fast.
const (
	DefaultInitial = 8    // starting concurrency limit
	DefaultMax     = 4096 // ceiling of the adaptive limit without max_concurrency

	concCut = 0.75 // concurrency kept on a cut
	rateCut = 0.9  // share of the rate kept on a rate limit
	// The rate's regrowth after a cut follows a cubic, as TCP CUBIC and the
	// AWS SDKs' adaptive retry mode do: back to the rate of the last 429
	// after K = cbrt(rate × (1-rateCut) / cubicC) seconds, a plateau there,
	// then a faster and faster probe above it: +cubicC × t³ requests/s, t
	// seconds after K. cubicC is in absolute units, the same for every
	// process, which is what lets processes that share a key converge to
	// equal shares.
	cubicC = 2.0
	// firstMeasure is how long answers are counted before a first rate is
	// set; until then 429s only pause the model and cut its concurrency.
	firstMeasure = 300 * time.Millisecond
	minRate      = 1.0 / 60
	pauseBase    = 250 * time.Millisecond
	hintFloor    = 5 * time.Millisecond
	pauseMax     = 10 * time.Second
	// A quota window with less than this share left is paced at its refill
	// rate.
	quotaLow = 0.1

	latencySamples = 512
	minSamples     = 100 // answers before Deadline adapts
	p99Every       = 64  // answers between two computations of the p99
	deadlineFactor = 3   // Deadline is this multiple of the observed p99...
)

// MinDeadline is the shortest adaptive deadline (Limiter.Deadline): no call
// is cut sooner, whatever the model's latencies.
const MinDeadline = time.Second

// Kind says what a finished call tells about the model's capacity.
type Kind uint8

const (
	Neutral     Kind = iota // nothing: a bad request, a canceled call
	Answered                // the model answered (whatever the quality gate thought of it)
	RateLimited             // 429
	Overloaded              // 529, 503 overload
	TimedOut                // no answer before the deadline
)

// Result is what Permit.Done reports about a call.
type Result struct {
	Kind       Kind
	RetryAfter time.Duration // server's hint, for RateLimited and Overloaded
	Latency    time.Duration // of an answer
	// Tokens the call really used (input + output); 0 when unknown. It
	// corrects the estimate taken from the tpm bucket.
	InputTokens, OutputTokens int
	Quota                     llm.Quota
}

// Want is what a call needs before it may start.
type Want struct {
	InputTokens int // prompt and system tokens
	MaxTokens   int // the request's max_tokens; 0: the model's typical answer length
	// NoPause makes Acquire fail at once with *PausedError instead of
	// waiting while the model is paused after a rate limit (on_rate_limit:
	// cascade).
	NoPause bool
	// NoWait makes Acquire fail at once with ErrNoRoom when the call may
	// not start now (a hedge, which is worth making only at once).
	NoWait bool
}

// ErrNoRoom is returned by Acquire with Want.NoWait when the call may not
// start now.
var ErrNoRoom = errors.New("limit: no room for a call now")

// PausedError is returned by Acquire with Want.NoPause while the model is
// paused.
type PausedError struct {
	Model string
	For   time.Duration // left of the pause
}

func (e *PausedError) Error() string {
	return fmt.Sprintf("%s: paused after a rate limit or overload, %v left", e.Model, e.For.Round(time.Millisecond))
}

// Clock is the limiter's time source; tests pass a fake.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d; stop cancels it.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// Options configure a Limiter. Zero values take the defaults.
type Options struct {
	Caps
	Initial int   // DefaultInitial
	Max     int   // DefaultMax; the adaptive limit never exceeds Caps.MaxConcurrency either
	Clock   Clock // the real clock
	// Static keeps only the caps: no adaptive limit or rate, no pause, no
	// pacing from headers (on_rate_limit: cascade). Latencies are still
	// kept for Deadline.
	Static bool
}

// Limiter limits the calls of one process to one model. It is safe for
// concurrent use.
type Limiter struct {
	name   string
	clock  Clock
	caps   Caps
	static bool

	mu        sync.Mutex
	limit     float64 // adaptive concurrency limit
	max       float64
	slowStart bool
	inflight  int
	queue     []*waiter
	epoch     uint64 // cuts so far; a call started in an older epoch does not cut
	consec    int    // rate limits and overloads since the last answer (pause doubling)
	timeouts  int    // timeouts since the last answer
	paused    time.Time
	rate      float64 // adaptive requests per second; 0 until the first rate limit
	rateB     Bucket
	lastMax   float64   // the rate at the last rate limit
	cutAt     time.Time // when it was cut
	rpm, tpm  Bucket
	qReq      Bucket // from the provider's headers
	qTok      Bucket
	answers   window
	typical   float64 // EWMA of answer tokens
	timer     func() bool
	timerAt   time.Time

	lat   [latencySamples]time.Duration
	latN  int
	p99At int // latN when p99 was last computed
	// p99 is the p99 of the last answers once minSamples have come (0
	// before; sample keeps only latencies above 0), recomputed every
	// p99Every answers. Deadline reads it
	// without the lock: it is asked before every call, and the sort it
	// ran under l.mu was 2% of the worker's CPU at 5,000 in flight (lock
	// waits and stack growth).
	p99     atomic.Int64
	scratch [latencySamples]time.Duration // the p99's sort, without an allocation
	counter struct{ calls, answered, rateLimited, overloaded, timedOut uint64 }
}

type waiter struct {
	tokens  float64
	ch      chan struct{}
	granted *Permit
}

// New returns a limiter for the model name ("provider/model").
func New(name string, o Options) *Limiter {
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Initial <= 0 {
		o.Initial = DefaultInitial
	}
	if o.Max <= 0 {
		o.Max = DefaultMax
	}
	if c := o.MaxConcurrency; c > 0 && c < o.Max {
		o.Max = c
	}
	now := o.Clock.Now()
	if o.Static {
		o.Initial = o.Max
	}
	l := &Limiter{name: name, clock: o.Clock, caps: o.Caps, static: o.Static, max: float64(o.Max), slowStart: true,
		limit: math.Min(float64(o.Initial), float64(o.Max)), typical: 256,
		answers: window{span: time.Second}}
	if o.RPM > 0 {
		l.rpm = NewBucket(float64(o.RPM), now)
	}
	if o.TPM > 0 {
		l.tpm = NewBucket(float64(o.TPM), now)
	}
	return l
}

// Static reports whether the limiter keeps only its caps (Options.Static).
func (l *Limiter) Static() bool { return l.static }

// Name returns the model the limiter is for.
func (l *Limiter) Name() string { return l.name }

// Permit is the right to make one call. Done must be called exactly once.
type Permit struct {
	l      *Limiter
	epoch  uint64
	busy   bool // the limit was binding when the call started
	tokens float64
	done   bool
}

// Acquire waits until a call to the model may start, or until ctx ends (its
// error is returned). With want.NoPause it returns *PausedError at once while
// the model is paused.
func (l *Limiter) Acquire(ctx context.Context, want Want) (*Permit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	now := l.clock.Now()
	if want.NoPause && now.Before(l.paused) {
		d := l.paused.Sub(now)
		l.mu.Unlock()
		return nil, &PausedError{Model: l.name, For: d}
	}
	tokens := float64(want.InputTokens)
	if want.MaxTokens > 0 {
		tokens += float64(want.MaxTokens)
	} else {
		tokens += l.typical
	}
	if len(l.queue) == 0 && l.inflight < int(l.limit) && l.delay(now, tokens) == 0 {
		p := l.grant(tokens)
		l.mu.Unlock()
		return p, nil
	}
	if want.NoWait {
		l.mu.Unlock()
		return nil, ErrNoRoom
	}
	w := &waiter{tokens: tokens, ch: make(chan struct{})}
	l.queue = append(l.queue, w)
	l.dispatch()
	l.mu.Unlock()

	select {
	case <-w.ch:
		return w.granted, nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	if w.granted != nil { // granted while ctx ended: give it back
		l.mu.Unlock()
		w.granted.Done(Result{Kind: Neutral})
		return nil, ctx.Err()
	}
	if i := slices.Index(l.queue, w); i >= 0 {
		l.queue = slices.Delete(l.queue, i, i+1)
	}
	l.dispatch() // the head may have changed
	l.mu.Unlock()
	return nil, ctx.Err()
}

// delay is how long until a call needing tokens may start, ignoring
// concurrency; 0 means now. l.mu is held.
func (l *Limiter) delay(now time.Time, tokens float64) time.Duration {
	d := max(l.paused.Sub(now), 0)
	d = max(d, l.rateB.Wait(now, 1), l.rpm.Wait(now, 1), l.qReq.Wait(now, 1))
	d = max(d, l.tpm.Wait(now, tokens), l.qTok.Wait(now, tokens))
	return d
}

func (l *Limiter) grant(tokens float64) *Permit {
	l.inflight++
	l.counter.calls++
	l.rateB.Take(1)
	l.rpm.Take(1)
	l.qReq.Take(1)
	l.tpm.Take(tokens)
	l.qTok.Take(tokens)
	// As TCP does: the limit counts as binding when at least half of it was
	// in use.
	busy := len(l.queue) > 0 || 2*l.inflight >= int(l.limit)
	return &Permit{l: l, epoch: l.epoch, tokens: tokens, busy: busy}
}

// dispatch starts queued calls in order while they may start, and arms a
// timer when the head must wait for time rather than for a call to end.
// l.mu is held.
func (l *Limiter) dispatch() {
	now := l.clock.Now()
	for len(l.queue) > 0 && l.inflight < int(l.limit) {
		w := l.queue[0]
		if d := l.delay(now, w.tokens); d > 0 {
			l.arm(now, d)
			return
		}
		l.queue = l.queue[1:]
		w.granted = l.grant(w.tokens)
		close(w.ch)
	}
}

func (l *Limiter) arm(now time.Time, d time.Duration) {
	at := now.Add(d)
	if l.timer != nil {
		if !l.timerAt.After(at) {
			return
		}
		l.timer()
	}
	l.timerAt = at
	l.timer = l.clock.AfterFunc(d, func() {
		l.mu.Lock()
		l.timer = nil
		l.dispatch()
		l.mu.Unlock()
	})
}

// Done reports how the call ended and frees its place.
func (p *Permit) Done(r Result) {
	l := p.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if p.done {
		return
	}
	p.done = true
	l.inflight--
	now := l.clock.Now()

	if used := float64(r.InputTokens + r.OutputTokens); used > 0 {
		l.tpm.Give(p.tokens - used)
		l.qTok.Give(p.tokens - used)
		if r.OutputTokens > 0 {
			l.typical = 0.9*l.typical + 0.1*float64(r.OutputTokens)
		}
	}
	if l.static {
		if r.Kind == Answered {
			l.counter.answered++
			l.sample(r.Latency)
		}
		l.count(r.Kind)
		l.dispatch()
		return
	}
	l.quota(now, r.Quota)

	waiting := len(l.queue) > 0
	switch r.Kind {
	case Answered:
		l.counter.answered++
		l.consec, l.timeouts = 0, 0
		l.answers.add(now)
		l.sample(r.Latency)
		if waiting || p.busy {
			if l.slowStart {
				l.limit++
			} else {
				l.limit += 1 / l.limit
			}
			l.limit = math.Min(l.limit, l.max)
		}
		if l.rate > 0 && waiting {
			k := math.Cbrt(l.lastMax * (1 - rateCut) / cubicC)
			t := now.Sub(l.cutAt).Seconds() - k
			if target := l.lastMax + cubicC*t*t*t; target > l.rate {
				l.setRate(now, target)
			}
		}
	case RateLimited, Overloaded, TimedOut:
		l.count(r.Kind)
		if r.Kind != TimedOut {
			// The server's hint, but doubling while 429s keep coming
			// without an answer between them.
			d := max(r.RetryAfter, min(hintFloor<<min(l.consec, 4), pauseMax))
			if r.RetryAfter <= 0 {
				d = min(pauseBase<<min(l.consec, 10), pauseMax)
			}
			l.consec++
			if until := now.Add(d); until.After(l.paused) {
				l.paused = until
			}
		}
		if r.Kind == TimedOut {
			// One hung call says little about capacity; timeouts in a
			// row do.
			l.timeouts++
		}
		if p.epoch == l.epoch && (r.Kind != TimedOut || l.timeouts >= 2) {
			l.epoch++
			l.slowStart = false
			l.limit = math.Max(1, math.Min(l.limit, float64(l.inflight+1))*concCut)
			// The first rate is set once firstMeasure of answers has
			// been seen: a shorter count mostly measures who was first.
			if r.Kind == RateLimited && (l.rate > 0 || !l.answers.first.IsZero() && now.Sub(l.answers.first) >= firstMeasure) {
				// The rate that met the 429: the answers of the last
				// second, or the adaptive rate when that is lower.
				got := l.answers.rate(now)
				if l.rate > 0 && (got == 0 || l.rate < got) {
					got = l.rate
				}
				if got > 0 {
					l.lastMax, l.cutAt = got, now
					l.setRate(now, got*rateCut)
				}
			}
		}
	}
	l.dispatch()
}

func (l *Limiter) count(k Kind) {
	switch k {
	case RateLimited:
		l.counter.rateLimited++
	case Overloaded:
		l.counter.overloaded++
	case TimedOut:
		l.counter.timedOut++
	}
}

func (l *Limiter) setRate(now time.Time, r float64) {
	r = math.Max(r, minRate)
	l.rate = r
	l.rateB.refill(now)
	tokens := l.rateB.tokens
	if !l.rateB.on {
		tokens = 1
	}
	// A tenth of a second's worth: smooth, so that N processes do not
	// fire in bursts.
	l.rateB = Bucket{on: true, rate: r, size: math.Max(1, r/10), last: now}
	l.rateB.tokens = math.Min(tokens, l.rateB.size)
}

// quota turns the provider's rate-limit headers into buckets: when a window
// has less than quotaLow of it left, calls are paced at its refill rate, so
// that the process slows down before the 429. l.mu is held.
func (l *Limiter) quota(now time.Time, q llm.Quota) {
	set := func(b *Bucket, w llm.QuotaWindow, inflight float64) {
		if !w.Known {
			return
		}
		if w.Limit > 0 && w.Remaining >= w.Limit*quotaLow {
			b.on = false // plenty left: the headers do not limit
			return
		}
		left := w.Remaining - inflight
		switch {
		case w.Limit > 0 && w.Reset > 0:
			*b = Bucket{on: true, rate: math.Max(w.Limit-w.Remaining, 1) / w.Reset.Seconds(), size: math.Max(1, w.Limit*quotaLow), last: now}
		case w.Remaining <= 0 && w.Reset > 0:
			*b = Bucket{on: true, rate: 1 / w.Reset.Seconds(), size: 1, last: now}
		default:
			return
		}
		b.tokens = math.Min(left, b.size)
	}
	set(&l.qReq, q.Requests, float64(l.inflight))
	set(&l.qTok, q.Tokens, float64(l.inflight)*l.typical)
}

func (l *Limiter) sample(d time.Duration) {
	if d <= 0 {
		return
	}
	l.lat[l.latN%latencySamples] = d
	l.latN++
	if l.latN >= minSamples && (l.p99At == 0 || l.latN-l.p99At >= p99Every) {
		n := min(l.latN, latencySamples)
		s := l.scratch[:n]
		copy(s, l.lat[:n])
		slices.Sort(s) // once per p99Every answers, into the scratch array
		l.p99.Store(int64(s[(n*99)/100]))
		l.p99At = l.latN
	}
}

// Deadline is the time a call may take before it is cut: deadlineFactor
// times the p99 of the model's last answers (at least MinDeadline), never
// more than timeout. Before minSamples answers it is timeout. It takes no
// lock.
func (l *Limiter) Deadline(timeout time.Duration) time.Duration {
	p99 := time.Duration(l.p99.Load())
	if p99 == 0 {
		return timeout
	}
	return min(max(p99*deadlineFactor, MinDeadline), timeout)
}

// Snapshot is a limiter's state at one moment.
type Snapshot struct {
	Model    string
	Limit    int     // adaptive concurrency limit
	InFlight int     // calls running
	Waiting  int     // calls waiting to start
	Rate     float64 // adaptive requests per second; 0 when none is set
	Paused   time.Duration
	// Counters since start.
	Calls, Answered, RateLimited, Overloaded, TimedOut uint64
}

// Snapshot returns the limiter's current state.
func (l *Limiter) Snapshot() Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Snapshot{Model: l.name, Limit: int(l.limit), InFlight: l.inflight, Waiting: len(l.queue), Rate: l.rate,
		Calls: l.counter.calls, Answered: l.counter.answered, RateLimited: l.counter.rateLimited,
		Overloaded: l.counter.overloaded, TimedOut: l.counter.timedOut}
	if d := l.paused.Sub(l.clock.Now()); d > 0 {
		s.Paused = d
	}
	return s
}
