package pricing_test

import (
	"strings"
	"testing"

	"github.com/promptcascade/promptcascade/internal/pricing"
)

func TestBatchPrice(t *testing.T) {
	t.Parallel()
	tab := pricing.New()
	err := tab.LoadLiteLLM(strings.NewReader(`{
		"gpt-4o-mini": {"litellm_provider": "openai", "input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07,
			"input_cost_per_token_batches": 7.5e-08, "output_cost_per_token_batches": 3e-07},
		"odd-model": {"litellm_provider": "openai", "input_cost_per_token": 1e-06, "output_cost_per_token": 4e-06,
			"input_cost_per_token_batches": 2e-07, "output_cost_per_token_batches": 1e-06},
		"claude-haiku-4-5": {"litellm_provider": "anthropic", "input_cost_per_token": 1e-06, "output_cost_per_token": 5e-06,
			"cache_read_input_token_cost": 1e-07, "cache_creation_input_token_cost": 1.25e-06}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	u := pricing.Usage{InputTokens: 1_000_000, OutputTokens: 1_000_000, CacheReadTokens: 1_000_000, CacheWriteTokens: 1_000_000}
	for _, tc := range []struct {
		model     string
		sync, bat float64
	}{
		// listed batch prices; cache tokens charged at the (batch) input price
		{"openai/gpt-4o-mini", 0.15 + 0.60 + 0.15 + 0.15, 0.075 + 0.30 + 0.075 + 0.075},
		// listed batch prices that are not half: the listing wins
		{"openai/odd-model", 1 + 4 + 1 + 1, 0.2 + 1 + 0.2 + 0.2},
		// no listing: half of everything, cache prices included
		{"anthropic/claude-haiku-4-5", 1 + 5 + 0.1 + 1.25, 0.5 + 2.5 + 0.05 + 0.625},
	} {
		p, ok := tab.Lookup(tc.model)
		if !ok {
			t.Fatalf("%s not loaded", tc.model)
		}
		if got := p.Cost(u); !near(got, tc.sync) {
			t.Errorf("%s: sync cost %v, want %v", tc.model, got, tc.sync)
		}
		if got := p.Batch().Cost(u); !near(got, tc.bat) {
			t.Errorf("%s: batch cost %v, want %v", tc.model, got, tc.bat)
		}
	}
	// Every built-in model costs exactly half in batch mode.
	b := pricing.Builtin()
	for _, m := range b.Models() {
		p, _ := b.Lookup(m)
		if s, h := p.Cost(u), p.Batch().Cost(u); !near(h, s/2) {
			t.Errorf("%s: batch cost %v, want half of %v", m, h, s)
		}
	}
}

func TestBatchPriceRejectsBadListing(t *testing.T) {
	t.Parallel()
	err := pricing.New().LoadLiteLLM(strings.NewReader(`{"m": {"litellm_provider": "openai", "input_cost_per_token": 1e-06,
		"output_cost_per_token": 1e-06, "output_cost_per_token_batches": -1}}`))
	if err == nil || !strings.Contains(err.Error(), "output_cost_per_token_batches") {
		t.Fatalf("err = %v, want one naming output_cost_per_token_batches", err)
	}
}

func near(a, b float64) bool { d := a - b; return d < 1e-9 && d > -1e-9 }
