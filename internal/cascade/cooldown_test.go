package cascade

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/limit"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

// TestCooldownFailureShare: a model that never fails twice in a row but fails
// more than the allowed share of its calls is cooled down; the share must be
// above the limit, not equal to it; after the period one failure sends it
// back, one answer returns it to normal.
func TestCooldownFailureShare(t *testing.T) {
	t.Parallel()
	bad := fail(llm.ClassServerError, 503, 0)
	b := setup(t, map[string][]step{
		"a": {ok(goodText), bad, ok(goodText), bad, bad, bad, ok(goodText), bad, ok(goodText)},
		"b": {ok(goodText)},
	}, func(s *Settings) {
		s.Cooldown = Cooldown{Failures: 3, Period: 30 * time.Second, Window: time.Minute, MaxFailureShare: 0.5, MinCalls: 4}
	})
	okA := []want{{"fake/a", prompt.OutcomeOK}}
	failA := []want{{"fake/a", prompt.OutcomeServerError}, {"fake/b", prompt.OutcomeOK}}
	skipA := []want{{"fake/a", prompt.OutcomeCooldownSkip}, {"fake/b", prompt.OutcomeOK}}

	checkAttempts(t, b.run(t, "hi").Result.Attempts, okA...)   // 1 call, 0 failed
	checkAttempts(t, b.run(t, "hi").Result.Attempts, failA...) // 2, 1
	checkAttempts(t, b.run(t, "hi").Result.Attempts, okA...)   // 3, 1
	checkAttempts(t, b.run(t, "hi").Result.Attempts, failA...) // 4, 2: share 0.5 is not above 0.5
	if strings.Contains(b.logs.String(), "cooling down") {
		t.Fatalf("cooled down at a share equal to the limit:\n%s", b.logs)
	}
	checkAttempts(t, b.run(t, "hi").Result.Attempts, failA...) // 5, 3: 0.6 > 0.5, two in a row only
	if n := strings.Count(b.logs.String(), "model cooling down after a high failure share"); n != 1 {
		t.Fatalf("%d failure-share cooldown log lines, want 1:\n%s", n, b.logs)
	}
	out := b.run(t, "hi")
	checkAttempts(t, out.Result.Attempts, skipA...)
	if n := b.fake.count("a"); n != 5 {
		t.Fatalf("a called %d times, want 5 (the skip must not call it)", n)
	}

	// After the period: the first call is a probe; its failure sends the
	// model straight back although the window was cleared.
	b.clock.Advance(31 * time.Second)
	checkAttempts(t, b.run(t, "hi").Result.Attempts, failA...)
	checkAttempts(t, b.run(t, "hi").Result.Attempts, skipA...)
	if n := strings.Count(b.logs.String(), "failed on its first call after a cooldown"); n != 1 {
		t.Fatalf("%d probation log lines, want 1:\n%s", n, b.logs)
	}

	// After the next period the probe answers: back to normal, and one
	// failure (2 calls in the fresh window, under min_calls) does not cool.
	b.clock.Advance(31 * time.Second)
	checkAttempts(t, b.run(t, "hi").Result.Attempts, okA...)
	checkAttempts(t, b.run(t, "hi").Result.Attempts, failA...)
	checkAttempts(t, b.run(t, "hi").Result.Attempts, okA...)
	if n := b.fake.count("a"); n != 9 {
		t.Fatalf("a called %d times, want 9", n)
	}
}

