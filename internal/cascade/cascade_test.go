package cascade

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/promptcascade/promptcascade/internal/backoff"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/quality"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// step is one scripted answer of the fake provider.
type step struct {
	resp  llm.Response
	err   error
	block bool // wait for ctx, then fail with ClassTimeout (or, with plain, ctx.Err())
	plain bool // return a plain error instead of *llm.Error
	enter chan struct{}
}

// fakeProvider answers each bare model id from its script; the last step
// repeats. It records every request.
type fakeProvider struct {
	mu    sync.Mutex
	steps map[string][]step
	calls map[string]int
	reqs  []llm.Request
}

func (f *fakeProvider) Complete(ctx context.Context, req llm.Request) (llm.Response, error) {
	f.mu.Lock()
	script := f.steps[req.Model]
	i := f.calls[req.Model]
	f.calls[req.Model]++
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	if len(script) == 0 {
		return llm.Response{}, &llm.Error{Class: llm.ClassNotFound, Provider: "fake", Model: req.Model, HTTPStatus: 404}
	}
	s := script[min(i, len(script)-1)]
	if s.enter != nil {
		close(s.enter)
	}
	if s.block {
		<-ctx.Done()
		if s.plain {
			return llm.Response{}, ctx.Err()
		}
		return llm.Response{}, &llm.Error{Class: llm.ClassTimeout, Provider: "fake", Model: req.Model, Err: ctx.Err()}
	}
	return s.resp, s.err
}

