package cascade_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/sim"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

// swapProvider serves calls from whichever provider it holds now.
type swapProvider struct{ p atomic.Pointer[sim.Provider] }

func (s *swapProvider) Complete(ctx context.Context, req llm.Request) (llm.Response, error) {
	return s.p.Load().Complete(ctx, req)
}

// TestHungCallsAreCutAtTheAdaptiveDeadline runs a batch on sim models with
// the sim's default fault rates (1% server errors, 0.2% calls that hang
// until their deadline, 2% weak answers) and the default 30s timeout and
// max_retries 1. Its bound is on counts and on each prompt's own calls, not
// on the batch's wall time (a benchmark's business): every hung call is cut
// at the model's adaptive deadline (3 × p99, at least 1s) instead of the 30s
// timeout, and is followed by a retry or the next model, so that no prompt
// waits more than its calls' own time plus one deadline per hung call.
func TestHungCallsAreCutAtTheAdaptiveDeadline(t *testing.T) {
	t.Parallel()
	c, sp, faulty := tailCascade(t, 0)
	run := func(batch string, n int, tier func(i int) prompt.Tier) []cascade.Outcome {
		return runBatch(c, batch, n, 100, tier)
	}
	// Warm up: every model answers 150 calls without faults, enough for
	// its deadline to adapt.
	run("warm", 450, func(i int) prompt.Tier { return prompt.Tiers[i%3] })
	for _, s := range c.Limits() {
		if s.Answered < 150 || s.TimedOut != 0 {
			t.Fatalf("warm-up: %+v", s)
		}
	}

	sp.p.Store(faulty)
	outs := run("tail", 3000, func(int) prompt.Tier { return prompt.TierSimple })

	var okLat []time.Duration
	for _, o := range outs {
		for _, a := range o.Result.Attempts {
			if a.Outcome == prompt.OutcomeOK {
				okLat = append(okLat, a.Latency)
			}
		}
	}
	slices.Sort(okLat)
	p99 := okLat[len(okLat)*99/100]
	// The adaptive deadline is 3 × p99 of a model's last answers, at least
	// 1s; the slowest model's p99 is below the batch's max answer latency.
	bound := max(3*okLat[len(okLat)-1], time.Second)
	hung, unfinished := 0, 0
	for _, o := range outs {
		res := o.Result
		if res.Status == "" && !o.Transient {
			unfinished++
		}
		var own time.Duration // the prompt's calls that were not cut
		cut := 0
		for i, a := range res.Attempts {
			if a.Outcome != prompt.OutcomeTimeout {
				own += a.Latency
				continue
			}
			hung++
			cut++
			if a.Latency >= tailTimeout/2 {
				t.Errorf("prompt %s: hung call on %s held it %v: cut at its timeout, not at the adaptive deadline (≤ %v)", res.Job.ID, a.Model, a.Latency, bound)
			}
			if i+1 == len(res.Attempts) {
				t.Errorf("prompt %s: the hung call was its last attempt: no retry or next model (%+v)", res.Job.ID, res.Attempts)
			}
		}
		// Waiting for the limiter and scheduling come on top of the calls;
		// a generous allowance for a loaded machine, far below one 30s timeout.
		if limit := own + time.Duration(cut)*bound + 5*time.Second; res.Latency > limit {
			t.Errorf("prompt %s took %v: more than its calls (%v) plus %d deadline(s) of %v", res.Job.ID, res.Latency, own, cut, bound)
		}
	}
	if unfinished != 0 {
		t.Errorf("%d prompts neither finished nor were handed back", unfinished)
	}
	// 3,000 prompts make about 3,300 calls: a few hung ones are expected
	// (seeded, so the same every run).
	if hung == 0 {
		t.Fatal("no call hung: the test does not exercise the deadline")
	}
	t.Logf("%d prompts, %d hung calls cut (bound %v), answer p99 %v", len(outs), hung, bound, p99)
}

const tailTimeout = 30 * time.Second

