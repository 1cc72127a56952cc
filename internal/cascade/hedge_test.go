package cascade

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/tokens"
)

// hedging sets hedge_after on fake/a.
func hedging(after, timeout time.Duration) func(*Settings) {
	return func(s *Settings) {
		s.Models["fake/a"] = ModelPolicy{Model: "fake/a", Timeout: timeout, Price: price, HedgeAfter: after}
	}
}

func TestHedgeWinsOverAHungCall(t *testing.T) {
	t.Parallel()
	// The first call hangs; without the hedge it would hold the prompt
	// for the whole 30s timeout and then cascade to fake/b.
	b := setup(t, map[string][]step{"a": {{block: true}, ok(goodText)}, "b": {ok(goodText)}}, hedging(20*time.Millisecond, 30*time.Second))
	out := b.run(t, "What is the capital of France?")
	res := out.Result
	if res.Status != prompt.StatusSucceeded || res.ModelUsed != "fake/a" {
		t.Fatalf("status %q by %q, want succeeded by fake/a: %+v", res.Status, res.ModelUsed, res.Attempts)
	}
	if len(res.Attempts) != 2 {
		t.Fatalf("attempts %+v, want the loser and the winner", res.Attempts)
	}
	loser, winner := res.Attempts[0], res.Attempts[1]
	if winner.Attempt != 2 || winner.Outcome != prompt.OutcomeOK || winner.Estimated || winner.CostUSD != price.Cost(pricing.Usage{InputTokens: 100, OutputTokens: 50}) {
		t.Errorf("winner %+v, want attempt 2 ok, billed from its usage", winner)
	}
	in, outTok := tokens.Count("What is the capital of France?"), tokens.Count(goodText)
	wantCost := price.Cost(pricing.Usage{InputTokens: in, OutputTokens: outTok})
	if loser.Attempt != 1 || loser.Outcome != prompt.OutcomeCanceled || loser.Error != "hedge lost: the other call of this attempt answered first" ||
		!loser.Estimated || loser.InputTokens != in || loser.OutputTokens != outTok || loser.CostUSD != wantCost || wantCost == 0 {
		t.Errorf("loser %+v, want attempt 1 canceled (hedge lost), estimated at %d in / %d out = $%v", loser, in, outTok, wantCost)
	}
	if res.CostUSD != loser.CostUSD+winner.CostUSD {
		t.Errorf("result cost %v, want both calls' %v", res.CostUSD, loser.CostUSD+winner.CostUSD)
	}
	if n := b.fake.count("b"); n != 0 {
		t.Errorf("fake/b called %d times", n)
	}
	s := b.c.Limits()[0]
	if s.Model != "fake/a" || s.Calls != 2 || s.InFlight != 0 || s.Answered != 1 {
		t.Errorf("limiter %+v, want both calls counted, none in flight, one answer", s)
	}
}

func TestNoHedgeWhenTheCallAnswersInTime(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{"a": {ok(goodText)}}, hedging(time.Hour, 30*time.Second))
	out := b.run(t, "What is the capital of France?")
	checkAttempts(t, out.Result.Attempts, want{"fake/a", prompt.OutcomeOK})
	if n := b.fake.count("a"); n != 1 {
		t.Errorf("fake/a called %d times, want 1", n)
	}
	if s := b.c.Limits()[0]; s.Calls != 1 || s.InFlight != 0 {
		t.Errorf("limiter %+v", s)
	}
}

func TestHedgeWhenBothCallsFail(t *testing.T) {
	t.Parallel()
	// The first call hangs until its timeout; the hedge fails at once.
	// Both are failures of fake/a, and the prompt moves on to fake/b.
	b := setup(t, map[string][]step{"a": {{block: true}, fail(prompt.OutcomeServerError, 500, 0)}, "b": {ok(goodText)}},
		hedging(10*time.Millisecond, 200*time.Millisecond))
	out := b.run(t, "What is the capital of France?")
	as := out.Result.Attempts
	if len(as) != 3 || as[0].Attempt != 2 || as[0].Outcome != prompt.OutcomeServerError ||
		as[1].Attempt != 1 || as[1].Outcome != prompt.OutcomeTimeout || as[1].Latency < 200*time.Millisecond ||
		as[2].Attempt != 3 || as[2].Model != "fake/b" || as[2].Outcome != prompt.OutcomeOK {
		t.Fatalf("attempts %+v, want #2 server_error, #1 timeout (after its 200ms), #3 fake/b ok", as)
	}
	if s := b.c.Limits()[0]; s.Calls != 2 || s.InFlight != 0 {
		t.Errorf("limiter %+v", s)
	}
}

func TestNoHedgeWithoutRoom(t *testing.T) {
	t.Parallel()
	// max_concurrency 1: the hedge finds no room and is not made; the
	// first call's timeout decides.
	b := setup(t, map[string][]step{"a": {{block: true}, ok(goodText)}, "b": {ok(goodText)}}, func(s *Settings) {
		hedging(10*time.Millisecond, 100*time.Millisecond)(s)
		p := s.Models["fake/a"]
		p.Caps.MaxConcurrency = 1
		s.Models["fake/a"] = p
	})
	out := b.run(t, "What is the capital of France?")
	checkAttempts(t, out.Result.Attempts, want{"fake/a", prompt.OutcomeTimeout}, want{"fake/b", prompt.OutcomeOK})
	if n := b.fake.count("a"); n != 1 {
		t.Errorf("fake/a called %d times, want 1 (no room for a hedge)", n)
	}
}

func TestHedgeAsksTheCallGate(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{"a": {{block: true}, ok(goodText)}, "b": {ok(goodText)}}, hedging(10*time.Millisecond, 100*time.Millisecond))
	var mu sync.Mutex
	var asked []string
	gate := func(_ context.Context, c Call) error {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, c.Model)
		if len(asked) == 2 {
			return errors.New("budget reached")
		}
		return nil
	}
	out := b.c.Run(WithCallGate(context.Background(), gate), job("What is the capital of France?"), prompt.TierSimple, prompt.Signals{}, 1)
	// The gate refused the hedge: the first call went on alone.
	checkAttempts(t, out.Result.Attempts, want{"fake/a", prompt.OutcomeTimeout}, want{"fake/b", prompt.OutcomeOK})
	if n := b.fake.count("a"); n != 1 || out.Stopped != nil {
		t.Errorf("fake/a called %d times (want 1), stopped %v", n, out.Stopped)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 3 || asked[1] != "fake/a" {
		t.Errorf("gate asked about %v, want fake/a, fake/a (the hedge), fake/b", asked)
	}
}