func (f *fakeProvider) count(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

// fakeClock is Settings.Now and Settings.Sleep: sleeping advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

const goodText = "Paris is the capital of France, and it has been the political and cultural centre of the country for centuries."

// longPrompt has 24 words: the article's length rule applies to it.
const longPrompt = "Please explain in plain words how a cascade of language models picks the cheapest model that still answers this kind of question well enough"

var price = pricing.Price{InputPerMTok: 1, OutputPerMTok: 2}

func ok(text string) step {
	return step{resp: llm.Response{Text: text, FinishReason: "stop", InputTokens: 100, OutputTokens: 50, HTTPStatus: 200}}
}

func fail(class llm.Class, status int, retryAfter time.Duration) step {
	return step{err: &llm.Error{Class: class, Provider: "fake", HTTPStatus: status, RetryAfter: retryAfter, Message: string(class) + " (test)"}}
}

type bundle struct {
	c     *Cascade
	fake  *fakeProvider
	clock *fakeClock
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// setup builds a cascade whose every tier is fake/a, fake/b, fake/c, with the
// given scripts (keyed by bare id), 1s timeouts, no retries and price
// $1/$2 per MTok; mod adjusts the settings.
func setup(t *testing.T, steps map[string][]step, mod func(*Settings)) bundle {
	t.Helper()
	f := &fakeProvider{steps: steps, calls: map[string]int{}}
	reg := llm.NewRegistry()
	reg.Register("fake", f)
	clock := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	models := []string{"fake/a", "fake/b", "fake/c"}
	s := Settings{
		Tiers:   map[prompt.Tier][]string{prompt.TierSimple: models, prompt.TierModerate: models, prompt.TierComplex: models},
		Models:  map[string]ModelPolicy{},
		Backoff: Backoff{Base: 100 * time.Millisecond, Max: 5 * time.Second},
		// The article's behaviour; waiting for capacity is tested in
		// ratelimit_test.go.
		RateLimit: RateLimit{OnRateLimit: CascadeOnRateLimit},
		Seed:      7,
		Now:       clock.Now,
		Sleep:     clock.Sleep,
	}
	for _, m := range models {
		s.Models[m] = ModelPolicy{Model: m, Timeout: time.Second, Price: price}
	}
	if mod != nil {
		mod(&s)
	}
	logs := &syncBuffer{}
	c, err := New(s, reg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return bundle{c: c, fake: f, clock: clock, logs: logs}
}

func job(p string) prompt.Job { return prompt.Job{BatchID: "b1", ID: "p1", Prompt: p} }

func (b bundle) run(t *testing.T, p string) Outcome {
	t.Helper()
	return b.c.Run(context.Background(), job(p), prompt.TierSimple, prompt.Signals{}, 1)
}

type want struct {
	model   string
	outcome prompt.Outcome
}

func checkAttempts(t *testing.T, got []prompt.Attempt, ws ...want) {
	t.Helper()
	if len(got) != len(ws) {
		t.Fatalf("%d attempts, want %d: %+v", len(got), len(ws), got)
	}
	for i, w := range ws {
		a := got[i]
		if a.Attempt != i+1 || a.Model != w.model || a.Outcome != w.outcome {
			t.Errorf("attempt %d = #%d %s %s (%s), want %s %s", i, a.Attempt, a.Model, a.Outcome, a.Error, w.model, w.outcome)
		}
	}
}

func TestSuccessFirstModel(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{"a": {ok(goodText)}}, nil)
	sig := prompt.Signals{WordCount: 6, TokenCount: 7}
	out := b.c.Run(context.Background(), job("What is the capital of France?"), prompt.TierModerate, sig, 3)
	res := out.Result
	checkAttempts(t, res.Attempts, want{"fake/a", prompt.OutcomeOK})
	if out.Transient || res.Status != prompt.StatusSucceeded || res.ModelUsed != "fake/a" || res.Response != goodText ||
		res.FinishReason != "stop" || res.InputTokens != 100 || res.OutputTokens != 50 || res.Error != "" {
		t.Fatalf("outcome %+v", out)
	}
	if res.Tier != prompt.TierModerate || res.Signals != sig || res.Delivery != 3 || res.Job.ID != "p1" {
		t.Errorf("result does not carry its inputs: %+v", res)
	}
	wantCost := price.Cost(pricing.Usage{InputTokens: 100, OutputTokens: 50})
	if a := res.Attempts[0]; a.CostUSD != wantCost || res.CostUSD != wantCost || a.HTTPStatus != 200 || !a.StartedAt.Equal(b.clock.Now()) {
		t.Errorf("attempt %+v, result cost %v, want cost %v", a, res.CostUSD, wantCost)
	}
	if res.Latency <= 0 || res.CompletedAt.IsZero() {
		t.Errorf("latency %v, completed %v", res.Latency, res.CompletedAt)
	}
}

func TestCascadeOnServerError(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{"a": {fail(llm.ClassServerError, 503, 0)}, "b": {ok(goodText)}}, nil)
	out := b.run(t, "hi")
	checkAttempts(t, out.Result.Attempts, want{"fake/a", prompt.OutcomeServerError}, want{"fake/b", prompt.OutcomeOK})
	a := out.Result.Attempts[0]
	if a.HTTPStatus != 503 || a.CostUSD != 0 || a.Error == "" {
		t.Errorf("failed attempt %+v", a)
	}
	if out.Result.Status != prompt.StatusSucceeded || out.Result.ModelUsed != "fake/b" {
		t.Errorf("outcome %+v", out)
	}
}

func TestRetriesHonoured(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{"a": {fail(llm.ClassServerError, 500, 0)}, "b": {ok(goodText)}}, func(s *Settings) {
		s.Models["fake/a"] = ModelPolicy{Model: "fake/a", Timeout: time.Second, MaxRetries: 2, Price: price}
	})
	out := b.run(t, "hi")
	checkAttempts(t, out.Result.Attempts,
		want{"fake/a", prompt.OutcomeServerError}, want{"fake/a", prompt.OutcomeServerError}, want{"fake/a", prompt.OutcomeServerError},
		want{"fake/b", prompt.OutcomeOK})
	if b.fake.count("a") != 3 {
		t.Errorf("a called %d times, want 3", b.fake.count("a"))
	}
	// Full jitter: retry n waits in [0, base*2^n).
	if len(b.clock.sleeps) != 2 {
		t.Fatalf("sleeps %v", b.clock.sleeps)
	}
	for i, d := range b.clock.sleeps {
		if ceil := 100 * time.Millisecond << i; d < 0 || d >= ceil {
			t.Errorf("sleep %d = %v, want [0, %v)", i, d, ceil)
		}
	}
	// Non-retryable classes are not retried.
	b2 := setup(t, map[string][]step{"a": {fail(llm.ClassBadRequest, 400, 0)}, "b": {ok(goodText)}}, func(s *Settings) {
		s.Models["fake/a"] = ModelPolicy{Model: "fake/a", MaxRetries: 5, Price: price}
	})
	out = b2.run(t, "hi")
	checkAttempts(t, out.Result.Attempts, want{"fake/a", prompt.OutcomeBadRequest}, want{"fake/b", prompt.OutcomeOK})
}

func TestRateLimitRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{"a": {fail(llm.ClassRateLimited, 429, 2*time.Second), ok(goodText)}}, func(s *Settings) {
		s.Models["fake/a"] = ModelPolicy{Model: "fake/a", Timeout: time.Second, MaxRetries: 1, Price: price}
	})
	out := b.run(t, "hi")
	checkAttempts(t, out.Result.Attempts, want{"fake/a", prompt.OutcomeRateLimited}, want{"fake/a", prompt.OutcomeOK})
	as := out.Result.Attempts
	if gap := as[1].StartedAt.Sub(as[0].StartedAt); gap != 2*time.Second {
		t.Errorf("retry started %v after the rate limit, want the 2s retry-after", gap)
	}
	if as[0].HTTPStatus != 429 || out.RetryAfter != 2*time.Second {
		t.Errorf("attempt %+v, RetryAfter %v", as[0], out.RetryAfter)
	}
}

func TestRateLimitRetryAfterTooLong(t *testing.T) {
	t.Parallel()
	// A retry-after above Backoff.Max: move on rather than wait.
	b := setup(t, map[string][]step{"a": {fail(llm.ClassRateLimited, 429, time.Minute)}, "b": {ok(goodText)}}, func(s *Settings) {
		s.Models["fake/a"] = ModelPolicy{Model: "fake/a", MaxRetries: 3, Price: price}
	})
	out := b.run(t, "hi")
	checkAttempts(t, out.Result.Attempts, want{"fake/a", prompt.OutcomeRateLimited}, want{"fake/b", prompt.OutcomeOK})
	if len(b.clock.sleeps) != 0 || out.RetryAfter != time.Minute {
		t.Errorf("sleeps %v, RetryAfter %v", b.clock.sleeps, out.RetryAfter)
	}

	// A retry-after that would run past the ctx deadline: move on too.
	b = setup(t, map[string][]step{"a": {fail(llm.ClassRateLimited, 429, 2*time.Second)}, "b": {ok(goodText)}}, func(s *Settings) {
		s.Models["fake/a"] = ModelPolicy{Model: "fake/a", MaxRetries: 3, Price: price}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	out = b.c.Run(ctx, job("hi"), prompt.TierSimple, prompt.Signals{}, 1)
	checkAttempts(t, out.Result.Attempts, want{"fake/a", prompt.OutcomeRateLimited}, want{"fake/b", prompt.OutcomeOK})
	if len(b.clock.sleeps) != 0 {
		t.Errorf("slept %v past the deadline", b.clock.sleeps)
	}
}

func TestCascadeOnTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{
		"a": {{block: true}},              // *llm.Error ClassTimeout
		"b": {{block: true, plain: true}}, // a plain ctx error: still a timeout
		"c": {ok(goodText)},
	}, func(s *Settings) {
		for _, m := range []string{"fake/a", "fake/b"} {
			s.Models[m] = ModelPolicy{Model: m, Timeout: 20 * time.Millisecond, Price: price}
		}
	})
	out := b.run(t, "hi")
	checkAttempts(t, out.Result.Attempts,
		want{"fake/a", prompt.OutcomeTimeout}, want{"fake/b", prompt.OutcomeTimeout}, want{"fake/c", prompt.OutcomeOK})
	if a := out.Result.Attempts[0]; a.Latency < 20*time.Millisecond {
		t.Errorf("timed-out attempt latency %v", a.Latency)
	}
}

