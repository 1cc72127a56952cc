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
	// Calls: low 0.1+0.1+1 s, high 1.1+1.1+1 s; over 2 slots.
	low, high := r.WallTime(2)
	if low != 600*time.Millisecond || high != 1600*time.Millisecond {
		t.Errorf("wall time = %v, %v", low, high)
	}
	if _, err := New(Plan{Tiers: map[prompt.Tier][]Model{prompt.TierSimple: {cheap}}, Classifier: byPrefix{}, CountTokens: func(string) int { return 0 }}); err == nil {
		t.Error("a plan without moderate and complex models was accepted")
	}
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
