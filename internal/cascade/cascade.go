// Package cascade sends one prompt down its tier's ordered list of models
// until one gives an answer that passes the quality gate. It ports the
// reference article's QualityCascadeRouter and adds what production needs:
// a timeout per attempt, same-model retries with capped exponential backoff
// and full jitter that honour the server's retry-after, a per-process cooldown
// for models that keep failing, a model that answers "not found" disabled
// until restart, models skipped when the prompt cannot fit their context
// window, and a final decision that tells a transient failure (hand the
// message back to the queue) from a permanent one (store it as failed).
//
// Every call and every deliberate skip becomes one prompt.Attempt (one
// request_log row). Run never returns an error: everything is in the Outcome.
package cascade

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/promptcascade/promptcascade/internal/backoff"
	"github.com/promptcascade/promptcascade/internal/limit"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/quality"
	"github.com/promptcascade/promptcascade/internal/tokens"
)

// Defaults applied by New to zero settings.
const (
	DefaultTimeout     = 30 * time.Second // the article's timeout=30
	DefaultBackoffBase = 250 * time.Millisecond
	DefaultBackoffMax  = 10 * time.Second
)

// ModelPolicy is how the cascade treats one model.
type ModelPolicy struct {
	Model      string        // "provider/model"
	Timeout    time.Duration // per attempt; 0 means DefaultTimeout
	MaxRetries int           // same-model retries of retryable failures before cascading
	Price      pricing.Price // cost of usage; ContextWindow > 0 enables the context check
	Caps       limit.Caps    // static rpm, tpm and max_concurrency of this process's calls
	// HedgeAfter (0: off) starts a second, identical call on the model when
	// the first has not answered after this long; the first answer wins
	// and the other call is canceled (see hedged).
	HedgeAfter time.Duration
	// Batch marks a batch-mode model: a Run that reaches it makes no call
	// but ends with Result.Handoff set, so that the prompt goes into the
	// model's next provider batch (internal/providerbatch).
	Batch bool
}

// Backoff spaces same-model retries with the project's one policy
// (backoff.Policy, full jitter): the n-th retry waits a random time in
// [0, min(Max, Base*2^(n-1))], drawn from the prompt's seed so that a run is
// reproducible, or the server's retry-after when that is longer. A
// retry-after longer than Max is not waited for: the cascade moves on to the
// next model instead. No wait ever runs past the deadline of the ctx given
// to Run. Zero values mean DefaultBackoffBase and DefaultBackoffMax.
type Backoff = backoff.Policy

// Cooldown takes a failing model out of rotation for Period, during which
// every prompt in this process skips it, logged as outcome cooldown_skip. Two
// triggers, either or both:
//
//   - Failures consecutive transient failures (rate limits, overload, server
//     errors, timeouts, network errors); a call that reached the model (an
//     answer, even one the quality gate rejects) clears the count.
//   - More than MaxFailureShare of the model's calls in the last Window were
//     transient failures, once at least MinCalls calls fell in that window. This
//     catches a model that fails often without ever failing N times in a row.
//     The window is kept in ten buckets of Window/10, so it slides in steps of
//     a tenth; it is cleared when a cooldown starts.
//
// After the period the model is tried again; its first transient failure
// sends it straight back into cooldown, an answer returns it to normal.
// Failures 0 and MaxFailureShare 0 turn cooldown off. Calls that failed for
// reasons that are not transient (auth, bad request, quota, ...) count
// towards neither trigger.
type Cooldown struct {
	Failures int
	Period   time.Duration

	Window          time.Duration // span of the failure-share window; required when MaxFailureShare > 0
	MaxFailureShare float64       // 0 (off) or in (0, 1): cool down when the share of failed calls is above this
	MinCalls        int           // calls needed in the window before the share counts; 0 means DefaultCooldownMinCalls
}

// DefaultCooldownMinCalls is Cooldown.MinCalls when it is 0.
const DefaultCooldownMinCalls = 10

// on reports whether either cooldown trigger is set.
func (cd Cooldown) on() bool { return cd.Failures > 0 || cd.MaxFailureShare > 0 }

