package config_test

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

// The example routes files shipped in routes/ must load as they are.

const (
	realRoutes   = "../../routes/real.yaml"
	compatRoutes = "../../routes/compat.yaml"
)

func TestExampleRoutesRealLoads(t *testing.T) {
	t.Parallel()
	rt, err := config.LoadRoutes(realRoutes, pricing.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	// The article's tiers, with current ids in the same positions.
	want := map[prompt.Tier][]string{
		prompt.TierSimple:   {"anthropic/claude-haiku-4-5", "openai/gpt-4o-mini", "groq/llama-3.3-70b-versatile"},
		prompt.TierModerate: {"openai/gpt-4.1", "anthropic/claude-sonnet-4-5", "groq/llama-3.3-70b-versatile"},
		prompt.TierComplex:  {"anthropic/claude-sonnet-4-5", "openai/gpt-4.1", "anthropic/claude-haiku-4-5"},
	}
	if !reflect.DeepEqual(rt.Tiers, want) {
		t.Errorf("tiers = %v, want %v", rt.Tiers, want)
	}
	builtin := pricing.Builtin()
	for name, m := range rt.Models {
		p, ok := builtin.Lookup(name)
		if !ok {
			t.Errorf("%s: no built-in price", name)
			continue
		}
		if m.Price != p {
			t.Errorf("%s: price %+v, want the built-in %+v", name, m.Price, p)
		}
		if m.Sim != nil {
			t.Errorf("%s: simulated", name)
		}
		if strings.HasSuffix(name, "-4-20250514") {
			t.Errorf("%s: the article's retired or non-existent id", name)
		}
	}
	// Fast-tier models time out after 10 s (the article's advice), the others after 30 s.
	timeouts := map[string]time.Duration{
		"anthropic/claude-haiku-4-5": 10 * time.Second, "openai/gpt-4o-mini": 10 * time.Second,
		"groq/llama-3.3-70b-versatile": 10 * time.Second, "openai/gpt-4.1": 30 * time.Second,
		"anthropic/claude-sonnet-4-5": 30 * time.Second,
	}
	for name, d := range timeouts {
		if got := rt.Models[name].Timeout; got != d {
			t.Errorf("%s: timeout %v, want %v", name, got, d)
		}
		if got := rt.Models[name].MaxRetries; got < 1 {
			t.Errorf("%s: max_retries %d, want >= 1", name, got)
		}
	}
	if len(rt.Models) != len(timeouts) {
		t.Errorf("%d models, want %d", len(rt.Models), len(timeouts))
	}
	cd := rt.Cooldown
	if cd.Failures != 5 || cd.Period != 30*time.Second || cd.Window != time.Minute || cd.MaxFailureShare != 0.5 || cd.MinCalls != 20 {
		t.Errorf("cooldown = %+v", cd)
	}
	if got := rt.ProviderNames(); !reflect.DeepEqual(got, []string{"anthropic", "groq", "openai"}) {
		t.Errorf("providers = %v", got)
	}
}

// TestExampleRoutesRealNeedsNoInlinePrices: real.yaml states no price; every
// price comes from the table, so without it the file is refused, naming a
// model.
func TestExampleRoutesRealNeedsNoInlinePrices(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(realRoutes)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Models map[string]map[string]any `yaml:"models"`
	}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for name, keys := range raw.Models {
		for k := range keys {
			if strings.Contains(k, "cost") || k == "context_window" {
				t.Errorf("models.%s.%s: real.yaml should take prices from the built-in table", name, k)
			}
		}
	}
	_, err = config.LoadRoutes(realRoutes, pricing.New())
	if err == nil || !strings.Contains(err.Error(), "no built-in price") {
		t.Fatalf("with an empty price table: err = %v, want models refused for want of a price", err)
	}
}

func TestExampleRoutesCompatLoads(t *testing.T) {
	t.Parallel()
	rt, err := config.LoadRoutes(compatRoutes, pricing.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	wantProviders := map[string]config.Provider{
		"vllm":   {Name: "vllm", BaseURL: "http://127.0.0.1:8000", APIKeyEnv: "VLLM_API_KEY"},
		"ollama": {Name: "ollama", BaseURL: "http://127.0.0.1:11434", LegacyMaxTokens: true},
	}
	if !reflect.DeepEqual(rt.Providers, wantProviders) {
		t.Errorf("providers = %+v, want %+v", rt.Providers, wantProviders)
	}
	prices := map[string]pricing.Price{
		"ollama/llama3.2:3b":                    {ContextWindow: 8192},
		"vllm/meta-llama/Llama-3.1-8B-Instruct": {InputPerMTok: 0.02, OutputPerMTok: 0.05, ContextWindow: 32768},
		"vllm/Qwen/Qwen2.5-32B-Instruct":        {InputPerMTok: 0.10, OutputPerMTok: 0.30, ContextWindow: 32768},
	}
	for name, p := range prices {
		if got := rt.Models[name].Price; got != p {
			t.Errorf("%s: price %+v, want %+v (from the file)", name, got, p)
		}
	}
	sonnet, _ := pricing.Builtin().Lookup("anthropic/claude-sonnet-4-5")
	if got := rt.Models["anthropic/claude-sonnet-4-5"]; got.Price != sonnet || got.Timeout != 30*time.Second {
		t.Errorf("anthropic/claude-sonnet-4-5 = %+v, want the built-in price and a 30s timeout", got)
	}
	if got := rt.ProviderNames(); !reflect.DeepEqual(got, []string{"anthropic", "ollama", "vllm"}) {
		t.Errorf("providers = %v", got)
	}
	// The self-hosted models are priced only by the file: without it they
	// would be refused.
	if _, ok := pricing.Builtin().Lookup("vllm/Qwen/Qwen2.5-32B-Instruct"); ok {
		t.Error("vllm model unexpectedly in the built-in table; the test no longer shows in-file prices")
	}
}
