package cascade

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/promptcascade/promptcascade/internal/limit"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/redact"
	"github.com/promptcascade/promptcascade/internal/seed"
)

// target is one model as the cascade sees it, shared by every tier that
// names it and every Run. Its cooldown and disabled state is lock-free.
type target struct {
	name string // "provider/model"
	id   string // bare model id sent to the provider
	prov llm.Provider
	pol  ModelPolicy
	lim  *limit.Limiter // this process's calls to the model

	fails     atomic.Int32            // consecutive transient failures
	until     atomic.Int64            // cooldown end, Unix nanoseconds; 0 when not cooling down
	probation atomic.Bool             // a cooldown ran out and no call has answered since
	disabled  atomic.Pointer[disable] // set when the model answered not_found, auth_error, permission or quota_exhausted
	win       window                  // calls and failures of the failure-share trigger
}

// coolingFor returns how long t still cools down at now, 0 when it may be
// called. A cooldown that has run out puts the model on probation (and
// leaves the consecutive count one short of failures), so that the next
// transient failure starts a new cooldown at once.
func (t *target) coolingFor(now time.Time, failures int) time.Duration {
	u := t.until.Load()
	if u == 0 {
		return 0
	}
	if rem := time.Duration(u - now.UnixNano()); rem > 0 {
		return rem
	}
	if t.until.CompareAndSwap(u, 0) {
		if failures > 0 {
			t.fails.Store(int32(failures - 1))
		}
		t.probation.Store(true)
	}
	return 0
}

// observe updates t's shared state after an attempt and logs, once, the
// events that change how every prompt treats the model.
func (c *Cascade) observe(t *target, a prompt.Attempt) {
	cd := c.cooldown
	switch o := a.Outcome; {
	case o == prompt.OutcomeOK || o == prompt.OutcomeQualityFailed || o == prompt.OutcomeEmptyResponse:
		// The model is up, whatever it thought of the prompt.
		if cd.Failures > 0 && t.fails.Load() != 0 {
			t.fails.Store(0)
		}
		if cd.MaxFailureShare > 0 {
			t.win.add(c.now(), cd.Window, false)
		}
		if t.probation.Load() {
			t.probation.Store(false)
		}
	case disables(o) != "":
		d := &disable{outcome: o, reason: disables(o)}
		if o == prompt.OutcomeQuotaExhausted {
			d.until = c.now().Add(QuotaRecheck)
		}
		if old := t.disabled.Load(); (old == nil || old.expired(c.now())) && t.disabled.CompareAndSwap(old, d) {
			msg := "model disabled until restart: " + d.reason
			if !d.until.IsZero() {
				msg = "model disabled for " + QuotaRecheck.String() + ": " + d.reason
			}
			c.log.LogAttrs(c.context(), slog.LevelError, msg,
				slog.String("model", t.name), slog.String("outcome", string(o)), slog.Int("http_status", a.HTTPStatus), slog.String("error", a.Error))
		}
	case o.Retryable() && cd.on() && !(isCapacity(o) && !t.lim.Static()):
		// (Rate limits and overload of an adaptive model are the
		// limiter's business: it pauses and slows down instead.)
		var n, calls, fails int
		if cd.Failures > 0 {
			n = int(t.fails.Add(1))
		}
		if cd.MaxFailureShare > 0 {
			calls, fails = t.win.add(c.now(), cd.Window, true)
		}
		switch {
		case t.probation.Load():
			c.coolDown(t, o, "model cooling down again: it failed on its first call after a cooldown")
		case cd.Failures > 0 && n >= cd.Failures:
			c.coolDown(t, o, "model cooling down after repeated failures", slog.Int("consecutive_failures", n))
		case cd.MaxFailureShare > 0 && calls >= cd.MinCalls && float64(fails) > cd.MaxFailureShare*float64(calls):
			c.coolDown(t, o, "model cooling down after a high failure share",
				slog.Int("calls", calls), slog.Int("failures", fails), slog.Duration("window", cd.Window))
		}
	}
}

// coolDown starts a cooldown of t unless one is already running, and logs
// it once.
func (c *Cascade) coolDown(t *target, last prompt.Outcome, msg string, attrs ...slog.Attr) {
	until := c.now().Add(c.cooldown.Period).UnixNano()
	if until == 0 {
		until = 1
	}
	if !t.until.CompareAndSwap(0, until) {
		return
	}
	t.probation.Store(false)
	t.win.reset()
	attrs = append([]slog.Attr{slog.String("model", t.name)}, attrs...)
	attrs = append(attrs, slog.Duration("period", c.cooldown.Period), slog.String("last_outcome", string(last)))
	c.log.LogAttrs(c.context(), slog.LevelWarn, msg, attrs...)
}

// context is for log calls that outlive the prompt that triggered them.
func (c *Cascade) context() context.Context { return context.Background() }

func asLLMError(err error) (*llm.Error, bool) {
	if err == nil {
		return nil, false // without errors.As, whose target would be allocated for every answer
	}
	var le *llm.Error
	ok := errors.As(err, &le)
	return le, ok
}

// seedBase hashes (seed, batch, id, delivery); attemptSeed adds the attempt
// number. Together they give every call of every delivery its own
// reproducible llm.Request.Seed.
func seedBase(s uint64, batch, id string, delivery int) uint64 {
	return seed.Mix(seed.Of(s, batch, id) ^ uint64(delivery)*0x9e3779b97f4a7c15)
}

func attemptSeed(base uint64, attempt int) uint64 {
	return seed.Mix(base + uint64(attempt)*0xbf58476d1ce4e5b9)
}

// unitFloat maps a hash to [0,1).
func unitFloat(h uint64) float64 { return seed.Unit(h) }

// maxErrorLen bounds Attempt.Error.
const maxErrorLen = 200

// shortText makes an error message fit for a log row: secrets that look like
// API keys, bearer tokens or URL credentials masked (defence in depth:
// adapters remove the known ones first), and at most maxErrorLen bytes, cut
// at a character boundary.
func shortText(s string) string {
	s = redact.String(s)
	if len(s) <= maxErrorLen {
		return s
	}
	cut := maxErrorLen - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// QuotaRecheck is how long a model whose quota or spend limit ran out is
// skipped before one prompt tries it again.
const QuotaRecheck = 10 * time.Minute

// disable records why a model is skipped without a call.
type disable struct {
	outcome prompt.Outcome
	reason  string
	until   time.Time // zero: until restart
}

func (d *disable) expired(now time.Time) bool { return !d.until.IsZero() && !now.Before(d.until) }

// disables says why an outcome takes a model out of service for every
// prompt, or "" when it does not. None of these gets better by asking again
// with another prompt: a retired model, a rejected key, missing access, or an
// exhausted quota (rechecked after QuotaRecheck).
func disables(o prompt.Outcome) string {
	switch o {
	case prompt.OutcomeNotFound:
		return "the provider says it does not exist (retired?)"
	case prompt.OutcomeAuthError:
		return "the provider rejected the API key; fix the key and restart"
	case prompt.OutcomePermission:
		return "the API key has no access to this model; fix it and restart"
	case prompt.OutcomeQuotaExhausted:
		return "quota or spend limit exhausted"
	}
	return ""
}