// Settings configure a Cascade.
type Settings struct {
	Tiers     map[prompt.Tier][]string // every tier, each an ordered list of "provider/model"
	Models    map[string]ModelPolicy   // a policy for every model a tier names
	Quality   quality.Rules            // zero value means quality.Default()
	Backoff   Backoff
	Cooldown  Cooldown
	Shadow    Shadow    // shadow labelling; zero is off
	RateLimit RateLimit // what a rate limit or overload does; zero value: wait up to DefaultMaxWait
	Seed      uint64    // mixed into every llm.Request.Seed; change it to re-roll simulated runs
	// MaxInFlight is the most calls one model's adaptive limiter allows at
	// once (the worker's concurrency); 0 means limit.DefaultMax.
	MaxInFlight int
	// CacheTTL turns the response cache on (the routes file's cache.ttl):
	// a model's answer to the same call stored within the TTL is taken
	// from the ResponseCache of the Run's ctx (WithResponseCache) instead
	// of calling it, and answers from calls carry Result.CacheKey. 0 is off.
	CacheTTL time.Duration

	// Now is the clock used for cooldowns and Attempt.StartedAt; nil means
	// time.Now. Latencies are always measured on the monotonic clock.
	Now func() time.Time
	// Sleep waits between retries; nil means a timer that returns early with
	// ctx.Err() when ctx ends. Tests inject a fake clock here.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Outcome is the result of one Run.
type Outcome struct {
	// Result has Job, Tier, Signals and Delivery as given, one Attempt per
	// call or skip, and the final Status: succeeded, failed, or "" when
	// Transient.
	Result prompt.Result
	// Transient is true when no model answered and at least one model's
	// last outcome was transient (a retryable error, a cooldown skip, or the
	// ctx ending): the caller should hand the message back for a later
	// delivery instead of storing a failure.
	Transient bool
	// RetryAfter is the longest retry-after a server sent, or the shortest
	// remaining cooldown of a skipped model, for the caller's NakWithDelay.
	RetryAfter time.Duration
	// Stopped is the error of the ctx's CallGate when it stopped the Run
	// before a call (see WithCallGate); the Run is then Transient.
	Stopped error
}

// Cascade runs prompts through their tier's models. It is safe for concurrent
// use; cooldown and disabled-model state is shared by every Run.
type Cascade struct {
	tiers     map[prompt.Tier][]*target
	targets   []*target // each model once, in tier order
	rateLimit RateLimit
	gate      quality.Gate
	backoff   Backoff
	cooldown  Cooldown
	seed      uint64
	now       func() time.Time
	sleep     func(ctx context.Context, d time.Duration) error
	log       *slog.Logger

	shadowShare float64
	judge       *target // nil when shadowing is off

	cacheTTL time.Duration // 0: the response cache is off
}

// New checks s and returns a Cascade. Every tier must list at least one model;
// every model must have a ModelPolicy and resolve in reg. Errors name the
// offending key or model. log may be nil.
func New(s Settings, reg *llm.Registry, log *slog.Logger) (*Cascade, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cascade{
		tiers:     make(map[prompt.Tier][]*target, len(prompt.Tiers)),
		backoff:   s.Backoff,
		cooldown:  s.Cooldown,
		seed:      s.Seed,
		rateLimit: s.RateLimit,
		now:       s.Now,
		sleep:     s.Sleep,
		log:       log,
		cacheTTL:  s.CacheTTL,
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.sleep == nil {
		c.sleep = backoff.Sleep
	}
	q := s.Quality
	if q.IsZero() {
		q = quality.Default()
	}
	if err := q.Validate(); err != nil {
		return nil, fmt.Errorf("cascade: %w", err)
	}
	c.gate = q.Compile()

	if c.backoff.Base < 0 || c.backoff.Max < 0 {
		return nil, fmt.Errorf("cascade: backoff: negative duration (base %v, max %v)", c.backoff.Base, c.backoff.Max)
	}
	if c.backoff.Base == 0 {
		c.backoff.Base = DefaultBackoffBase
	}
	if c.backoff.Max == 0 {
		c.backoff.Max = max(DefaultBackoffMax, c.backoff.Base)
	}
	if c.backoff.Max < c.backoff.Base {
		return nil, fmt.Errorf("cascade: backoff.max %v is less than backoff.base %v", c.backoff.Max, c.backoff.Base)
	}
	if c.cooldown.Failures < 0 {
		return nil, fmt.Errorf("cascade: cooldown.failures: %d is negative", c.cooldown.Failures)
	}
	if c.cooldown.Failures > 0 && c.cooldown.Period <= 0 {
		return nil, fmt.Errorf("cascade: cooldown.period: must be > 0 when cooldown.failures is %d", c.cooldown.Failures)
	}
	if err := c.cooldown.checkShare(); err != nil {
		return nil, fmt.Errorf("cascade: %w", err)
	}
	if c.cooldown.MaxFailureShare > 0 && c.cooldown.MinCalls == 0 {
		c.cooldown.MinCalls = DefaultCooldownMinCalls
	}

	if err := c.rateLimit.validate(); err != nil {
		return nil, fmt.Errorf("cascade: %w", err)
	}
	if c.rateLimit.MaxWait == 0 {
		c.rateLimit.MaxWait = DefaultMaxWait
	}
	for tier := range s.Tiers {
		if !tier.Valid() {
			return nil, fmt.Errorf("cascade: tiers.%s: unknown tier (want simple, moderate or complex)", tier)
		}
	}
	targets := make(map[string]*target)
	for _, tier := range prompt.Tiers {
		names := s.Tiers[tier]
		if len(names) == 0 {
			return nil, fmt.Errorf("cascade: tiers.%s: no models", tier)
		}
		list := make([]*target, 0, len(names))
		for i, name := range names {
			t, ok := targets[name]
			if !ok {
				var err error
				if t, err = newTarget(name, s.Models, reg); err != nil {
					return nil, fmt.Errorf("cascade: tiers.%s[%d]: %w", tier, i, err)
				}
				targets[name] = t
				c.targets = append(c.targets, t)
			}
			list = append(list, t)
		}
		c.tiers[tier] = list
	}
	if err := c.setShadow(s.Shadow, s.Models, reg); err != nil {
		return nil, fmt.Errorf("cascade: %w", err)
	}
	// A model adapts to its capacity when a tier that waits for it lists
	// it, unless its provider says it has no capacity to find
	// (llm.Unlimited): a slow start from limit.DefaultInitial would only
	// hold its first calls back (1.9 s of 200 ms rounds to reach 5,000).
	adaptive := map[*target]bool{}
	for _, tier := range prompt.Tiers {
		if c.rateLimit.policy(tier) == WaitOnRateLimit {
			for _, t := range c.tiers[tier] {
				if u, ok := t.prov.(llm.Unlimited); !ok || !u.Unlimited(t.id) {
					adaptive[t] = true
				}
			}
		}
	}
	for _, t := range c.targets {
		t.lim = limit.New(t.name, limit.Options{Caps: t.pol.Caps, Max: s.MaxInFlight, Static: !adaptive[t]})
	}
	if j := c.judge; j != nil {
		// The shadow judge shares the limiter of the tier model it is, if any.
		for _, t := range c.targets {
			if t.name == j.name {
				j.lim = t.lim
			}
		}
		if j.lim == nil {
			j.lim = limit.New(j.name, limit.Options{Caps: j.pol.Caps, Max: s.MaxInFlight})
		}
	}
	return c, nil
}

func newTarget(name string, policies map[string]ModelPolicy, reg *llm.Registry) (*target, error) {
	pol, ok := policies[name]
	if !ok {
		return nil, fmt.Errorf("model %q: no model policy (add it under models)", name)
	}
	if pol.Model == "" {
		pol.Model = name
	}
	if pol.Model != name {
		return nil, fmt.Errorf("model %q: policy is for %q", name, pol.Model)
	}
	if pol.Timeout < 0 {
		return nil, fmt.Errorf("model %q: timeout %v is negative", name, pol.Timeout)
	}
	if pol.Timeout == 0 {
		pol.Timeout = DefaultTimeout
	}
	if pol.HedgeAfter < 0 {
		return nil, fmt.Errorf("model %q: hedge_after %v is negative", name, pol.HedgeAfter)
	}
	if pol.MaxRetries < 0 {
		return nil, fmt.Errorf("model %q: max_retries %d is negative", name, pol.MaxRetries)
	}
	prov, id, err := reg.Resolve(name)
	if err != nil {
		return nil, err
	}
	return &target{name: name, id: id, prov: prov, pol: pol}, nil
}

// Run sends job down tier's models and returns what happened. delivery is the
// queue's delivery count (1 for the first); it is recorded and mixed into the
// per-call seeds. Run stops at once when ctx ends (worker shutdown), with a
// transient Outcome.
//
// Result.Latency is the wall time of this Run, backoff waits and failed
// attempts included: what the prompt waited for its answer in this delivery.
// Result.CostUSD is the sum over every attempt, failed ones included.
func (c *Cascade) Run(ctx context.Context, job prompt.Job, tier prompt.Tier, sig prompt.Signals, delivery int) Outcome {
	r := run{
		c:     c,
		ctx:   ctx,
		start: time.Now(),
		base:  seedBase(c.seed, job.BatchID, job.ID, delivery),
		need:  -1,
		input: -1,
		gate:  callGateFrom(ctx),
		wait:  capacityWaitFrom(ctx),
	}
	r.out.Result = prompt.Result{Job: job, Tier: tier, Signals: sig, Delivery: delivery}
	// Counted here, not taken from sig.WordCount, so that the gate follows
	// Python's str.split() exactly whatever the classifier counts.
	r.promptWords = quality.CountWords(job.Prompt)

	targets := c.tiers[tier]
	if len(targets) == 0 {
		res := &r.out.Result
		res.Status = prompt.StatusFailed
		res.Error = fmt.Sprintf("no models for tier %q", tier)
		res.CompletedAt = c.now()
		res.Latency = time.Since(r.start)
		return r.out
	}
	start := 0
	if rs := job.Resume; rs != nil {
		// A later round of a prompt that went through a provider batch:
		// continue after the models already tried, numbering on.
		start, r.n = rs.Position, rs.Attempts
		if start < 0 || start >= len(targets) {
			res := &r.out.Result
			res.Status = prompt.StatusFailed
			res.Error = fmt.Sprintf("resume at model %d of tier %q, which has %d", start, tier, len(targets))
			res.CompletedAt = c.now()
			res.Latency = time.Since(r.start)
			return r.out
		}
	}
	r.out.Result.Attempts = make([]prompt.Attempt, 0, len(targets)+1)
	r.lookupCache(targets, start)
	if r.cascade(targets, start) {
		if !r.cached {
			r.shadow() // a cached answer was judged (or not) when it was paid for
		}
		return r.out
	}
	r.fail()
	return r.out
}

// run is the state of one Run.
type run struct {
	c           *Cascade
	ctx         context.Context
	start       time.Time
	base        uint64 // seed of this (batch, id, delivery)
	n           int    // attempts recorded so far
	need        int    // tokens the prompt needs in a context window; -1 until computed
	input       int    // system + prompt tokens; -1 until counted
	promptWords int
	canceled    bool
	gate        CallGate      // from the ctx; nil when none
	wait        CapacityWait  // from the ctx; nil when none
	coolWait    time.Duration // shortest remaining cooldown of a skipped model
	out         Outcome

	cuts   map[*target]int                // calls per model that timed out (stretch); nil when none
	keys   map[*target][]byte             // response cache keys; nil when the cache is off
	hits   map[string]prompt.CachedAnswer // cached answers by key
	cached bool                           // the answer came from the cache
}

// cascade tries each model in turn from start; true once one answered or
// the prompt was handed off to a batch-mode model.
func (r *run) cascade(targets []*target, start int) bool {
	c := r.c
	mode := c.rateLimit.policy(r.out.Result.Tier)
	for i := start; i < len(targets); i++ {
		t := targets[i]
		if r.ctx.Err() != nil {
			r.canceled = true
			return false
		}
		if !t.pol.Batch {
			hit, stop := r.cacheHit(t)
			if stop {
				return false
			}
			if hit {
				r.cached = true
				return true
			}
		}
		if r.skipped(t) {
			continue
		}
		if t.pol.Batch {
			r.out.Result.Handoff = &prompt.Handoff{Model: t.name, Position: i}
			r.out.Result.CompletedAt = c.now()
			r.out.Result.Latency = time.Since(r.start)
			return true
		}
		// With WaitOnRateLimit, the prompt may spend MaxWait on this model
		// waiting for capacity and on calls that found none.
		waitEnd := time.Now().Add(c.rateLimit.MaxWait)
		for try := 0; ; try++ {
			if !r.allowed(Call{Model: t.name, Price: t.pol.Price}) {
				return false
			}
			p := r.acquire(t, mode, waitEnd)
			if p == nil {
				if r.canceled {
					return false
				}
				break
			}
			if r.skipped(t) {
				// The model went into cooldown (or was disabled) while the
				// prompt waited for its capacity: move on as a prompt that
				// found it cooling down would, without the call.
				p.Done(limit.Result{Kind: limit.Neutral})
				break
			}
			a, resp, hint := r.call(t, p)
			if a.Outcome == prompt.OutcomeOK {
				r.succeed(t, a, resp)
				return true
			}
			if r.ctx.Err() != nil {
				// The caller's ctx ended (shutdown or the delivery's
				// deadline): this says nothing about the model.
				a.Outcome = prompt.OutcomeCanceled
				a.HTTPStatus = 0
				a.Error = "canceled: " + shortText(context.Cause(r.ctx).Error())
				r.record(a)
				r.canceled = true
				return false
			}
			r.record(a)
			c.observe(t, a)
			if a.Outcome == prompt.OutcomeTimeout {
				r.cut(t)
			}
			if hint > r.out.RetryAfter {
				r.out.RetryAfter = hint
			}
			if mode == WaitOnRateLimit && isCapacity(a.Outcome) {
				// The limiter paused the model; the next Acquire waits
				// for the pause. This does not count as a retry.
				if time.Now().Before(waitEnd) {
					try--
					continue
				}
				break
			}
			if !a.Outcome.Retryable() || try >= t.pol.MaxRetries {
				break
			}
			if c.cooldown.on() && t.coolingFor(c.now(), c.cooldown.Failures) > 0 {
				break
			}
			wait, ok := r.retryWait(try, hint)
			if !ok {
				break
			}
			if err := c.sleep(r.ctx, wait); err != nil || r.ctx.Err() != nil {
				r.canceled = true
				return false
			}
		}
	}
	return false
}

// allowed asks the Run's CallGate, if any, about call; a refusal stops the
// Run (Stopped is set, the Outcome will be transient).
func (r *run) allowed(call Call) bool {
	if r.gate == nil {
		return true
	}
	if err := r.gate(r.ctx, call); err != nil {
		r.out.Stopped = err
		r.canceled = true
		return false
	}
	return true
}

// skipped records and reports a model that must not be called for this
// prompt: disabled, cooling down, or too small for it.
func (r *run) skipped(t *target) bool {
	c := r.c
	if d := t.disabled.Load(); d != nil && !d.expired(c.now()) {
		r.skip(t, d.outcome, "skipped without a call: "+d.reason)
		return true
	}
	if c.cooldown.on() {
		if rem := t.coolingFor(c.now(), c.cooldown.Failures); rem > 0 {
			r.skip(t, prompt.OutcomeCooldownSkip, "cooling down after repeated failures or a high failure share; "+rem.Round(time.Millisecond).String()+" left")
			if r.coolWait == 0 || rem < r.coolWait {
				r.coolWait = rem
			}
			return true
		}
	}
	if cw := t.pol.Price.ContextWindow; cw > 0 {
		if r.need < 0 {
			r.need = r.inputTokens() + max(r.out.Result.Job.MaxTokens, 0)
		}
		if r.need > cw {
			r.skip(t, prompt.OutcomeContextWindow,
				fmt.Sprintf("needs %d tokens (prompt, system and max_tokens); context window is %d", r.need, cw))
			return true
		}
	}
	return false
}

func (r *run) skip(t *target, o prompt.Outcome, reason string) {
	r.n++
	r.record(prompt.Attempt{Attempt: r.n, Model: t.name, Outcome: o, Error: reason, StartedAt: r.c.now()})
}

func (r *run) record(a prompt.Attempt) {
	r.out.Result.Attempts = append(r.out.Result.Attempts, a)
	r.out.Result.CostUSD += a.CostUSD
	if r.c.log.Enabled(r.ctx, slog.LevelDebug) && a.Outcome != prompt.OutcomeOK {
		r.c.log.LogAttrs(r.ctx, slog.LevelDebug, "cascade attempt failed",
			slog.String("batch", r.out.Result.Job.BatchID), slog.String("id", r.out.Result.Job.ID), slog.Int("attempt", a.Attempt),
			slog.String("model", a.Model), slog.String("outcome", string(a.Outcome)), slog.String("error", a.Error))
	}
}

// inputTokens is the prompt's size in tokens (system + prompt), counted once.
func (r *run) inputTokens() int {
	if r.input < 0 {
		// Signals.TokenCount already covers system + prompt.
		r.input = r.out.Result.Signals.TokenCount
		if r.input == 0 {
			r.input = tokens.Count(r.out.Result.Job.System) + tokens.Count(r.out.Result.Job.Prompt)
		}
	}
	return r.input
}

// call makes one attempt on t under permit p and classifies it. hint is the
// server's retry-after, if any. The attempt's deadline is t's adaptive one
// (limit.Limiter.Deadline), never above its timeout (see callContext).
// With hedge_after, see hedged.
func (r *run) call(t *target, p *limit.Permit) (a prompt.Attempt, resp llm.Response, hint time.Duration) {
	if t.pol.HedgeAfter > 0 {
		return r.hedged(t, p)
	}
	r.n++
	return r.attempt(r.ctx, t, p, r.n)
}

// request is attempt number n's request to t.
func (r *run) request(t *target, n int) llm.Request {
	return llm.Request{
		Model:     t.id,
		System:    r.out.Result.Job.System,
		Prompt:    r.out.Result.Job.Prompt,
		MaxTokens: r.out.Result.Job.MaxTokens,
		Seed:      attemptSeed(r.base, n),
	}
}

// attempt is call number n under ctx. It only reads r, so that two hedged
// calls may run at once.
func (r *run) attempt(ctx context.Context, t *target, p *limit.Permit, n int) (a prompt.Attempt, resp llm.Response, hint time.Duration) {
	c := r.c
	a = prompt.Attempt{Attempt: n, Model: t.name, StartedAt: c.now()}
	req := r.request(t, n)
	t0 := time.Now() // before the deadline starts: a timed-out call's latency is at least the deadline
	actx, stop := callContext(ctx, t.lim, t.pol.Timeout, t0, r.stretch(t))
	resp, err := t.prov.Complete(actx, req)
	a.Latency = time.Since(t0)
	timedOut := stop()
	defer func() { p.Done(limitResult(a, resp, err, timedOut)) }()

	// Usage is billed whenever the provider reported it, failure or not.
	a.InputTokens, a.OutputTokens, a.Estimated = resp.InputTokens, resp.OutputTokens, resp.UsageEstimated
	a.HTTPStatus = resp.HTTPStatus
	a.CostUSD = t.pol.Price.Cost(pricing.Usage{
		InputTokens: resp.InputTokens, OutputTokens: resp.OutputTokens,
		CacheReadTokens: resp.CacheReadTokens, CacheWriteTokens: resp.CacheWriteTokens,
	})

	if err != nil {
		a.Outcome, a.HTTPStatus, a.Error, hint = classify(err, timedOut)
		return a, resp, hint
	}
	if quality.IsBlank(resp.Text) {
		a.Outcome, a.Error = prompt.OutcomeEmptyResponse, "empty response"
		return a, resp, 0
	}
	if ok, reason := c.gate.Check(r.promptWords, resp.Text); !ok {
		a.Outcome, a.Error = prompt.OutcomeQualityFailed, reason
		return a, resp, 0
	}
	a.Outcome = prompt.OutcomeOK
	return a, resp, 0
}

// classify turns a provider error into an outcome, an HTTP status, a short
// reason and a retry-after hint. Errors that are not *llm.Error break the
// Provider contract; they count as timeouts when the attempt's deadline
// passed and as network errors otherwise, both retryable.
func classify(err error, timedOut bool) (prompt.Outcome, int, string, time.Duration) {
	if le, ok := asLLMError(err); ok {
		msg := le.Message
		if msg == "" && le.Err != nil {
			msg = le.Err.Error()
		}
		if msg == "" {
			msg = string(le.Class)
		}
		if le.RequestID != "" {
			msg += " [request " + le.RequestID + "]"
		}
		return le.Class, le.HTTPStatus, shortText(msg), le.RetryAfter
	}
	if timedOut {
		return prompt.OutcomeTimeout, 0, shortText(err.Error()), 0
	}
	return prompt.OutcomeNetwork, 0, shortText(err.Error()), 0
}

// retryWait is the pause before retry number try+1 of the same model, or
// false when the cascade should move on instead: the server asked for more
// than Backoff.Max, or the wait would run past ctx's deadline.
func (r *run) retryWait(try int, hint time.Duration) (time.Duration, bool) {
	b := r.c.backoff
	if hint > b.Max {
		return 0, false
	}
	wait := b.DelayAt(try+1, unitFloat(attemptSeed(r.base, r.n)^0xb0ff))
	wait = max(wait, hint)
	if dl, ok := r.ctx.Deadline(); ok && time.Until(dl) <= wait {
		return 0, false
	}
	return wait, true
}

func (r *run) succeed(t *target, a prompt.Attempt, resp llm.Response) {
	r.record(a)
	r.c.observe(t, a)
	r.keep(t, resp.Text, resp.FinishReason, resp.InputTokens, resp.OutputTokens)
	r.out.Result.CacheKey = r.keys[t] // nil when the cache is off
}

// keep makes t's answer the prompt's: succeeded, with its text and tokens.
func (r *run) keep(t *target, text, finish string, in, out int) {
	res := &r.out.Result
	res.Status = prompt.StatusSucceeded
	res.ModelUsed = t.name
	res.Response = text
	res.FinishReason = finish
	res.InputTokens = in
	res.OutputTokens = out
	res.CompletedAt = r.c.now()
	res.Latency = time.Since(r.start)
}

// fail makes the final decision when no model answered: transient if any
// model's last outcome was transient (or ctx ended), permanent otherwise.
// Error lists each model's last outcome in order: "sim/a: quality_failed;
// sim/b: bad_request".
func (r *run) fail() {
	res := &r.out.Result
	transient := r.canceled
	var sb strings.Builder
	as := res.Attempts
	for i, a := range as {
		if i+1 < len(as) && as[i+1].Model == a.Model {
			continue // not this model's last attempt
		}
		if sb.Len() > 0 {
			sb.WriteString("; ")
		}
		sb.WriteString(a.Model)
		sb.WriteString(": ")
		sb.WriteString(string(a.Outcome))
		if isTransient(a.Outcome) {
			transient = true
		}
	}
	if r.canceled && (len(as) == 0 || as[len(as)-1].Outcome != prompt.OutcomeCanceled) {
		if sb.Len() > 0 {
			sb.WriteString("; ")
		}
		sb.WriteString("canceled")
	}
	if len(as) > 0 {
		res.ModelUsed = as[len(as)-1].Model
	}
	res.Error = sb.String()
	res.CompletedAt = r.c.now()
	res.Latency = time.Since(r.start)
	if transient {
		r.out.Transient = true
		res.Status = ""
		r.out.RetryAfter = max(r.out.RetryAfter, r.coolWait)
		return
	}
	res.Status = prompt.StatusFailed
}

func isTransient(o prompt.Outcome) bool {
	return o.Transient() || o == prompt.OutcomeCooldownSkip || o == prompt.OutcomeCanceled
}

// Step returns the model at position of tier's list and whether it is
// batch-mode; ok is false past the end of the list.
func (c *Cascade) Step(tier prompt.Tier, position int) (model string, batch, ok bool) {
	ts := c.tiers[tier]
	if position < 0 || position >= len(ts) {
		return "", false, false
	}
	return ts[position].name, ts[position].pol.Batch, true
}

// Gate judges an answer to promptText as a call's answer is judged: OK, or
// empty_response / quality_failed with the reason. The provider batch poller
// runs batch answers through it.
func (c *Cascade) Gate(promptText, response string) (prompt.Outcome, string) {
	if quality.IsBlank(response) {
		return prompt.OutcomeEmptyResponse, "empty response"
	}
	if ok, reason := c.gate.Check(quality.CountWords(promptText), response); !ok {
		return prompt.OutcomeQualityFailed, reason
	}
	return prompt.OutcomeOK, ""
}