func TestQualityFailureCascades(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prompt  string
		text    string
		outcome prompt.Outcome
	}{
		{"too short for a long prompt", longPrompt, "It depends on many things.", prompt.OutcomeQualityFailed},
		{"whitespace only", "hi", " \n\t ", prompt.OutcomeEmptyResponse},
		{"empty", "hi", "", prompt.OutcomeEmptyResponse},
		{"refusal, any case", "hi", "Sorry, but AS AN AI model I must decline to speculate about that.", prompt.OutcomeQualityFailed},
		{"refusal i can't", "hi", "I can't do that.", prompt.OutcomeQualityFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bad := ok(tt.text)
			b := setup(t, map[string][]step{"a": {bad}, "b": {ok(goodText)}}, nil)
			out := b.run(t, tt.prompt)
			checkAttempts(t, out.Result.Attempts, want{"fake/a", tt.outcome}, want{"fake/b", prompt.OutcomeOK})
			// The failed answer was paid for.
			each := price.Cost(pricing.Usage{InputTokens: 100, OutputTokens: 50})
			if a := out.Result.Attempts[0]; a.CostUSD != each || a.InputTokens != 100 || a.Error == "" {
				t.Errorf("quality-failed attempt %+v", a)
			}
			if math.Abs(out.Result.CostUSD-2*each) > 1e-15 || out.Result.ModelUsed != "fake/b" {
				t.Errorf("cost %v, want %v; model %s", out.Result.CostUSD, 2*each, out.Result.ModelUsed)
			}
		})
	}
}

func TestCooldownSkipAndExpiry(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{"a": {fail(llm.ClassServerError, 500, 0)}, "b": {ok(goodText)}}, func(s *Settings) {
		s.Cooldown = Cooldown{Failures: 2, Period: time.Minute}
	})
	serverThenOK := []want{{"fake/a", prompt.OutcomeServerError}, {"fake/b", prompt.OutcomeOK}}
	skipThenOK := []want{{"fake/a", prompt.OutcomeCooldownSkip}, {"fake/b", prompt.OutcomeOK}}

	checkAttempts(t, b.run(t, "hi").Result.Attempts, serverThenOK...) // 1 failure
	checkAttempts(t, b.run(t, "hi").Result.Attempts, serverThenOK...) // 2: cooldown starts
	out := b.run(t, "hi")
	checkAttempts(t, out.Result.Attempts, skipThenOK...)
	if a := out.Result.Attempts[0]; a.CostUSD != 0 || a.HTTPStatus != 0 || a.Latency != 0 || a.Error == "" {
		t.Errorf("skip attempt %+v", a)
	}
	if n := b.fake.count("a"); n != 2 {
		t.Errorf("a called %d times during cooldown", n)
	}
	if n := strings.Count(b.logs.String(), "model cooling down"); n != 1 {
		t.Errorf("%d cooldown log lines, want 1:\n%s", n, b.logs)
	}

	b.clock.Advance(59 * time.Second)
	checkAttempts(t, b.run(t, "hi").Result.Attempts, skipThenOK...)
	b.clock.Advance(2 * time.Second) // period over: tried again
	checkAttempts(t, b.run(t, "hi").Result.Attempts, serverThenOK...)
	// One more failure after a cooldown starts the next one at once.
	checkAttempts(t, b.run(t, "hi").Result.Attempts, skipThenOK...)
	if n := b.fake.count("a"); n != 3 {
		t.Errorf("a called %d times, want 3", n)
	}
}

func TestCooldownResetBySuccess(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{
		"a": {fail(llm.ClassServerError, 500, 0), ok(goodText), fail(llm.ClassServerError, 500, 0), ok(goodText)},
		"b": {ok(goodText)},
	}, func(s *Settings) { s.Cooldown = Cooldown{Failures: 2, Period: time.Minute} })
	for range 4 {
		b.run(t, "hi")
	}
	// failure, success, failure, success: never two in a row, never skipped.
	if n := b.fake.count("a"); n != 4 {
		t.Errorf("a called %d times, want 4", n)
	}
}

func TestNotFoundDisablesModel(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{"a": {fail(llm.ClassNotFound, 404, 0)}, "b": {ok(goodText)}}, nil)
	first := b.run(t, "hi")
	checkAttempts(t, first.Result.Attempts, want{"fake/a", prompt.OutcomeNotFound}, want{"fake/b", prompt.OutcomeOK})
	if first.Result.Attempts[0].HTTPStatus != 404 {
		t.Errorf("attempt %+v", first.Result.Attempts[0])
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := b.run(t, "hi")
			checkAttempts(t, out.Result.Attempts, want{"fake/a", prompt.OutcomeNotFound}, want{"fake/b", prompt.OutcomeOK})
			if a := out.Result.Attempts[0]; a.HTTPStatus != 0 || a.CostUSD != 0 {
				t.Errorf("disabled model was called: %+v", a)
			}
		}()
	}
	wg.Wait()
	if n := b.fake.count("a"); n != 1 {
		t.Errorf("retired model called %d times", n)
	}
	if n := strings.Count(b.logs.String(), "model disabled until restart"); n != 1 {
		t.Errorf("%d disable log lines, want 1:\n%s", n, b.logs)
	}
}

