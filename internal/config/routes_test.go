package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/config"
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
	if haiku.Timeout != 10*time.Second || haiku.MaxRetries != 1 || haiku.Sim == nil || *haiku.Sim.Latency != 40*time.Millisecond {
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
    hedge_after: 150ms
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
	if s.HedgeAfter != 150*time.Millisecond || r.Models["sim/medium"].HedgeAfter != 0 {
		t.Errorf("hedge_after: sim/small %v, sim/medium %v; want 150ms and 0 (off)", s.HedgeAfter, r.Models["sim/medium"].HedgeAfter)
	}
	if s.Timeout != 2*time.Second || s.MaxRetries != 3 || s.Price.InputPerMTok != 0.5 || s.Price.OutputPerMTok != 1.5 || s.Price.ContextWindow != 4096 {
		t.Errorf("sim/small = %+v", s)
	}
	if sm := s.Sim; *sm.Latency != 0 || *sm.ErrorRate != 0.1 || *sm.RateLimitRate != 0.05 || *sm.TimeoutRate != 0 || *sm.WeakRate != 0.2 || sm.Capability != nil {
		t.Errorf("sim/small behaviour = %+v", *s.Sim)
	}
	if m := r.Models["sim/large"]; m.Timeout != 0 || m.MaxRetries != config.DefaultModelMaxRetries || m.Price.InputPerMTok == 0 {
		t.Errorf("sim/large (not in models:) = %+v, want the cascade's timeout (0), the default retries and the built-in price", m)
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

// TestRoutesFileErrorsNameTheKey: every error is exactly one line
// "file:line: key: what", with the line of the offending key or value and
// no Go type names.
func TestRoutesFileErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	const tiers = "tiers:\n  simple: [sim/small]\n  moderate: [sim/small]\n  complex: [sim/small]\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"empty file", "", "r.yaml: empty file"},
		{"comments only", "# nothing\n", "r.yaml: empty file"},
		{"unknown top-level key", tiers + "tiers_typo: {}\n", `r.yaml:5: unknown key "tiers_typo"`},
		{"top-level typo", tiers + "cooldwn: {}\n", `r.yaml:5: unknown key "cooldwn" (did you mean "cooldown"?)`},
		{"model key typo", tiers + "models:\n  sim/small:\n    latency: 1ms\n    timout: 2s\n", `r.yaml:8: models.sim/small: unknown key "timout" (did you mean "timeout"?)`},
		{"no tiers", "models: {}\n", "r.yaml: tiers: missing (want simple, moderate and complex)"},
		{"missing tier", "tiers:\n  simple: [sim/small]\n  moderate: [sim/small]\n", "r.yaml:1: tiers.complex: missing"},
		{"empty tier", "tiers:\n  simple: []\n  moderate: [sim/small]\n  complex: [sim/small]\n", "r.yaml:2: tiers.simple: empty; list at least one model"},
		{"unknown tier", tiers + "  expert: [sim/small]\n", "r.yaml:5: tiers.expert: unknown tier (want simple, moderate, complex)"},
		{"unknown model", "tiers:\n  simple: [sim/nope]\n  moderate: [sim/small]\n  complex: [sim/small]\n", `r.yaml:2: tiers.simple[0]: unknown model "sim/nope": not under models: and no built-in price (add it under models: with input_cost_per_mtok and output_cost_per_mtok)`},
		{"bad model name", "tiers:\n  simple: [gpt4]\n  moderate: [sim/small]\n  complex: [sim/small]\n", `r.yaml:2: tiers.simple[0]: model "gpt4": want "provider/model"`},
		{"unknown provider", "tiers:\n  simple: [sim/small]\n  moderate: [sim/small]\n  complex:\n    - acme/x\n", `r.yaml:5: tiers.complex[0]: model "acme/x": unknown provider "acme" (built in: sim, openai, anthropic, gemini, groq; declare others under providers:)`},
		{"model twice", "tiers:\n  simple: [sim/small, sim/small]\n  moderate: [sim/small]\n  complex: [sim/small]\n", `r.yaml:2: tiers.simple[1]: "sim/small" is listed twice`},
		{"bad duration", tiers + "models:\n  sim/small: {timeout: soon}\n", `r.yaml:6: models.sim/small.timeout: invalid duration "soon"; want one like "250ms", "10s" or "1m"`},
		{"negative timeout", tiers + "models:\n  sim/small: {timeout: -1s}\n", "r.yaml:6: models.sim/small.timeout: must be > 0, got -1s"},
		{"negative hedge_after", tiers + "models:\n  sim/small:\n    hedge_after: -5ms\n", "r.yaml:7: models.sim/small.hedge_after: must not be negative, got -5ms"},
		{"bad hedge_after", tiers + "models:\n  sim/small: {hedge_after: p95}\n", `r.yaml:6: models.sim/small.hedge_after: invalid duration "p95"; want one like "250ms", "10s" or "1m"`},
		{"retries", tiers + "models:\n  sim/small:\n    max_retries: 11\n", "r.yaml:7: models.sim/small.max_retries: must be between 0 and 10, got 11"},
		{"retries not a number", tiers + "models:\n  sim/small: {max_retries: many}\n", `r.yaml:6: models.sim/small.max_retries: want an integer, got "many"`},
		{"rate over 1", tiers + "models:\n  sim/small: {error_rate: 1.5}\n", "r.yaml:6: models.sim/small.error_rate: must be between 0 and 1, got 1.5"},
		{"negative cost", tiers + "models:\n  sim/small: {input_cost_per_mtok: -1}\n", "r.yaml:6: models.sim/small.input_cost_per_mtok: must be >= 0, got -1"},
		{"no price", "tiers:\n  simple: [sim/custom]\n  moderate: [sim/small]\n  complex: [sim/small]\nmodels:\n  sim/custom: {latency: 1ms}\n", "r.yaml:6: models.sim/custom: no built-in price; set input_cost_per_mtok and output_cost_per_mtok"},
		{"sim key on real model", tiers + "models:\n  openai/gpt-4o: {error_rate: 0.1}\n", "r.yaml:6: models.openai/gpt-4o.error_rate: only simulated (sim/) models take this key"},
		{"a list where a mapping goes", tiers + "models:\n  sim/small: [1, 2]\n", "r.yaml:6: models.sim/small: want a mapping of keys, got a list"},
		{"key twice", tiers + "models:\n  sim/small: {timeout: 1s}\n  sim/small: {timeout: 2s}\n", `r.yaml:7: models: key "sim/small" given twice (first on line 6)`},
		{"classifier", tiers + "classifier: {complex_min_hits: 0}\n", "r.yaml:5: classifier.complex_min_hits: must be >= 1, got 0"},
		{"quality", tiers + "quality: {refusal_phrases: ['  ']}\n", "r.yaml:5: quality.refusal_phrases[0]: empty phrase would fail every answer"},
		{"backoff", tiers + "backoff: {base: 1s, max: 10ms}\n", "r.yaml:5: backoff.max: must be >= backoff.base (1s), got 10ms"},
		{"cooldown", tiers + "cooldown: {failures: 2}\n", "r.yaml:5: cooldown.period: must be > 0 when cooldown.failures is set"},
		{"provider without url", tiers + "providers:\n  vllm: {api_key_env: VLLM_KEY}\n", "r.yaml:6: providers.vllm.base_url: required"},
		{"builtin provider redeclared", tiers + "providers:\n  openai: {base_url: 'http://x'}\n", `r.yaml:6: providers.openai: "openai" is a built-in provider; configure it with OPENAI_BASE_URL`},
		{"provider flag not a bool", tiers + "providers:\n  vllm: {base_url: 'http://x', legacy_max_tokens: maybe}\n", `r.yaml:6: providers.vllm.legacy_max_tokens: want true or false, got "maybe"`},
		{"wrong type", "tiers: [a, b]\n", "r.yaml:1: tiers: want a mapping of keys, got a list"},
		{"YAML syntax error on line 2", "tiers: {}\nmodels: x: y\n", "r.yaml:2: invalid YAML: mapping value is not allowed in this context"},
		{"unclosed list on line 2", "tiers:\n  simple: [sim/small\n  moderate: [sim/small]\n", "r.yaml:3: invalid YAML: ',' or ']' must be specified"},
		{"tab on line 3", "tiers:\n  simple: [sim/small]\n\tmoderate: [sim/small]\n", "r.yaml:3: invalid YAML: found character '\t' that cannot start any token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.ParseRoutes("r.yaml", strings.NewReader(tc.yaml), pricing.Builtin())
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			if err.Error() != tc.want {
				t.Fatalf("error = %q\nwant    %q", err, tc.want)
			}
			var fe *config.FileError
			if !errors.As(err, &fe) || fe.File != "r.yaml" {
				t.Fatalf("error %v is not a *config.FileError for r.yaml", err)
			}
		})
	}
}