// tailCascade routes every tier over sim/small, sim/medium, sim/large
// (latencies of a few ms) with the default 30s timeout, max_retries 1 and
// hedge_after hedge on every model. The models start without faults; store
// faulty in the swapProvider for the sim's default fault rates.
func tailCascade(t *testing.T, hedge time.Duration) (*cascade.Cascade, *swapProvider, *sim.Provider) {
	t.Helper()
	return tailCascadeOn(t, hedge, func(p llm.Provider) llm.Provider { return p })
}

// tailCascadeOn is tailCascade with the sim provider behind wrap.
func tailCascadeOn(t *testing.T, hedge time.Duration, wrap func(llm.Provider) llm.Provider) (*cascade.Cascade, *swapProvider, *sim.Provider) {
	t.Helper()
	latency := map[string]time.Duration{"small": 4 * time.Millisecond, "medium": 8 * time.Millisecond, "large": 12 * time.Millisecond}
	faulty, clean := map[string]sim.Model{}, map[string]sim.Model{}
	for id, lat := range latency {
		m := sim.DefaultFor(id)
		m.Latency = lat
		faulty[id] = m
		clean[id] = sim.Model{Latency: lat, Capability: 1}
	}
	if faulty["small"].TimeoutRate != 0.002 || faulty["small"].ErrorRate != 0.01 {
		t.Fatalf("sim defaults changed: %+v", faulty["small"])
	}
	sp := &swapProvider{}
	sp.p.Store(sim.New(clean))
	reg := llm.NewRegistry()
	reg.Register(sim.Name, wrap(sp))
	prices := pricing.Builtin()
	policies := map[string]cascade.ModelPolicy{}
	for _, m := range []string{"sim/small", "sim/medium", "sim/large"} {
		p, _ := prices.Lookup(m)
		policies[m] = cascade.ModelPolicy{Model: m, Timeout: tailTimeout, MaxRetries: 1, Price: p, HedgeAfter: hedge}
	}
	c, err := cascade.New(cascade.Settings{
		Tiers: map[prompt.Tier][]string{
			prompt.TierSimple:   {"sim/small", "sim/medium", "sim/large"},
			prompt.TierModerate: {"sim/medium", "sim/large"},
			prompt.TierComplex:  {"sim/large"},
		},
		Models: policies,
		Seed:   11,
		Sleep:  func(ctx context.Context, d time.Duration) error { return ctx.Err() },
	}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, sp, sim.New(faulty)
}

// runBatch runs n prompts through c, at most par at once.
func runBatch(c *cascade.Cascade, batch string, n, par int, tier func(i int) prompt.Tier) []cascade.Outcome {
	outs := make([]cascade.Outcome, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, par)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			job := prompt.Job{BatchID: batch, ID: fmt.Sprint(i), Prompt: prompts[i%2]}
			outs[i] = c.Run(context.Background(), job, tier(i), prompt.Signals{}, 1)
		}()
	}
	wg.Wait()
	return outs
}

// TestHedgingAnswersPastHungCalls runs a batch on sim models with the
// default fault rates and hedge_after 100ms, with no warm-up: the adaptive
// deadline is still the 30s timeout, and every hung call is overtaken by its
// hedge instead (4 prompts at once: the limiter always has room for a
// hedge). No call times out; each hedge that lost is logged, billed, and
// part of its prompt's cost.
func TestHedgingAnswersPastHungCalls(t *testing.T) {
	t.Parallel()
	c, sp, faulty := tailCascade(t, 100*time.Millisecond)
	sp.p.Store(faulty)
	outs := runBatch(c, "hedge", 1500, 4, func(int) prompt.Tier { return prompt.TierSimple })
	lost := 0
	for _, o := range outs {
		res := o.Result
		var sum float64
		for _, a := range res.Attempts {
			sum += a.CostUSD
			switch {
			case a.Outcome == prompt.OutcomeTimeout:
				t.Errorf("prompt %s: a call timed out (%v) although hedged: %+v", res.Job.ID, a.Latency, res.Attempts)
			case a.Outcome == prompt.OutcomeCanceled && strings.HasPrefix(a.Error, "hedge lost:"):
				lost++
				if a.CostUSD <= 0 || a.InputTokens == 0 {
					t.Errorf("prompt %s: lost hedge not billed: %+v", res.Job.ID, a)
				}
			}
		}
		if math.Abs(sum-res.CostUSD) > 1e-12 {
			t.Errorf("prompt %s: cost %v, attempts sum to %v", res.Job.ID, res.CostUSD, sum)
		}
	}
	if lost == 0 {
		t.Fatal("no hedge was made: the test does not exercise hedging")
	}
	var calls uint64
	for _, s := range c.Limits() {
		calls += s.Calls
		if s.InFlight != 0 {
			t.Errorf("limiter %+v: calls left in flight", s)
		}
	}
	made := 0
	for _, o := range outs {
		for _, a := range o.Result.Attempts {
			if a.Outcome != prompt.OutcomeCooldownSkip {
				made++
			}
		}
	}
	if calls != uint64(made) {
		t.Errorf("limiters counted %d calls, request_log would hold %d", calls, made)
	}
	t.Logf("%d prompts, %d hedges lost", len(outs), lost)
}

