package estimate

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/tokens"
)

// byPrefix classifies "c..." complex, "m..." moderate, anything else simple.
type byPrefix struct{}

func (byPrefix) Classify(s string) (prompt.Tier, prompt.Signals) {
	switch {
	case strings.HasPrefix(s, "c"):
		return prompt.TierComplex, prompt.Signals{}
	case strings.HasPrefix(s, "m"):
		return prompt.TierModerate, prompt.Signals{}
	}
	return prompt.TierSimple, prompt.Signals{}
}

func TestEstimateByHand(t *testing.T) {
	t.Parallel()
	cheap := Model{Name: "x/cheap", Price: pricing.Price{InputPerMTok: 1, OutputPerMTok: 2}, Latency: 100 * time.Millisecond}
	dear := Model{Name: "x/dear", Price: pricing.Price{InputPerMTok: 10, OutputPerMTok: 20}, Latency: time.Second}
	e, err := New(Plan{
		Tiers:       map[prompt.Tier][]Model{prompt.TierSimple: {cheap, dear}, prompt.TierModerate: {dear}, prompt.TierComplex: {dear}},
		Classifier:  byPrefix{},
		CountTokens: func(s string) int { return len(s) }, // one token per byte
	})
	if err != nil {
		t.Fatal(err)
	}
	e.Add(prompt.Job{Prompt: "s1234", System: "sys"})     // simple: 8 in, 150 out (default)
	e.Add(prompt.Job{Prompt: "s12", MaxTokens: 50})       // simple: 3 in, 50 out
	e.Add(prompt.Job{Prompt: "m123456789", MaxTokens: 1}) // moderate: 10 in, 1 out
	r := e.Result()
	if len(r.Tiers) != 2 || r.Tiers[0].Tier != prompt.TierSimple || r.Tiers[1].Tier != prompt.TierModerate {
		t.Fatalf("tiers = %+v", r.Tiers)
	}
	s, m := r.Tiers[0], r.Tiers[1]
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
	// simple low: cheap on (8,150) and (3,50): (11*1 + 200*2)/1e6; high adds dear: (11*10 + 200*20)/1e6.
	if s.Prompts != 2 || s.InputTokens != 11 || s.OutputTokens != 200 || !near(s.CostLowUSD, 411e-6) ||
		!near(s.CostHighUSD, 411e-6+4110e-6) || s.FirstModel != "x/cheap" || s.LastModel != "x/dear" {
		t.Errorf("simple = %+v", s)
	}
	if m.Prompts != 1 || !near(m.CostLowUSD, 120e-6) || !near(m.CostHighUSD, 120e-6) {
		t.Errorf("moderate = %+v", m)
	}
	if r.Total.Prompts != 3 || !near(r.Total.CostLowUSD, 531e-6) || !near(r.Total.CostHighUSD, 4641e-6) {
		t.Errorf("total = %+v", r.Total)
	}
	// Calls: low 0.1+0.1+1 s, high 1.1+1.1+1 s; over 1 worker × 2 slots.
	w := r.WallTime(1, 2)
	if w.Low.Duration() != 600*time.Millisecond || w.High.Duration() != 1600*time.Millisecond || w.Low.Binds != BindsConcurrency {
		t.Errorf("wall time = %+v", w)
	}
	if _, err := New(Plan{Tiers: map[prompt.Tier][]Model{prompt.TierSimple: {cheap}}, Classifier: byPrefix{}, CountTokens: func(string) int { return 0 }}); err == nil {
		t.Error("a plan without moderate and complex models was accepted")
	}
}