// TestRoutesFileListsEveryError: one bad file reports all its problems,
// in line order, each on its own line.
func TestRoutesFileListsEveryError(t *testing.T) {
	t.Parallel()
	_, err := config.ParseRoutes("routes.yaml", strings.NewReader(`tiers:
  simple: [sim/small]
  moderate: [sim/small]
  complex: [sim/small, sim/nope]
models:
  sim/small:
    latency: 1ms
    timout: 2s
    error_rate: 2
backoff: {base: soon}
`), pricing.Builtin())
	if err == nil {
		t.Fatal("no error")
	}
	want := strings.Join([]string{
		`routes.yaml:4: tiers.complex[1]: unknown model "sim/nope": not under models: and no built-in price (add it under models: with input_cost_per_mtok and output_cost_per_mtok)`,
		`routes.yaml:8: models.sim/small: unknown key "timout" (did you mean "timeout"?)`,
		`routes.yaml:9: models.sim/small.error_rate: must be between 0 and 1, got 2`,
		`routes.yaml:10: backoff.base: invalid duration "soon"; want one like "250ms", "10s" or "1m"`,
	}, "\n")
	if err.Error() != want {
		t.Fatalf("error =\n%s\nwant\n%s", err, want)
	}
	for _, bad := range []string{"config.", "rawModel", "not found in type", "unmarshal"} {
		if strings.Contains(err.Error(), bad) {
			t.Errorf("error shows Go internals (%q): %s", bad, err)
		}
	}
}
