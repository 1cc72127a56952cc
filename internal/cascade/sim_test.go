package cascade_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/limit"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/sim"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/quality"
	pcseed "github.com/promptcascade/promptcascade/internal/seed"
	"github.com/promptcascade/promptcascade/internal/tokens"
)

// simCascade routes every tier over sim/small, sim/medium, sim/large with
// the given behaviour and built-in prices. Retry waits are skipped.
//
// No call reaches its deadline: a minute, which a call the sim answers at
// once never runs for, however loaded the machine. With a deadline of a few
// milliseconds, a call could find it passed before the sim even looked at
// the call (the goroutine waited that long to run) and time out in one run
// of a job but not in another (TestRunWithSimProvider under load). Calls
// time out where hangs says, drawn from their seeds (see hangs), so the
// same seed gives the same timeouts.
func simCascade(tb testing.TB, models map[string]sim.Model, seed uint64, hang map[string]float64) *cascade.Cascade {
	tb.Helper()
	for name, m := range models {
		if m.TimeoutRate != 0 {
			tb.Fatalf("model %s: a sim TimeoutRate waits for the deadline in real time; use hang", name)
		}
	}
	reg := llm.NewRegistry()
	reg.Register(sim.Name, hangs{p: sim.New(models), rate: hang})
	prices := pricing.Builtin()
	policies := map[string]cascade.ModelPolicy{}
	for _, m := range []string{"sim/small", "sim/medium", "sim/large"} {
		p, ok := prices.Lookup(m)
		if !ok {
			tb.Fatalf("no price for %s", m)
		}
		policies[m] = cascade.ModelPolicy{Model: m, Timeout: time.Minute, MaxRetries: 1, Price: p}
	}
	c, err := cascade.New(cascade.Settings{
		Tiers: map[prompt.Tier][]string{
			prompt.TierSimple:   {"sim/small", "sim/medium", "sim/large"},
			prompt.TierModerate: {"sim/medium", "sim/large"},
			prompt.TierComplex:  {"sim/large"},
		},
		Models: policies,
		// Random 429s cascade, as in the article: they say nothing about
		// capacity, which the waiting limiter would read them as.
		RateLimit: cascade.RateLimit{OnRateLimit: cascade.CascadeOnRateLimit},
		Seed:      seed,
		Sleep:     func(ctx context.Context, d time.Duration) error { return ctx.Err() },
	}, reg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// hangs is the sim provider whose calls on model m time out with
// probability rate[m] ("small" for sim/small), drawn from the call's seed:
// at once, with the error the sim gives when a call's deadline passes,
// instead of waiting for a real deadline.
type hangs struct {
	p    llm.Provider
	rate map[string]float64
}

func (h hangs) Complete(ctx context.Context, req llm.Request) (llm.Response, error) {
	if r := h.rate[req.Model]; r > 0 && pcseed.Unit(pcseed.Mix(req.Seed^0x7133)) < r {
		return llm.Response{}, &llm.Error{Class: llm.ClassTimeout, Provider: sim.Name, Model: req.Model,
			Message: "no response before the deadline (simulated)", Err: context.DeadlineExceeded}
	}
	return h.p.Complete(ctx, req)
}

var prompts = []string{
	"What is the capital of France?",
	"Explain how gradient descent works with momentum",
	"Analyze the tradeoffs between LORA and full fine-tuning for a 70B parameter model, compare memory usage and downstream task performance",
	"Design a rate limiter for a multi-tenant API, compare token bucket and sliding window approaches, and analyze the implications " +
		"for fairness, memory and latency when tenants have very different traffic patterns over a day",
}

func TestRunWithSimProvider(t *testing.T) {
	t.Parallel()
	models := map[string]sim.Model{
		"small":  {ErrorRate: 0.1, RateLimitRate: 0.05, WeakRate: 0.05, Capability: 0.2},
		"medium": {ErrorRate: 0.05, RateLimitRate: 0.05, WeakRate: 0.03, Capability: 0.6},
		"large":  {ErrorRate: 0.02, WeakRate: 0.01, Capability: 0.95},
	}
	hang := map[string]float64{"small": 0.02, "medium": 0.01}
	c1, c2 := simCascade(t, models, 1, hang), simCascade(t, models, 1, hang)
	ctx := context.Background()
	cascaded := map[string]int{}
	timeouts := 0
	for i := range 400 {
		p := prompts[i%len(prompts)]
		j := prompt.Job{BatchID: "b", ID: fmt.Sprint(i), Prompt: p, System: "You are a helpful assistant."}
		out := c1.Run(ctx, j, prompt.TierSimple, prompt.Signals{}, 1)
		res := out.Result

		// Same seed, same job: same attempts (latency aside).
		again := c2.Run(ctx, j, prompt.TierSimple, prompt.Signals{}, 1).Result
		if len(again.Attempts) != len(res.Attempts) || again.Response != res.Response || again.CostUSD != res.CostUSD {
			t.Fatalf("job %d not reproducible:\n%+v\n%+v", i, res, again)
		}

		sum := 0.0
		for k, a := range res.Attempts {
			if a.Attempt != k+1 || a.Model == "" || a.Outcome == "" {
				t.Fatalf("job %d: attempt %+v", i, a)
			}
			sum += a.CostUSD
			if a.Outcome == prompt.OutcomeTimeout {
				timeouts++
			}
		}
		if math.Abs(sum-res.CostUSD) > 1e-12 {
			t.Fatalf("job %d: cost %v, attempts sum to %v", i, res.CostUSD, sum)
		}
		switch {
		case res.Status == prompt.StatusSucceeded:
			last := res.Attempts[len(res.Attempts)-1]
			if last.Outcome != prompt.OutcomeOK || last.Model != res.ModelUsed || res.Response == "" ||
				res.OutputTokens != tokens.Count(res.Response) {
				t.Fatalf("job %d: success %+v", i, res)
			}
			if ok, why := quality.Default().Check(p, res.Response); !ok {
				t.Fatalf("job %d: delivered answer fails the gate (%s): %q", i, why, res.Response)
			}
			if res.ModelUsed != "sim/small" {
				cascaded[p[:20]]++
			}
		case out.Transient:
			if res.Status != "" {
				t.Fatalf("job %d: transient with status %q", i, res.Status)
			}
		default:
			if res.Status != prompt.StatusFailed || res.Error == "" {
				t.Fatalf("job %d: %+v", i, res)
			}
		}
	}
	// Misrouting shows up: hard prompts sent to the simple tier cascade
	// past the small model far more often than easy ones.
	easy, hard := cascaded[prompts[0][:20]], cascaded[prompts[3][:20]]
	t.Logf("answered by a model other than sim/small (of 100 each): easy %d, hard %d; %d calls timed out", easy, hard, timeouts)
	if timeouts == 0 {
		t.Error("no call timed out: the test did not test timeouts cascading")
	}
	if hard < 2*easy || hard < 30 {
		t.Errorf("hard prompts cascaded %d times, easy ones %d", hard, easy)
	}
}

func TestSimTimeoutsCascade(t *testing.T) {
	t.Parallel()
	c := simCascade(t, map[string]sim.Model{"small": {}, "medium": {Capability: 1}, "large": {}}, 3, map[string]float64{"small": 1})
	out := c.Run(context.Background(), prompt.Job{BatchID: "b", ID: "1", Prompt: prompts[0]}, prompt.TierSimple, prompt.Signals{}, 1)
	as := out.Result.Attempts
	if len(as) != 3 || as[0].Outcome != prompt.OutcomeTimeout || as[1].Outcome != prompt.OutcomeTimeout ||
		as[2].Model != "sim/medium" || out.Result.Status != prompt.StatusSucceeded {
		t.Fatalf("attempts %+v", as)
	}
}

func Example() {
	reg := llm.NewRegistry()
	reg.Register(sim.Name, sim.New(map[string]sim.Model{
		"small": {Capability: 0.9, RateLimitRate: 1}, // always rate limited
		"large": {Capability: 1},
	}))
	prices := pricing.Builtin()
	small, _ := prices.Lookup("sim/small")
	large, _ := prices.Lookup("sim/large")
	c, err := cascade.New(cascade.Settings{
		Tiers: map[prompt.Tier][]string{
			prompt.TierSimple:   {"sim/small", "sim/large"},
			prompt.TierModerate: {"sim/large"},
			prompt.TierComplex:  {"sim/large"},
		},
		Models: map[string]cascade.ModelPolicy{
			"sim/small": {Timeout: 10 * time.Second, Price: small},
			"sim/large": {Timeout: 30 * time.Second, Price: large},
		},
		// Fall back at once on a rate limit, as the article does (the
		// default waits for the model's capacity instead).
		RateLimit: cascade.RateLimit{OnRateLimit: cascade.CascadeOnRateLimit},
	}, reg, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	job := prompt.Job{BatchID: "demo", ID: "1", Prompt: "What is the capital of France?"}
	out := c.Run(context.Background(), job, prompt.TierSimple, prompt.Signals{}, 1)
	for _, a := range out.Result.Attempts {
		fmt.Println(a.Attempt, a.Model, a.Outcome, a.HTTPStatus)
	}
	fmt.Println(out.Result.Status, out.Result.ModelUsed, strings.Count(out.Result.Response, " ") > 10)
	// Output:
	// 1 sim/small rate_limited 429
	// 2 sim/large ok 200
	// succeeded sim/large true
}

func BenchmarkRun(b *testing.B) {
	models := map[string]sim.Model{"small": {Capability: 0.5}, "medium": {Capability: 0.8}, "large": {Capability: 1}}
	c := simCascade(b, models, 1, nil)
	ctx := context.Background()
	sys := "You are a helpful assistant."
	tokens.Count("warm up")
	// Each run a prompt id of its own, on its first delivery as most are
	// (a later delivery's calls get stretched deadlines: see run.stretch).
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = fmt.Sprint(i)
	}
	for _, bc := range []struct {
		name string
		p    string
	}{{"simple", prompts[0]}, {"complex", prompts[3]}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var i int
			attempts := 0
			for b.Loop() {
				i++
				out := c.Run(ctx, prompt.Job{BatchID: "bench", ID: ids[i%len(ids)], Prompt: bc.p, System: sys}, prompt.TierSimple, prompt.Signals{}, 1)
				attempts += len(out.Result.Attempts)
			}
			b.ReportMetric(float64(attempts)/float64(b.N), "attempts/op")
		})
	}
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				c.Run(ctx, prompt.Job{BatchID: "bench", ID: ids[i%len(ids)], Prompt: prompts[i%len(prompts)], System: sys}, prompt.TierSimple, prompt.Signals{}, 1)
			}
		})
	})
}

