package pricing

import (
	"math"
	"sync"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }

func TestCost(t *testing.T) {
	t.Parallel()
	haiku := Price{InputPerMTok: 1, OutputPerMTok: 5, CacheReadPerMTok: 0.10, CacheWritePerMTok: 1.25}
	tests := []struct {
		name string
		p    Price
		u    Usage
		want float64
	}{
		{"zero usage", haiku, Usage{}, 0},
		{"input and output", haiku, Usage{InputTokens: 1000, OutputTokens: 500}, (1000*1 + 500*5) / 1e6},
		{"cache read and write", haiku,
			Usage{InputTokens: 100, OutputTokens: 200, CacheReadTokens: 10000, CacheWriteTokens: 2000},
			(100*1 + 200*5 + 10000*0.10 + 2000*1.25) / 1e6},
		{"one million output tokens", Price{InputPerMTok: 2.5, OutputPerMTok: 10}, Usage{OutputTokens: 1_000_000}, 10},
		{"unknown cache prices fall back to input", Price{InputPerMTok: 2, OutputPerMTok: 8},
			Usage{CacheReadTokens: 1000, CacheWriteTokens: 1000}, (1000*2 + 1000*2) / 1e6},
		{"free model", Price{}, Usage{InputTokens: 5, OutputTokens: 5, CacheReadTokens: 5}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Cost(tt.u); !near(got, tt.want) {
				t.Errorf("Cost(%+v) = %v, want %v", tt.u, got, tt.want)
			}
		})
	}
}

func TestBuiltin(t *testing.T) {
	t.Parallel()
	tab := Builtin()
	if tab.AsOf() == "" {
		t.Fatal("AsOf is empty")
	}
	want := map[string]Price{
		"sim/claude-haiku":  {InputPerMTok: 1, OutputPerMTok: 5, CacheReadPerMTok: 0.1, CacheWritePerMTok: 1.25, ContextWindow: 200000, MaxOutputTokens: 64000},
		"sim/gpt-4o-mini":   {InputPerMTok: 0.15, OutputPerMTok: 0.60, CacheReadPerMTok: 0.075, ContextWindow: 128000, MaxOutputTokens: 16384},
		"sim/llama-3.3-70b": {InputPerMTok: 0.59, OutputPerMTok: 0.79, ContextWindow: 128000, MaxOutputTokens: 32768},
		"sim/small":         {InputPerMTok: 0.25, OutputPerMTok: 1.25, ContextWindow: 128000, MaxOutputTokens: 16384},
		"sim/medium":        {InputPerMTok: 1, OutputPerMTok: 4, ContextWindow: 128000, MaxOutputTokens: 16384},
		"sim/large":         {InputPerMTok: 3, OutputPerMTok: 15, ContextWindow: 128000, MaxOutputTokens: 16384},
	}
	for m, w := range want {
		got, ok := tab.Lookup(m)
		if !ok || got != w {
			t.Errorf("Lookup(%q) = %+v, %v; want %+v", m, got, ok, w)
		}
	}
	// Every model the brief lists is priced, with an input price, an output
	// price and a context window.
	for _, m := range []string{
		"openai/gpt-4o", "openai/gpt-4o-mini", "openai/gpt-4.1", "openai/gpt-4.1-mini", "openai/gpt-4.1-nano",
		"openai/gpt-5", "openai/gpt-5-mini", "openai/gpt-5-nano",
		"anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-5", "anthropic/claude-opus-4-1",
		"anthropic/claude-haiku-4-5-20251001", "anthropic/claude-sonnet-4-5-20250929",
		"gemini/gemini-2.5-flash", "gemini/gemini-2.5-flash-lite", "gemini/gemini-2.5-pro",
		"groq/llama-3.3-70b-versatile", "groq/llama-3.1-8b-instant",
		"sim/gpt-4o", "sim/claude-sonnet",
	} {
		p, ok := tab.Lookup(m)
		if !ok || p.InputPerMTok <= 0 || p.OutputPerMTok <= 0 || p.ContextWindow <= 0 {
			t.Errorf("Lookup(%q) = %+v, %v", m, p, ok)
		}
	}
	// Dated aliases carry their family's price; Anthropic cache prices follow
	// the 0.1x / 1.25x rule.
	a, _ := tab.Lookup("anthropic/claude-sonnet-4-5-20250929")
	b, _ := tab.Lookup("anthropic/claude-sonnet-4-5")
	if a != b {
		t.Errorf("alias price %+v != %+v", a, b)
	}
	for _, m := range []string{"anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-5", "anthropic/claude-opus-4-1"} {
		p, _ := tab.Lookup(m)
		if !near(p.CacheReadPerMTok, p.InputPerMTok*0.1) || !near(p.CacheWritePerMTok, p.InputPerMTok*1.25) {
			t.Errorf("%s cache prices %+v", m, p)
		}
	}
	if _, ok := tab.Lookup("anthropic/claude-haiku-4-20250514"); ok {
		t.Error("the article's non-existent model id is priced")
	}
}

func TestBuiltinCopiesAreIndependent(t *testing.T) {
	t.Parallel()
	a, b := Builtin(), Builtin()
	a.Set("sim/small", Price{InputPerMTok: 99})
	if p, _ := b.Lookup("sim/small"); p.InputPerMTok == 99 {
		t.Fatal("Set on one Builtin table changed another")
	}
}

func TestTableSetLookupConcurrent(t *testing.T) {
	t.Parallel()
	tab := New()
	if _, ok := tab.Lookup("x/y"); ok {
		t.Fatal("empty table has a price")
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				tab.Set("x/y", Price{InputPerMTok: float64(i*1000 + j)})
				tab.Lookup("x/y")
			}
		}()
	}
	wg.Wait()
	if ms := tab.Models(); len(ms) != 1 || ms[0] != "x/y" {
		t.Fatalf("Models() = %v", ms)
	}
}

func TestParseBuiltinErrors(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"no date":       `{"models": {}}`,
		"no price":      `{"prices_as_of": "2026-01-01", "models": {"a/b": {"input": 1}}}`,
		"bad alias":     `{"prices_as_of": "2026-01-01", "models": {"a/b": {"alias_of": "a/c"}}}`,
		"unknown key":   `{"prices_as_of": "2026-01-01", "models": {"a/b": {"input": 1, "output": 1, "inptu": 2}}}`,
		"not an object": `[]`,
	} {
		if _, _, err := parseBuiltin([]byte(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