func TestContextWindowSkip(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{"a": {ok(goodText)}, "b": {ok(goodText)}}, func(s *Settings) {
		s.Models["fake/a"] = ModelPolicy{Model: "fake/a", Price: pricing.Price{InputPerMTok: 1, ContextWindow: 100}}
	})
	j := job("hi")
	j.MaxTokens = 20
	out := b.c.Run(context.Background(), j, prompt.TierSimple, prompt.Signals{TokenCount: 81}, 1) // 81 + 20 > 100
	checkAttempts(t, out.Result.Attempts, want{"fake/a", prompt.OutcomeContextWindow}, want{"fake/b", prompt.OutcomeOK})
	if b.fake.count("a") != 0 || out.Result.Attempts[0].CostUSD != 0 {
		t.Errorf("model too small was called")
	}
	out = b.c.Run(context.Background(), j, prompt.TierSimple, prompt.Signals{TokenCount: 80}, 1) // fits exactly
	checkAttempts(t, out.Result.Attempts, want{"fake/a", prompt.OutcomeOK})

	// Without a token count in the signals, the cascade counts the prompt itself.
	j.Prompt = strings.Repeat("hello world ", 60) // 120 tokens
	out = b.c.Run(context.Background(), j, prompt.TierSimple, prompt.Signals{}, 1)
	checkAttempts(t, out.Result.Attempts, want{"fake/a", prompt.OutcomeContextWindow}, want{"fake/b", prompt.OutcomeOK})
}

func TestFinalDecision(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		steps     map[string][]step
		transient bool
		err       string
	}{
		{"permanent: every model refused",
			map[string][]step{"a": {fail(llm.ClassBadRequest, 400, 0)}, "b": {ok("I cannot help with that as an AI.")}, "c": {fail(llm.ClassAuth, 401, 0)}},
			false, "fake/a: bad_request; fake/b: quality_failed; fake/c: auth_error"},
		{"transient: one model only rate limited",
			map[string][]step{"a": {fail(llm.ClassBadRequest, 400, 0)}, "b": {fail(llm.ClassRateLimited, 429, 3*time.Second)}, "c": {fail(llm.ClassContentFilter, 400, 0)}},
			true, "fake/a: bad_request; fake/b: rate_limited; fake/c: content_filter"},
		{"transient: all servers down",
			map[string][]step{"a": {fail(llm.ClassServerError, 500, 0)}, "b": {fail(llm.ClassOverloaded, 529, 0)}, "c": {fail(llm.ClassNetwork, 0, 0)}},
			true, "fake/a: server_error; fake/b: overloaded; fake/c: network"},
		{"permanent: retired, quota, empty",
			map[string][]step{"a": {fail(llm.ClassNotFound, 404, 0)}, "b": {fail(llm.ClassQuotaExhausted, 429, 0)}, "c": {ok("  ")}},
			false, "fake/a: not_found; fake/b: quota_exhausted; fake/c: empty_response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.steps, nil)
			out := b.run(t, "hi")
			res := out.Result
			if out.Transient != tt.transient || res.Error != tt.err || res.ModelUsed != "fake/c" || res.Response != "" {
				t.Fatalf("Transient %v, Error %q, ModelUsed %q", out.Transient, res.Error, res.ModelUsed)
			}
			wantStatus := prompt.StatusFailed
			if tt.transient {
				wantStatus = ""
			}
			if res.Status != wantStatus {
				t.Errorf("Status %q, want %q", res.Status, wantStatus)
			}
		})
	}
	// The server's hint is passed on for the Nak delay.
	b := setup(t, tests[1].steps, nil)
	if out := b.run(t, "hi"); out.RetryAfter != 3*time.Second {
		t.Errorf("RetryAfter %v", out.RetryAfter)
	}
}