// TestCooldownFailureShareWindowSlides: failures older than the window no
// longer count.
func TestCooldownFailureShareWindowSlides(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{"a": {fail(llm.ClassRateLimited, 429, 0)}, "b": {ok(goodText)}}, func(s *Settings) {
		s.Cooldown = Cooldown{Period: time.Minute, Window: 10 * time.Second, MaxFailureShare: 0.5, MinCalls: 2}
	})
	failA := []want{{"fake/a", prompt.OutcomeRateLimited}, {"fake/b", prompt.OutcomeOK}}
	skipA := []want{{"fake/a", prompt.OutcomeCooldownSkip}, {"fake/b", prompt.OutcomeOK}}

	checkAttempts(t, b.run(t, "hi").Result.Attempts, failA...) // 1 call: under min_calls
	b.clock.Advance(11 * time.Second)                          // the first failure leaves the window
	checkAttempts(t, b.run(t, "hi").Result.Attempts, failA...) // 1 call in the window again
	checkAttempts(t, b.run(t, "hi").Result.Attempts, failA...) // 2 calls, 2 failed: cool down
	checkAttempts(t, b.run(t, "hi").Result.Attempts, skipA...)
	if n := b.fake.count("a"); n != 3 {
		t.Fatalf("a called %d times, want 3", n)
	}
}

// TestCooldownFailureShareIgnoresPermanentErrors: failures that say nothing
// about the model's health (bad request, auth, quota, ...) do not count.
func TestCooldownFailureShareIgnoresPermanentErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{"a": {fail(llm.ClassBadRequest, 400, 0)}, "b": {ok(goodText)}}, func(s *Settings) {
		s.Cooldown = Cooldown{Failures: 2, Period: time.Minute, Window: time.Minute, MaxFailureShare: 0.1, MinCalls: 1}
	})
	for range 5 {
		checkAttempts(t, b.run(t, "hi").Result.Attempts, want{"fake/a", prompt.OutcomeBadRequest}, want{"fake/b", prompt.OutcomeOK})
	}
	if n := b.fake.count("a"); n != 5 {
		t.Fatalf("a called %d times, want 5", n)
	}
}