// hangFirst hangs the first call it serves until the call's context ends;
// every other call goes to p.
type hangFirst struct {
	p    llm.Provider
	once atomic.Bool
	hung chan struct{} // closed when the hung call has started
}

func (h *hangFirst) Complete(ctx context.Context, req llm.Request) (llm.Response, error) {
	if h.once.CompareAndSwap(false, true) {
		close(h.hung)
		<-ctx.Done()
		return llm.Response{}, &llm.Error{Class: llm.ClassTimeout, Provider: sim.Name, Model: req.Model,
			Message: "no response before the deadline", Err: context.Cause(ctx)}
	}
	return h.p.Complete(ctx, req)
}

// TestCallHungBeforeTheDeadlineAdaptedIsCutOnceItHas: the very first call of
// a fresh process hangs. When it starts, its model has no answers and its
// deadline is the 30s timeout; while it hangs, the other prompts give the
// model hundreds of answers and its deadline adapts to 1s. The hung call is
// cut then, logged as timeout (the limiter counts it as one), and its prompt
// is answered by the retry, instead of waiting out the timeout that its
// model's deadline was when the call started. Before this, that one call
// set a whole batch's wall time.
func TestCallHungBeforeTheDeadlineAdaptedIsCutOnceItHas(t *testing.T) {
	t.Parallel()
	h := &hangFirst{hung: make(chan struct{})}
	c, _, _ := tailCascadeOn(t, 0, func(p llm.Provider) llm.Provider { h.p = p; return h })

	first := make(chan cascade.Outcome, 1)
	go func() {
		first <- c.Run(context.Background(), prompt.Job{BatchID: "cold", ID: "first", Prompt: prompts[0]}, prompt.TierSimple, prompt.Signals{}, 1)
	}()
	<-h.hung
	others := runBatch(c, "cold", 400, 4, func(int) prompt.Tier { return prompt.TierSimple })
	for _, o := range others {
		if o.Result.Status != prompt.StatusSucceeded {
			t.Fatalf("prompt %s: %+v", o.Result.Job.ID, o.Result)
		}
	}
	o := <-first
	as := o.Result.Attempts
	if len(as) != 2 || as[0].Outcome != prompt.OutcomeTimeout || as[1].Outcome != prompt.OutcomeOK || as[1].Model != as[0].Model {
		t.Fatalf("the hung prompt's attempts: %+v; want a timeout, then an answer from the retry on the same model", as)
	}
	if as[0].Latency >= tailTimeout/2 {
		t.Errorf("the hung call held its prompt %v: cut at the timeout it started with (%v), not at the deadline its model learned meanwhile", as[0].Latency, tailTimeout)
	}
	for _, s := range c.Limits() {
		if s.Model == as[0].Model && s.TimedOut != 1 {
			t.Errorf("limiter of %s counted %d timeouts, want the 1 cut call", s.Model, s.TimedOut)
		}
	}
}

