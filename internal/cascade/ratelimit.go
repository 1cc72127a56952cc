package cascade

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/promptcascade/promptcascade/internal/limit"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

// OnRateLimit is what a prompt does when its model is rate-limited or
// overloaded (routes key on_rate_limit).
type OnRateLimit string

const (
	// WaitOnRateLimit (the default): the prompt waits for the model's capacity, up to
	// RateLimit.MaxWait, before it cascades to the next model (or, with
	// none left, is handed back to the queue). A rate limit never buys a
	// pricier model. The model's limiter adapts to its capacity.
	WaitOnRateLimit OnRateLimit = "wait"
	// CascadeOnRateLimit moves on to the next model at once, as the reference article
	// does: lower latency, higher cost. Same-model retries follow
	// max_retries and backoff; the limiter keeps only the static caps.
	CascadeOnRateLimit OnRateLimit = "cascade"
)

// DefaultMaxWait is RateLimit.MaxWait when 0.
const DefaultMaxWait = 10 * time.Minute

// RateLimit is the rate-limit policy: one for every tier, overridable per
// tier.
type RateLimit struct {
	OnRateLimit OnRateLimit                 // "" means WaitOnRateLimit
	Tiers       map[prompt.Tier]OnRateLimit // per-tier overrides
	// MaxWait bounds how long one prompt waits for one model's capacity
	// (the sum of its waits and rate-limited calls on that model).
	MaxWait time.Duration
}

func (rl RateLimit) validate() error {
	check := func(key string, o OnRateLimit) error {
		if o != "" && o != WaitOnRateLimit && o != CascadeOnRateLimit {
			return fmt.Errorf("%s: %q is not wait or cascade", key, o)
		}
		return nil
	}
	if err := check("on_rate_limit", rl.OnRateLimit); err != nil {
		return err
	}
	for tier, o := range rl.Tiers {
		if !tier.Valid() {
			return fmt.Errorf("on_rate_limit: unknown tier %q", tier)
		}
		if err := check("tiers."+string(tier)+".on_rate_limit", o); err != nil {
			return err
		}
	}
	if rl.MaxWait < 0 {
		return fmt.Errorf("max_wait: %v is negative", rl.MaxWait)
	}
	return nil
}

func (rl RateLimit) policy(tier prompt.Tier) OnRateLimit {
	if o := rl.Tiers[tier]; o != "" {
		return o
	}
	if rl.OnRateLimit != "" {
		return rl.OnRateLimit
	}
	return WaitOnRateLimit
}

// isCapacity reports the outcomes that say the model has no room now.
func isCapacity(o prompt.Outcome) bool {
	return o == prompt.OutcomeRateLimited || o == prompt.OutcomeOverloaded
}

// Limits returns the state of every model's limiter, in tier order.
func (c *Cascade) Limits() []limit.Snapshot {
	out := make([]limit.Snapshot, 0, len(c.targets))
	for _, t := range c.targets {
		out = append(out, t.lim.Snapshot())
	}
	return out
}

// acquire waits for t's limiter. It returns nil, having recorded a skip,
// when the prompt may not wait any longer for t: with CascadeOnRateLimit while t is
// paused, with WaitOnRateLimit once the wait would pass waitEnd. A nil permit with
// r.canceled set means the Run's ctx ended.
func (r *run) acquire(t *target, mode OnRateLimit, waitEnd time.Time) *limit.Permit {
	want := r.want(t, mode == CascadeOnRateLimit)
	// Most calls find room at once: they need no deadline for a wait, and
	// nobody is told of one.
	now := want
	now.NoWait = true
	p, err := t.lim.Acquire(r.ctx, now)
	if errors.Is(err, limit.ErrNoRoom) {
		ctx := r.ctx
		if mode == WaitOnRateLimit {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(r.ctx, waitEnd)
			defer cancel()
		}
		if r.wait != nil {
			r.wait(true)
		}
		p, err = t.lim.Acquire(ctx, want)
		if r.wait != nil {
			r.wait(false)
		}
	}
	if err == nil {
		return p
	}
	if r.ctx.Err() != nil {
		r.canceled = true
		return nil
	}
	var pe *limit.PausedError
	switch {
	case errors.As(err, &pe):
		r.skip(t, prompt.OutcomeCooldownSkip, "skipped without a call: paused after a rate limit or overload ("+
			pe.For.Round(time.Millisecond).String()+" left; on_rate_limit: cascade)")
		r.noteWait(pe.For)
	default:
		r.skip(t, prompt.OutcomeCooldownSkip, "waited max_wait for the model's capacity (on_rate_limit: wait); moving on")
		r.noteWait(t.lim.Snapshot().Paused)
	}
	return nil
}

// want is what one call of the prompt to t asks of t's limiter.
func (r *run) want(t *target, noPause bool) limit.Want {
	w := limit.Want{InputTokens: r.out.Result.Signals.TokenCount, MaxTokens: r.out.Result.Job.MaxTokens, NoPause: noPause}
	if t.pol.Caps.TPM > 0 {
		w.InputTokens = r.inputTokens()
	}
	return w
}

// optionalCall makes a call that may be left out (a shadow call): through
// t's limiter, but not while t is paused. called is false when it was left
// out.
func (r *run) optionalCall(t *target) (a prompt.Attempt, resp llm.Response, called bool) {
	want := limit.Want{InputTokens: r.out.Result.Signals.TokenCount, MaxTokens: r.out.Result.Job.MaxTokens, NoPause: true}
	p, err := t.lim.Acquire(r.ctx, want)
	if err != nil {
		return a, resp, false
	}
	r.n++ // never hedged
	a, resp, _ = r.attempt(r.ctx, t, p, r.n)
	return a, resp, true
}

func (r *run) noteWait(d time.Duration) {
	if d > 0 && (r.coolWait == 0 || d < r.coolWait) {
		r.coolWait = d
	}
}

// limitResult is what one call tells the limiter.
func limitResult(a prompt.Attempt, resp llm.Response, err error, timedOut bool) limit.Result {
	res := limit.Result{InputTokens: a.InputTokens, OutputTokens: a.OutputTokens, Quota: resp.Quota}
	if le, ok := asLLMError(err); ok {
		res.Quota = le.Quota
		res.RetryAfter = le.RetryAfter
	}
	switch a.Outcome {
	case prompt.OutcomeOK:
		res.Kind, res.Latency = limit.Answered, a.Latency
	case prompt.OutcomeQualityFailed, prompt.OutcomeEmptyResponse, prompt.OutcomeContentFilter:
		res.Kind = limit.Answered
	case prompt.OutcomeRateLimited:
		res.Kind = limit.RateLimited
	case prompt.OutcomeOverloaded:
		res.Kind = limit.Overloaded
	case prompt.OutcomeTimeout:
		if timedOut {
			res.Kind = limit.TimedOut
		}
	}
	return res
}
