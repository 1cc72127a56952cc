package cascade

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

// These tests run on the real clock (the limiter's pauses are real waits),
// with retry-afters of tens of milliseconds.

func waitPolicy(maxWait time.Duration) func(*Settings) {
	return func(s *Settings) {
		s.RateLimit = RateLimit{OnRateLimit: WaitOnRateLimit, MaxWait: maxWait}
		s.Cooldown = Cooldown{Failures: 2, Period: time.Hour} // must not fire on rate limits
	}
}

// A rate-limited cheap model is waited for, however many 429s it takes
// (max_retries does not count them, cooldown does not see them); the
// pricier model is never called.
func TestWaitRetriesTheSameModelAfterThePause(t *testing.T) {
	t.Parallel()
	limited := fail(llm.ClassRateLimited, 429, 60*time.Millisecond)
	over := fail(llm.ClassOverloaded, 529, 40*time.Millisecond)
	b := setup(t, map[string][]step{"a": {limited, over, limited, ok(goodText)}, "b": {ok(goodText)}}, waitPolicy(time.Minute))
	start := time.Now()
	out := b.run(t, "hi")
	took := time.Since(start)
	checkAttempts(t, out.Result.Attempts,
		want{"fake/a", prompt.OutcomeRateLimited}, want{"fake/a", prompt.OutcomeOverloaded},
		want{"fake/a", prompt.OutcomeRateLimited}, want{"fake/a", prompt.OutcomeOK})
	if out.Result.Status != prompt.StatusSucceeded || out.Result.ModelUsed != "fake/a" {
		t.Fatalf("result %+v", out.Result)
	}
	if took < 160*time.Millisecond {
		t.Fatalf("answered after %v; the three pauses add up to 160ms", took)
	}
	if n := b.fake.count("b"); n != 0 {
		t.Fatalf("the fallback was called %d times", n)
	}
	if strings.Contains(b.logs.String(), "cooling down") {
		t.Fatalf("rate limits started a cooldown:\n%s", b.logs)
	}
	lims := b.c.Limits()
	if len(lims) != 3 || lims[0].Model != "fake/a" || lims[0].RateLimited != 2 || lims[0].Overloaded != 1 || lims[0].Answered != 1 || lims[0].InFlight != 0 {
		t.Fatalf("limits %+v", lims)
	}
}

// After max_wait the prompt cascades; the fallback answers.
func TestWaitGivesUpAfterMaxWait(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{"a": {fail(llm.ClassRateLimited, 429, 50*time.Millisecond)}, "b": {ok(goodText)}}, waitPolicy(200*time.Millisecond))
	start := time.Now()
	out := b.run(t, "hi")
	took := time.Since(start)
	as := out.Result.Attempts
	if out.Result.ModelUsed != "fake/b" || as[len(as)-1].Outcome != prompt.OutcomeOK {
		t.Fatalf("attempts %+v, want fake/b to answer after the wait", as)
	}
	if took < 200*time.Millisecond || took > 2*time.Second {
		t.Fatalf("moved on after %v, want just after max_wait 200ms", took)
	}
	calls := b.fake.count("a")
	if calls < 2 || calls > 5 {
		t.Fatalf("fake/a called %d times in 200ms with a 50ms retry-after", calls)
	}
	for _, a := range as[:len(as)-1] {
		if a.Model != "fake/a" || (a.Outcome != prompt.OutcomeRateLimited && a.Outcome != prompt.OutcomeCooldownSkip) {
			t.Fatalf("attempt %+v before the fallback", a)
		}
	}
}

// With nothing left to cascade to, the prompt goes back to the queue.
func TestWaitHandsBackWhenNoModelHasCapacity(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{"a": {fail(llm.ClassRateLimited, 429, 30*time.Millisecond)}}, func(s *Settings) {
		waitPolicy(100 * time.Millisecond)(s)
		s.Tiers[prompt.TierSimple] = []string{"fake/a"}
	})
	out := b.run(t, "hi")
	if !out.Transient || out.Result.Status != "" || out.RetryAfter <= 0 {
		t.Fatalf("outcome %+v, want transient with a retry-after", out)
	}
}

// cascade: a tier that cascades skips a model that another tier's 429
// paused, and falls back at once; a waiting tier waits for it.
func TestCascadeTierSkipsAPausedModel(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{"a": {fail(llm.ClassRateLimited, 429, time.Second), ok(goodText)}, "b": {ok(goodText)}}, func(s *Settings) {
		s.RateLimit = RateLimit{OnRateLimit: WaitOnRateLimit, Tiers: map[prompt.Tier]OnRateLimit{prompt.TierComplex: CascadeOnRateLimit}}
	})
	waited := make(chan Outcome, 1)
	go func() { waited <- b.run(t, "hi") }() // simple: waits
	for b.fake.count("a") == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	out := b.c.Run(context.Background(), job("hi"), prompt.TierComplex, prompt.Signals{}, 1)
	checkAttempts(t, out.Result.Attempts, want{"fake/a", prompt.OutcomeCooldownSkip}, want{"fake/b", prompt.OutcomeOK})
	if !strings.Contains(out.Result.Attempts[0].Error, "on_rate_limit: cascade") {
		t.Fatalf("skip reason %q", out.Result.Attempts[0].Error)
	}
	w := <-waited
	checkAttempts(t, w.Result.Attempts, want{"fake/a", prompt.OutcomeRateLimited}, want{"fake/a", prompt.OutcomeOK})
}

func TestRateLimitPolicyValidated(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rl   RateLimit
		want string
	}{
		{RateLimit{OnRateLimit: "later"}, `on_rate_limit: "later" is not wait or cascade`},
		{RateLimit{Tiers: map[prompt.Tier]OnRateLimit{prompt.TierSimple: "x"}}, `tiers.simple.on_rate_limit: "x"`},
		{RateLimit{MaxWait: -time.Second}, "max_wait"},
	} {
		_, err := New(Settings{Tiers: map[prompt.Tier][]string{prompt.TierSimple: {"fake/a"}, prompt.TierModerate: {"fake/a"}, prompt.TierComplex: {"fake/a"}},
			Models: map[string]ModelPolicy{"fake/a": {}}, RateLimit: tc.rl}, llm.NewRegistry(), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", tc.rl, err, tc.want)
		}
	}
}
