package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

func TestDefaultRoutesAreTheArticlesTiers(t *testing.T) {
	t.Parallel()
	r, err := config.LoadRoutes("", pricing.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	want := map[prompt.Tier][]string{
		prompt.TierSimple:   {"sim/claude-haiku", "sim/gpt-4o-mini", "sim/llama-3.3-70b"},
		prompt.TierModerate: {"sim/gpt-4o", "sim/claude-sonnet", "sim/llama-3.3-70b"},
		prompt.TierComplex:  {"sim/claude-sonnet", "sim/gpt-4o", "sim/claude-haiku"},
	}
	for tier, models := range want {
		if got := strings.Join(r.Tiers[tier], ","); got != strings.Join(models, ",") {
			t.Errorf("tier %s = %s, want %s", tier, got, strings.Join(models, ","))
		}
	}
	if len(r.Models) != 5 {
		t.Errorf("resolved %d models, want 5", len(r.Models))
	}
	haiku := r.Models["sim/claude-haiku"]
	if haiku.Timeout != 10*time.Second || haiku.MaxRetries != 1 || haiku.Sim == nil || haiku.Sim.Latency != 40*time.Millisecond {
		t.Errorf("sim/claude-haiku = %+v", haiku)
	}
	if haiku.Price.InputPerMTok != 1 || haiku.Price.OutputPerMTok != 5 {
		t.Errorf("sim/claude-haiku price = %+v, want the built-in $1/$5", haiku.Price)
	}
	if got, want := r.Classifier, classify.DefaultRules(); strings.Join(got.ComplexKeywords, ",") != strings.Join(want.ComplexKeywords, ",") || got.ComplexLongWords != 50 || got.ModerateLongWords != 30 {
		t.Errorf("classifier = %+v, want the article's", got)
	}
	if q := r.Quality; q.LongPromptWords != 20 || q.MinResponseWords != 15 || len(q.RefusalPhrases) != 5 {
		t.Errorf("quality = %+v, want the article's", q)
	}
	if _, err := cascade.New(r.CascadeSettings(1), mustRegistry(t, r), nil); err != nil {
		t.Fatalf("default routes do not build a cascade: %v", err)
	}
}

func mustRegistry(t *testing.T, r *config.Routes) *llm.Registry {
	t.Helper()
	reg, err := config.Registry(r, config.ProviderKeys{}, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestRoutesFileOverridesAndDefaults(t *testing.T) {
	t.Parallel()
	r, err := config.ParseRoutes("r.yaml", strings.NewReader(`
tiers:
  simple:   [sim/small, sim/medium, sim/large]
  moderate: [sim/medium, sim/large]
  complex:  [sim/large]
models:
  sim/small:
    latency: 0s
    timeout: 2s
    max_retries: 3
    error_rate: 0.1
    rate_limit_rate: 0.05
    timeout_rate: 0.0
    weak_rate: 0.2
    input_cost_per_mtok: 0.5
    output_cost_per_mtok: 1.5
    context_window: 4096
classifier:
  complex_long_words: 80
quality:
  min_response_words: 5
cooldown: {failures: 3, period: 1m}
`), pricing.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	s := r.Models["sim/small"]
	if s.Timeout != 2*time.Second || s.MaxRetries != 3 || s.Price.InputPerMTok != 0.5 || s.Price.OutputPerMTok != 1.5 || s.Price.ContextWindow != 4096 {
		t.Errorf("sim/small = %+v", s)
	}
	if s.Sim.Latency != 0 || s.Sim.ErrorRate != 0.1 || s.Sim.RateLimitRate != 0.05 || s.Sim.TimeoutRate != 0 || s.Sim.WeakRate != 0.2 {
		t.Errorf("sim/small behaviour = %+v", *s.Sim)
	}
	if m := r.Models["sim/large"]; m.Timeout != config.DefaultModelTimeout || m.MaxRetries != config.DefaultModelMaxRetries || m.Price.InputPerMTok == 0 {
		t.Errorf("sim/large (not in models:) = %+v, want defaults and built-in price", m)
	}
	if r.Classifier.ComplexLongWords != 80 || r.Classifier.ModerateLongWords != 30 || len(r.Classifier.ComplexKeywords) == 0 {
		t.Errorf("classifier = %+v: one key overridden, the rest default", r.Classifier)
	}
	if r.Quality.MinResponseWords != 5 || r.Quality.LongPromptWords != 20 {
		t.Errorf("quality = %+v", r.Quality)
	}
	if r.Cooldown.Failures != 3 || r.Cooldown.Period != time.Minute {
		t.Errorf("cooldown = %+v", r.Cooldown)
	}
}

func TestRoutesFileErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	const tiers = "tiers:\n  simple: [sim/small]\n  moderate: [sim/small]\n  complex: [sim/small]\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"empty file", "", "empty routes file"},
		{"unknown top-level key", tiers + "tiers_typo: {}\n", "field tiers_typo not found"},
		{"no tiers", "models: {}\n", "tiers: missing"},
		{"missing tier", "tiers:\n  simple: [sim/small]\n  moderate: [sim/small]\n", "tiers.complex: missing"},
		{"empty tier", "tiers:\n  simple: []\n  moderate: [sim/small]\n  complex: [sim/small]\n", "tiers.simple: empty"},
		{"unknown tier", tiers + "  expert: [sim/small]\n", "tiers.expert: unknown tier"},
		{"unknown model", "tiers:\n  simple: [sim/nope]\n  moderate: [sim/small]\n  complex: [sim/small]\n", `tiers.simple[0]: unknown model "sim/nope"`},
		{"bad model name", "tiers:\n  simple: [gpt4]\n  moderate: [sim/small]\n  complex: [sim/small]\n", `tiers.simple[0]: model "gpt4": want "provider/model"`},
		{"unknown provider", "tiers:\n  simple: [acme/x]\n  moderate: [sim/small]\n  complex: [sim/small]\n", `unknown provider "acme"`},
		{"model twice", "tiers:\n  simple: [sim/small, sim/small]\n  moderate: [sim/small]\n  complex: [sim/small]\n", `tiers.simple[1]: "sim/small" is listed twice`},
		{"bad duration", tiers + "models:\n  sim/small: {timeout: soon}\n", `invalid duration "soon"`},
		{"negative timeout", tiers + "models:\n  sim/small: {timeout: -1s}\n", "models.sim/small.timeout: must be > 0"},
		{"retries", tiers + "models:\n  sim/small: {max_retries: 11}\n", "models.sim/small.max_retries: must be between 0 and 10"},
		{"rate over 1", tiers + "models:\n  sim/small: {error_rate: 1.5}\n", "models.sim/small.error_rate"},
		{"negative cost", tiers + "models:\n  sim/small: {input_cost_per_mtok: -1}\n", "models.sim/small.input_cost_per_mtok: must be >= 0"},
		{"no price", "tiers:\n  simple: [sim/custom]\n  moderate: [sim/small]\n  complex: [sim/small]\nmodels:\n  sim/custom: {latency: 1ms}\n", "models.sim/custom: no built-in price"},
		{"sim key on real model", tiers + "models:\n  openai/gpt-4o: {error_rate: 0.1}\n", "models.openai/gpt-4o.error_rate: only simulated (sim/) models take this key"},
		{"classifier", tiers + "classifier: {complex_min_hits: 0}\n", "classifier.complex_min_hits"},
		{"quality", tiers + "quality: {refusal_phrases: ['  ']}\n", "quality.refusal_phrases[0]"},
		{"backoff", tiers + "backoff: {base: 1s, max: 10ms}\n", "backoff.max: must be >= backoff.base"},
		{"cooldown", tiers + "cooldown: {failures: 2}\n", "cooldown.period: must be > 0"},
		{"provider without url", tiers + "providers:\n  vllm: {api_key_env: VLLM_KEY}\n", "providers.vllm.base_url: required"},
		{"builtin provider redeclared", tiers + "providers:\n  openai: {base_url: 'http://x'}\n", `providers.openai: "openai" is a built-in provider`},
		{"wrong type", "tiers: [a, b]\n", "r.yaml: yaml: unmarshal errors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.ParseRoutes("r.yaml", strings.NewReader(tc.yaml), pricing.Builtin())
			if err == nil {
				t.Fatalf("no error; want one containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "r.yaml") {
				t.Fatalf("error = %q\nwant it to start with the file name and contain %q", err, tc.want)
			}
		})
	}
}

func TestRegistryNeedsKeysOnlyForProvidersInUse(t *testing.T) {
	t.Parallel()
	r, err := config.ParseRoutes("r.yaml", strings.NewReader(`
tiers:
  simple:   [sim/small, openai/gpt-4o-mini]
  moderate: [anthropic/claude-sonnet-4-5]
  complex:  [anthropic/claude-sonnet-4-5]
`), pricing.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	none := func(string) (string, bool) { return "", false }
	_, err = config.Registry(r, config.ProviderKeys{AnthropicKey: "k"}, none)
	if err == nil || !strings.Contains(err.Error(), "OPENAI_API_KEY") || !strings.Contains(err.Error(), "openai/gpt-4o-mini") {
		t.Fatalf("err = %v, want it to name OPENAI_API_KEY and the model", err)
	}
	reg, err := config.Registry(r, config.ProviderKeys{AnthropicKey: "k", OpenAIKey: "k"}, none)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(reg.Names(), ","); got != "anthropic,openai,sim" {
		t.Fatalf("registered %s, want anthropic,openai,sim (no gemini or groq: unused)", got)
	}
	// A base-URL override (a local server) needs no key.
	if _, err := config.Registry(r, config.ProviderKeys{AnthropicKey: "k", OpenAIBaseURL: "http://127.0.0.1:1"}, none); err != nil {
		t.Fatalf("with OPENAI_BASE_URL and no key: %v", err)
	}
}