// A sim model that can never answer 429 (no rpm, tpm, max_concurrency or
// random rate limits) has nothing for an adaptive limiter to find: it
// starts at the worker's slots instead of slowing its first calls down
// from limit.DefaultInitial. A sim model with a capacity still adapts.
func TestUnlimitedSimModelStartsAtTheSlots(t *testing.T) {
	t.Parallel()
	reg := llm.NewRegistry()
	reg.Register(sim.Name, sim.New(map[string]sim.Model{
		"small":  {Capability: 1},
		"medium": {Capability: 1, RPM: 6000},
		"large":  {Capability: 1, RateLimitRate: 0.01},
	}))
	prices := pricing.Builtin()
	policies := map[string]cascade.ModelPolicy{}
	for _, m := range []string{"sim/small", "sim/medium", "sim/large"} {
		p, _ := prices.Lookup(m)
		policies[m] = cascade.ModelPolicy{Model: m, Price: p}
	}
	c, err := cascade.New(cascade.Settings{
		Tiers: map[prompt.Tier][]string{
			prompt.TierSimple: {"sim/small"}, prompt.TierModerate: {"sim/medium"}, prompt.TierComplex: {"sim/large"},
		},
		Models:      policies,
		RateLimit:   cascade.RateLimit{OnRateLimit: cascade.WaitOnRateLimit},
		MaxInFlight: 5000,
	}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, s := range c.Limits() {
		got[s.Model] = s.Limit
	}
	if got["sim/small"] != 5000 || got["sim/medium"] != limit.DefaultInitial || got["sim/large"] != limit.DefaultInitial {
		t.Fatalf("limits %v, want sim/small at the 5000 slots and the others at %d", got, limit.DefaultInitial)
	}
}