// slowPrompt answers one prompt text after a fixed time (or fails as a
// timeout when the call's context ends first); every other call goes to p.
type slowPrompt struct {
	p      llm.Provider
	prompt string
	after  time.Duration
}

func (s *slowPrompt) Complete(ctx context.Context, req llm.Request) (llm.Response, error) {
	if req.Prompt != s.prompt {
		return s.p.Complete(ctx, req)
	}
	t := time.NewTimer(s.after)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return llm.Response{}, &llm.Error{Class: llm.ClassTimeout, Provider: sim.Name, Model: req.Model,
			Message: "no response before the deadline", Err: context.Cause(ctx)}
	case <-t.C:
	}
	return llm.Response{Text: "A long answer, as this prompt asks for.", InputTokens: 8, OutputTokens: 2000, HTTPStatus: 200, FinishReason: "stop"}, nil
}

// TestLongAnswerIsNotCutAtEveryTry: a model learns its deadline (1s, the
// floor) on short answers; one prompt's answer takes 3s, within the 30s
// timeout. Each cut of that prompt's call doubles its next deadline on the
// model (1s, 2s, 4s), so the third call (max_retries 2) answers it, on the
// model its tier chose, instead of every try being cut at 1s and the prompt
// pushed to the next model. A redelivered prompt starts doubled once per
// earlier delivery: in its third delivery the first call answers.
func TestLongAnswerIsNotCutAtEveryTry(t *testing.T) {
	t.Parallel()
	const long = "Write the long answer."
	sp := &swapProvider{}
	sp.p.Store(sim.New(map[string]sim.Model{"small": {Latency: 2 * time.Millisecond, Capability: 1}, "medium": {Latency: 2 * time.Millisecond, Capability: 1}}))
	reg := llm.NewRegistry()
	reg.Register(sim.Name, &slowPrompt{p: sp, prompt: long, after: 3 * time.Second})
	prices := pricing.Builtin()
	policies := map[string]cascade.ModelPolicy{}
	for _, m := range []string{"sim/small", "sim/medium"} {
		p, _ := prices.Lookup(m)
		policies[m] = cascade.ModelPolicy{Model: m, Timeout: tailTimeout, MaxRetries: 2, Price: p}
	}
	c, err := cascade.New(cascade.Settings{
		Tiers:  map[prompt.Tier][]string{prompt.TierSimple: {"sim/small", "sim/medium"}, prompt.TierModerate: {"sim/medium"}, prompt.TierComplex: {"sim/medium"}},
		Models: policies,
		Seed:   3,
		Sleep:  func(ctx context.Context, d time.Duration) error { return ctx.Err() },
	}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Warm up: 150 short answers give sim/small its 1s deadline.
	runBatch(c, "warm", 150, 4, func(int) prompt.Tier { return prompt.TierSimple })

	o := c.Run(context.Background(), prompt.Job{BatchID: "b", ID: "long", Prompt: long}, prompt.TierSimple, prompt.Signals{}, 1)
	var got []string
	for _, a := range o.Result.Attempts {
		got = append(got, fmt.Sprint(a.Model, " ", a.Outcome))
	}
	want := []string{"sim/small timeout", "sim/small timeout", "sim/small ok"}
	if !slices.Equal(got, want) {
		t.Fatalf("attempts %v, want %v: each cut should double the prompt's next deadline on the model", got, want)
	}
	if as := o.Result.Attempts; as[0].Latency >= 2*time.Second || as[1].Latency >= 4*time.Second {
		t.Errorf("cut calls took %v and %v: deadlines not 1s and 2s", as[0].Latency, as[1].Latency)
	}

	o = c.Run(context.Background(), prompt.Job{BatchID: "b", ID: "long", Prompt: long}, prompt.TierSimple, prompt.Signals{}, 3)
	if as := o.Result.Attempts; len(as) != 1 || as[0].Outcome != prompt.OutcomeOK {
		t.Fatalf("third delivery: attempts %+v, want one answer (deadline doubled per earlier delivery)", as)
	}
}