// The wall time under declared limits, every number worked out by hand.
func TestWallTimeLimitsByHand(t *testing.T) {
	t.Parallel()
	a := Model{Name: "x/a", Latency: 2 * time.Second, Limits: Limits{RPM: 60}}
	b := Model{Name: "x/b", Latency: time.Second, Limits: Limits{TPM: 6000, MaxConcurrency: 2}}
	c := Model{Name: "x/c", Latency: time.Hour, Batch: true}
	d := Model{Name: "x/d", Latency: 500 * time.Millisecond}
	e, err := New(Plan{
		Tiers:       map[prompt.Tier][]Model{prompt.TierSimple: {a, b}, prompt.TierModerate: {b, c}, prompt.TierComplex: {d}},
		Classifier:  byPrefix{},
		CountTokens: func(s string) int { return len(s) }, // one token per byte
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every prompt has 10 input tokens.
	for range 30 {
		e.Add(prompt.Job{Prompt: "s123456789", MaxTokens: 90}) // simple: 100 tokens a call
	}
	for range 10 {
		e.Add(prompt.Job{Prompt: "m123456789", MaxTokens: 190}) // moderate: 200 tokens a call
	}
	for range 40 {
		e.Add(prompt.Job{Prompt: "c123456789", MaxTokens: 90}) // complex: 100 tokens a call
	}
	r := e.Result()
	// Loads, low (first models) / high (every model of the tier):
	//   a: simple only, 30 calls, 3000 tokens in both cases;
	//   b: low = moderate's 10 calls, 2000 tokens; high = 30 simple + 10 moderate, 3000 + 2000 tokens;
	//   c: low none; high 10 calls (batch mode);
	//   d: complex, 40 calls, 4000 tokens in both.
	want := []Load{
		{Model: "x/a", Limits: a.Limits, LatencySec: 2, CallsLow: 30, CallsHigh: 30, TokensLow: 3000, TokensHigh: 3000},
		{Model: "x/b", Limits: b.Limits, LatencySec: 1, CallsLow: 10, CallsHigh: 40, TokensLow: 2000, TokensHigh: 5000},
		{Model: "x/c", LatencySec: 3600, Batch: true, CallsHigh: 10, TokensHigh: 2000},
		{Model: "x/d", LatencySec: 0.5, CallsLow: 40, CallsHigh: 40, TokensLow: 4000, TokensHigh: 4000},
	}
	if len(r.Models) != len(want) {
		t.Fatalf("models = %+v", r.Models)
	}
	for i := range want {
		if r.Models[i] != want[i] {
			t.Errorf("models[%d] = %+v, want %+v", i, r.Models[i], want[i])
		}
	}

	// 2 workers × 4 in flight.
	//   a: latency 30×2 s/(2×4) = 7.5 s; rpm 30×60 s/(2×60) = 15 s       → 15 s rpm (both cases)
	//   b: max_concurrency 2 < 4: low 10×1 s/(2×2) = 2.5 s, tpm 2000×60 s/(2×6000) = 10 s → 10 s tpm;
	//      high 40×1 s/(2×2) = 10 s, tpm 5000×60 s/12000 = 25 s                       → 25 s tpm
	//   c: batch mode, not timed; d: 40×0.5 s/(2×4) = 2.5 s concurrency
	//   slots: low (30×2 + 10×1 + 40×0.5) s / 8 = 11.25 s; high (60 + 40 + 20) s / 8 = 15 s
	//   wall: low max(11.25, 15, 10, 2.5) = 15 s by x/a rpm; high max(15, 15, 25, 2.5) = 25 s by x/b tpm
	w := r.WallTime(2, 4)
	wantModels := []ModelTime{
		{Model: "x/a", Low: Bound{15, BindsRPM}, High: Bound{15, BindsRPM}},
		{Model: "x/b", Low: Bound{10, BindsTPM}, High: Bound{25, BindsTPM}},
		{Model: "x/c", Low: Bound{}, High: Bound{0, BindsProviderBatch}},
		{Model: "x/d", Low: Bound{2.5, BindsConcurrency}, High: Bound{2.5, BindsConcurrency}},
	}
	check := func(w Wall, low, high Bound, models []ModelTime) {
		t.Helper()
		if w.Low != low || w.High != high {
			t.Errorf("%d×%d: wall = %+v to %+v, want %+v to %+v", w.Workers, w.Concurrency, w.Low, w.High, low, high)
		}
		for i := range models {
			if i >= len(w.Models) || w.Models[i] != models[i] {
				t.Errorf("%d×%d: models = %+v, want %+v", w.Workers, w.Concurrency, w.Models, models)
				break
			}
		}
	}
	check(w, Bound{15, "x/a rpm"}, Bound{25, "x/b tpm"}, wantModels)

	// 1 worker × 1 in flight: the one slot binds.
	//   a: 30×2 s/1 = 60 s; rpm 30×60 s/60 = 30 s                       → 60 s concurrency
	//   b: max_concurrency 2 is not below 1: low 10 s, tpm 2000×60 s/6000 = 20 s → 20 s tpm;
	//      high 40 s, tpm 5000×60 s/6000 = 50 s                          → 50 s tpm
	//   d: 40×0.5 s = 20 s concurrency; slots: low 90 s, high 120 s
	check(r.WallTime(1, 1), Bound{90, BindsConcurrency}, Bound{120, BindsConcurrency}, []ModelTime{
		{Model: "x/a", Low: Bound{60, BindsConcurrency}, High: Bound{60, BindsConcurrency}},
		{Model: "x/b", Low: Bound{20, BindsTPM}, High: Bound{50, BindsTPM}},
		{Model: "x/c", Low: Bound{}, High: Bound{0, BindsProviderBatch}},
		{Model: "x/d", Low: Bound{20, BindsConcurrency}, High: Bound{20, BindsConcurrency}},
	})
}

func BenchmarkEstimateAdd(b *testing.B) {
	e, _ := New(Plan{
		Tiers:       map[prompt.Tier][]Model{prompt.TierSimple: {{Name: "a"}}, prompt.TierModerate: {{Name: "a"}}, prompt.TierComplex: {{Name: "a"}}},
		Classifier:  byPrefix{},
		CountTokens: tokens.Count,
	})
	job := prompt.Job{Prompt: "Explain eventual consistency to a product manager in two short paragraphs."}
	for b.Loop() {
		e.Add(job)
	}
}