// TestCooldownFailureShareConcurrent: many prompts at once against a model
// that always fails start exactly one cooldown, and every prompt that starts
// after it skips the model.
//
// At most inFlight prompts run at a time. Calls already past the cooldown
// check when the cooldown starts still go out (nothing can recall them), so
// with all 50 at once a loaded scheduler may let every prompt pass the check
// before the fifth failure is observed. With inFlight at a time, a prompt
// starts only after another one finished, so when the fifth failure starts
// the cooldown at most MinCalls-1 prompts have finished and inFlight are
// running: a is called at most MinCalls-1+inFlight times, whatever the
// scheduling.
func TestCooldownFailureShareConcurrent(t *testing.T) {
	t.Parallel()
	const minCalls, inFlight, prompts = 5, 10, 50
	b := setup(t, map[string][]step{"a": {fail(llm.ClassOverloaded, 529, 0)}, "b": {ok(goodText)}}, func(s *Settings) {
		s.Cooldown = Cooldown{Period: time.Hour, Window: time.Minute, MaxFailureShare: 0.5, MinCalls: minCalls}
	})
	var wg sync.WaitGroup
	slots := make(chan struct{}, inFlight)
	for range prompts {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			if out := b.run(t, "hi"); out.Result.Status != prompt.StatusSucceeded {
				t.Errorf("status %q", out.Result.Status)
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.logs.String(), "model cooling down"); n != 1 {
		t.Errorf("%d cooldown log lines, want 1", n)
	}
	called := b.fake.count("a")
	if called < minCalls || called > minCalls-1+inFlight {
		t.Errorf("a called %d times, want at least min_calls (%d) and at most %d (min_calls-1 finished + %d in flight) of the %d prompts",
			called, minCalls, minCalls-1+inFlight, inFlight, prompts)
	}
	checkAttempts(t, b.run(t, "hi").Result.Attempts, want{"fake/a", prompt.OutcomeCooldownSkip}, want{"fake/b", prompt.OutcomeOK})
	if n := b.fake.count("a"); n != called {
		t.Errorf("a called during cooldown")
	}
}

func TestCooldownShareValidates(t *testing.T) {
	t.Parallel()
	reg := llm.NewRegistry()
	reg.Register("fake", &fakeProvider{})
	tiers := map[prompt.Tier][]string{prompt.TierSimple: {"fake/a"}, prompt.TierModerate: {"fake/a"}, prompt.TierComplex: {"fake/a"}}
	pol := map[string]ModelPolicy{"fake/a": {}}
	tests := []struct {
		cd   Cooldown
		want string
	}{
		{Cooldown{Period: time.Minute, Window: time.Minute, MaxFailureShare: 1}, "cooldown.max_failure_share"},
		{Cooldown{Period: time.Minute, Window: time.Minute, MaxFailureShare: -0.2}, "cooldown.max_failure_share"},
		{Cooldown{Period: time.Minute, Window: time.Minute, MaxFailureShare: math.NaN()}, "cooldown.max_failure_share"},
		{Cooldown{Period: time.Minute, MaxFailureShare: 0.5}, "cooldown.window"},
		{Cooldown{Window: time.Minute, MaxFailureShare: 0.5}, "cooldown.period"},
		{Cooldown{Period: time.Minute, Window: time.Minute, MaxFailureShare: 0.5, MinCalls: -1}, "cooldown.min_calls"},
	}
	for _, tt := range tests {
		_, err := New(Settings{Tiers: tiers, Models: pol, Cooldown: tt.cd}, reg, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err = %v, want it to name %q", tt.cd, err, tt.want)
		}
	}
	c, err := New(Settings{Tiers: tiers, Models: pol, Cooldown: Cooldown{Period: time.Minute, Window: time.Minute, MaxFailureShare: 0.5}}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.cooldown.MinCalls != DefaultCooldownMinCalls {
		t.Errorf("min_calls = %d, want the default %d", c.cooldown.MinCalls, DefaultCooldownMinCalls)
	}
}

// A prompt that waited in the limiter for its model's capacity (on_rate_limit:
// wait) rechecks the cooldown once it may call: the model went into cooldown
// while it waited, so it skips it (cooldown_skip) and moves on, as a prompt
// arriving after the cooldown began would.
func TestCooldownRecheckedAfterTheLimiterWait(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	b := setup(t, map[string][]step{"a": {{block: true, enter: entered}, ok(goodText)}, "b": {ok(goodText)}}, func(s *Settings) {
		s.RateLimit = RateLimit{OnRateLimit: WaitOnRateLimit, MaxWait: time.Hour}
		s.Cooldown = Cooldown{Failures: 3, Period: time.Hour}
		s.Models["fake/a"] = ModelPolicy{Model: "fake/a", Timeout: time.Hour, Price: price, Caps: limit.Caps{MaxConcurrency: 1}}
	})
	a := b.c.targets[0]
	if a.name != "fake/a" {
		t.Fatalf("first target %q", a.name)
	}

	// The first prompt holds fake/a's only slot; the second waits for it.
	holdCtx, release := context.WithCancel(context.Background())
	defer release()
	first := make(chan Outcome, 1)
	go func() { first <- b.c.Run(holdCtx, job("hold"), prompt.TierSimple, prompt.Signals{}, 1) }()
	<-entered
	second := make(chan Outcome, 1)
	go func() { second <- b.c.Run(context.Background(), job("hi"), prompt.TierSimple, prompt.Signals{}, 1) }()
	for deadline := time.Now().Add(30 * time.Second); a.lim.Snapshot().Waiting != 1; {
		if time.Now().After(deadline) {
			t.Fatal("the second prompt never waited for fake/a's capacity")
		}
		time.Sleep(time.Millisecond)
	}

	// fake/a goes into cooldown while the second prompt waits, then its
	// slot is freed.
	b.c.coolDown(a, prompt.OutcomeServerError, "model cooling down after repeated failures")
	release()
	<-first
	out := <-second
	checkAttempts(t, out.Result.Attempts, want{"fake/a", prompt.OutcomeCooldownSkip}, want{"fake/b", prompt.OutcomeOK})
	if n := b.fake.count("a"); n != 1 {
		t.Fatalf("fake/a called %d times, want once (the first prompt's call): it was cooling down", n)
	}
	if s := a.lim.Snapshot(); s.InFlight != 0 || s.Waiting != 0 {
		t.Fatalf("fake/a's limiter after the skip: %+v, want its slot given back", s)
	}
}