func TestCooldownSkipIsTransient(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{"a": {fail(llm.ClassServerError, 500, 0)}, "b": {fail(llm.ClassBadRequest, 400, 0)}, "c": {fail(llm.ClassBadRequest, 400, 0)}},
		func(s *Settings) { s.Cooldown = Cooldown{Failures: 1, Period: time.Minute} })
	b.run(t, "hi")
	b.clock.Advance(10 * time.Second)
	out := b.run(t, "hi")
	if !out.Transient || out.Result.Error != "fake/a: cooldown_skip; fake/b: bad_request; fake/c: bad_request" || out.RetryAfter != 50*time.Second {
		t.Fatalf("Transient %v, Error %q, RetryAfter %v", out.Transient, out.Result.Error, out.RetryAfter)
	}
}

func TestContextCancelStopsAtOnce(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	b := setup(t, map[string][]step{"a": {{block: true, enter: entered}}, "b": {ok(goodText)}}, func(s *Settings) {
		s.Models["fake/a"] = ModelPolicy{Model: "fake/a", Timeout: time.Hour, MaxRetries: 3, Price: price}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Outcome, 1)
	go func() { done <- b.c.Run(ctx, job("hi"), prompt.TierSimple, prompt.Signals{}, 1) }()
	<-entered
	cancel()
	var out Outcome
	select {
	case out = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run ignored the cancelled context")
	}
	checkAttempts(t, out.Result.Attempts, want{"fake/a", prompt.OutcomeCanceled})
	if !out.Transient || out.Result.Status != "" || b.fake.count("b") != 0 || b.fake.count("a") != 1 {
		t.Errorf("outcome %+v; b called %d times", out, b.fake.count("b"))
	}

	// Already cancelled: no call at all.
	out = b.c.Run(ctx, job("hi"), prompt.TierSimple, prompt.Signals{}, 1)
	if !out.Transient || len(out.Result.Attempts) != 0 || out.Result.Error != "canceled" {
		t.Errorf("outcome %+v", out)
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	t.Parallel()
	// Canceled from another goroutine once the hour's backoff has begun,
	// whatever the machine's load (a fixed delay could fire during the
	// first call, which then ends as canceled itself).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := setup(t, map[string][]step{"a": {fail(llm.ClassServerError, 500, 0)}, "b": {ok(goodText)}}, func(s *Settings) {
		s.Models["fake/a"] = ModelPolicy{Model: "fake/a", MaxRetries: 3, Price: price}
		s.Backoff = Backoff{Base: time.Hour, Max: time.Hour}
		s.Sleep = func(ctx context.Context, d time.Duration) error {
			go cancel()
			return backoff.Sleep(ctx, d) // the real timer
		}
	})
	out := b.c.Run(ctx, job("hi"), prompt.TierSimple, prompt.Signals{}, 1)
	if !out.Transient || b.fake.count("b") != 0 || out.Result.Error != "fake/a: server_error; canceled" {
		t.Errorf("outcome %+v", out)
	}
}

func TestSeeds(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{"a": {fail(llm.ClassServerError, 500, 0)}, "b": {ok(goodText)}}, nil)
	seeds := func(batch, id string, delivery int) []uint64 {
		b.fake.mu.Lock()
		b.fake.reqs = nil
		b.fake.mu.Unlock()
		b.c.Run(context.Background(), prompt.Job{BatchID: batch, ID: id, Prompt: "hi"}, prompt.TierSimple, prompt.Signals{}, delivery)
		b.fake.mu.Lock()
		defer b.fake.mu.Unlock()
		var out []uint64
		for _, r := range b.fake.reqs {
			out = append(out, r.Seed)
		}
		return out
	}
	x, y := seeds("b1", "p1", 1), seeds("b1", "p1", 1)
	if len(x) != 2 || x[0] != y[0] || x[1] != y[1] || x[0] == x[1] {
		t.Fatalf("seeds %v %v", x, y)
	}
	seen := map[uint64]bool{x[0]: true, x[1]: true}
	for _, s := range [][]uint64{seeds("b1", "p1", 2), seeds("b1", "p2", 1), seeds("b2", "p1", 1), seeds("b1p", "1", 1)} {
		for _, v := range s {
			if seen[v] {
				t.Errorf("seed %x repeats across deliveries/ids/batches", v)
			}
			seen[v] = true
		}
	}
}

func TestErrorsAreShortAndRedacted(t *testing.T) {
	t.Parallel()
	secret := "sk-proj-ABCDEF1234567890abcdef"
	long := strings.Repeat("é", 300)
	b := setup(t, map[string][]step{
		"a": {{err: &llm.Error{Class: llm.ClassAuth, HTTPStatus: 401, Message: "Incorrect API key provided: " + secret, RequestID: "req_1"}}},
		"b": {{err: &llm.Error{Class: llm.ClassBadRequest, HTTPStatus: 400, Message: long}}},
		"c": {{err: errors.New("dial tcp: connection refused (Bearer abcdefghijklmnop)")}},
	}, nil)
	out := b.run(t, "hi")
	as := out.Result.Attempts
	if strings.Contains(as[0].Error, "ABCDEF") || !strings.Contains(as[0].Error, "sk-[REDACTED]") || !strings.Contains(as[0].Error, "req_1") {
		t.Errorf("error %q", as[0].Error)
	}
	if len(as[1].Error) > maxErrorLen || !strings.HasSuffix(as[1].Error, "…") {
		t.Errorf("error of %d bytes: %q", len(as[1].Error), as[1].Error)
	}
	if as[2].Outcome != prompt.OutcomeNetwork || strings.Contains(as[2].Error, "abcdefghijklmnop") {
		t.Errorf("attempt %+v", as[2])
	}
	if strings.Contains(b.logs.String(), "ABCDEF") {
		t.Errorf("secret in logs")
	}
	if got := shortText("task-1234567890 and risk-assessment-report"); got != "task-1234567890 and risk-assessment-report" {
		t.Errorf("redact false positive: %q", got)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	reg := llm.NewRegistry()
	reg.Register("fake", &fakeProvider{})
	all := func(models ...string) map[prompt.Tier][]string {
		return map[prompt.Tier][]string{prompt.TierSimple: models, prompt.TierModerate: models, prompt.TierComplex: models}
	}
	pol := map[string]ModelPolicy{"fake/a": {}, "nope/x": {}}
	tests := []struct {
		name string
		s    Settings
		want string
	}{
		{"no policy", Settings{Tiers: all("fake/a", "fake/b"), Models: pol}, `tiers.simple[1]: model "fake/b": no model policy`},
		{"unknown provider", Settings{Tiers: all("nope/x"), Models: pol}, `tiers.simple[0]: model "nope/x": unknown provider "nope"`},
		{"not provider/model", Settings{Tiers: all("bare"), Models: map[string]ModelPolicy{"bare": {}}}, `model "bare"`},
		{"empty tier", Settings{Tiers: map[prompt.Tier][]string{prompt.TierSimple: {"fake/a"}}, Models: pol}, "tiers.moderate: no models"},
		{"unknown tier", Settings{Tiers: map[prompt.Tier][]string{"hard": {"fake/a"}}, Models: pol}, "tiers.hard: unknown tier"},
		{"negative retries", Settings{Tiers: all("fake/a"), Models: map[string]ModelPolicy{"fake/a": {MaxRetries: -1}}}, "max_retries"},
		{"policy for another model", Settings{Tiers: all("fake/a"), Models: map[string]ModelPolicy{"fake/a": {Model: "fake/b"}}}, `policy is for "fake/b"`},
		{"backoff", Settings{Tiers: all("fake/a"), Models: pol, Backoff: Backoff{Base: time.Second, Max: time.Millisecond}}, "backoff.max"},
		{"cooldown period", Settings{Tiers: all("fake/a"), Models: pol, Cooldown: Cooldown{Failures: 3}}, "cooldown.period"},
		{"quality", Settings{Tiers: all("fake/a"), Models: pol, Quality: quality.Rules{MinResponseWords: -2}}, "quality.min_response_words"},
	}
	for _, tt := range tests {
		_, err := New(tt.s, reg, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := New(Settings{Tiers: all("fake/a"), Models: pol}, reg, nil); err != nil {
		t.Errorf("valid settings: %v", err)
	}
}

func TestDefaultsApplied(t *testing.T) {
	t.Parallel()
	reg := llm.NewRegistry()
	reg.Register("fake", &fakeProvider{})
	tiers := map[prompt.Tier][]string{prompt.TierSimple: {"fake/a"}, prompt.TierModerate: {"fake/a"}, prompt.TierComplex: {"fake/a"}}
	c, err := New(Settings{Tiers: tiers, Models: map[string]ModelPolicy{"fake/a": {}}}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.backoff != (Backoff{Base: DefaultBackoffBase, Max: DefaultBackoffMax}) || c.tiers[prompt.TierSimple][0].pol.Timeout != DefaultTimeout {
		t.Errorf("defaults not applied: %+v %+v", c.backoff, c.tiers[prompt.TierSimple][0].pol)
	}
	if ok, _ := c.gate.Check(21, "short answer"); ok {
		t.Error("zero quality.Rules did not default to the article's")
	}
}

func TestBadKeyAndQuotaTakeModelOutOfService(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{
		"a": {fail(llm.ClassAuth, 401, 0)},
		"b": {fail(llm.ClassQuotaExhausted, 429, 0), ok(goodText)},
		"c": {ok(goodText)},
	}, nil)
	first := b.run(t, "hi")
	checkAttempts(t, first.Result.Attempts,
		want{"fake/a", prompt.OutcomeAuthError}, want{"fake/b", prompt.OutcomeQuotaExhausted}, want{"fake/c", prompt.OutcomeOK})
	second := b.run(t, "hi again")
	checkAttempts(t, second.Result.Attempts,
		want{"fake/a", prompt.OutcomeAuthError}, want{"fake/b", prompt.OutcomeQuotaExhausted}, want{"fake/c", prompt.OutcomeOK})
	for _, a := range second.Result.Attempts[:2] {
		if a.HTTPStatus != 0 || a.CostUSD != 0 || !strings.Contains(a.Error, "skipped without a call") {
			t.Errorf("second prompt's %s attempt = %+v, want a skip", a.Model, a)
		}
	}
	if b.fake.count("a") != 1 || b.fake.count("b") != 1 {
		t.Fatalf("calls a=%d b=%d, want 1 each", b.fake.count("a"), b.fake.count("b"))
	}
	// The quota is looked at again after QuotaRecheck; the bad key is not.
	b.clock.Advance(QuotaRecheck)
	third := b.run(t, "hi once more")
	checkAttempts(t, third.Result.Attempts, want{"fake/a", prompt.OutcomeAuthError}, want{"fake/b", prompt.OutcomeOK})
	if b.fake.count("a") != 1 || b.fake.count("b") != 2 {
		t.Fatalf("after the recheck: calls a=%d b=%d, want 1 and 2", b.fake.count("a"), b.fake.count("b"))
	}
	if n := strings.Count(b.logs.String(), "model disabled"); n != 2 {
		t.Errorf("%d 'model disabled' log lines, want 2 (one per model)\n%s", n, b.logs.String())
	}
}

func TestCallGateStopsBeforeTheNextCall(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{"a": {fail(llm.ClassServerError, 503, 0)}, "b": {ok(goodText)}}, nil)
	answered := errors.New("answered elsewhere")
	calls := 0
	ctx := WithCallGate(context.Background(), func(context.Context, Call) error {
		calls++
		if calls > 1 {
			return answered
		}
		return nil
	})
	out := b.c.Run(ctx, job("hi"), prompt.TierSimple, prompt.Signals{}, 1)
	if !out.Transient || !errors.Is(out.Stopped, answered) || out.Result.Status != "" {
		t.Fatalf("outcome = %+v, want transient and stopped by the gate", out)
	}
	checkAttempts(t, out.Result.Attempts, want{"fake/a", prompt.OutcomeServerError})
	if b.fake.count("a") != 1 || b.fake.count("b") != 0 {
		t.Fatalf("calls a=%d b=%d, want 1 and 0: the gate said no before b", b.fake.count("a"), b.fake.count("b"))
	}
	// Without a gate in the ctx the same cascade goes on to b.
	if out := b.run(t, "hi"); out.Result.Status != prompt.StatusSucceeded || out.Stopped != nil {
		t.Fatalf("without a gate: %+v", out)
	}
}
