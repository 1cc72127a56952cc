package wire_test

import (
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/limit"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/wire"
)

func TestRateLimitKeys(t *testing.T) {
	t.Parallel()
	r, err := config.ParseRoutes("routes.yaml", strings.NewReader(`
on_rate_limit: wait
max_wait: 2m
tiers:
  simple:   [sim/small, openai/gpt-4o-mini]
  moderate: {models: [openai/gpt-4o-mini], on_rate_limit: cascade}
  complex:  [openai/gpt-4o-mini]
models:
  sim/small: {rpm: 600, tpm: 100000, max_concurrency: 8}
  openai/gpt-4o-mini: {rpm: 5000, tpm: 2000000}
`), pricing.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	s := wire.CascadeSettings(r, 1)
	if rl := s.RateLimit; rl.OnRateLimit != cascade.WaitOnRateLimit || rl.MaxWait != 2*time.Minute || len(rl.Tiers) != 1 ||
		rl.Tiers[prompt.TierModerate] != cascade.CascadeOnRateLimit {
		t.Fatalf("rate-limit policy %+v, want wait, 2m, moderate: cascade", rl)
	}
	if got := s.Models["openai/gpt-4o-mini"].Caps; got != (limit.Caps{RPM: 5000, TPM: 2000000}) {
		t.Fatalf("openai caps %+v", got)
	}
	// On a sim model the keys are the simulated provider's capacity; the
	// limiter is not told.
	if got := s.Models["sim/small"].Caps; got != (limit.Caps{}) {
		t.Fatalf("sim/small limiter caps %+v, want none", got)
	}
	sims, err := wire.SimModels(r)
	if err != nil {
		t.Fatal(err)
	}
	if m := sims["small"]; m.RPM != 600 || m.TPM != 100000 || m.MaxConcurrency != 8 {
		t.Fatalf("sim/small capacity %+v", m)
	}
	if got := r.Tiers[prompt.TierModerate]; len(got) != 1 || got[0] != "openai/gpt-4o-mini" {
		t.Fatalf("moderate tier %v", got)
	}

	def, err := config.LoadRoutes("", pricing.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	c, err := wire.Cascade(def, config.ProviderKeys{}, func(string) (string, bool) { return "", false }, 1, nil)
	if err != nil {
		t.Fatalf("default routes: %v", err)
	}
	if rl := wire.CascadeSettings(def, 1).RateLimit; rl.OnRateLimit != cascade.WaitOnRateLimit {
		t.Fatalf("default rate-limit policy %+v, want wait", rl)
	}
	if n := len(c.Limits()); n != 5 {
		t.Fatalf("%d limiters for the default routes' 5 models", n)
	}
}

func TestRateLimitKeyErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ yaml, want string }{
		{"on_rate_limit: later\n", `on_rate_limit: "later" is not wait or cascade`},
		{"max_wait: 0s\n", "max_wait: must be > 0"},
		{"models:\n  openai/gpt-4o-mini: {rpm: -1}\n", "models.openai/gpt-4o-mini.rpm: must be >= 0"},
		{"models:\n  sim/small: {max_concurrency: -2}\n", "models.sim/small.max_concurrency: must be >= 0"},
	} {
		src := "tiers:\n  simple: [sim/small]\n  moderate: [sim/small]\n  complex: {models: [sim/small], on_rate_limit: soon}\n" + tc.yaml
		_, err := config.ParseRoutes("routes.yaml", strings.NewReader(src), pricing.Builtin())
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `routes.yaml:4: tiers.complex.on_rate_limit: "soon" is not wait or cascade`) {
			t.Errorf("%q: error %v, want %q and the tier's bad on_rate_limit at line 4", tc.yaml, err, tc.want)
		}
	}
	_, err := config.ParseRoutes("routes.yaml", strings.NewReader("tiers:\n  simple: {modles: [sim/small]}\n"), pricing.Builtin())
	if err == nil || !strings.Contains(err.Error(), `tiers.simple: unknown key "modles"`) {
		t.Errorf("misspelt tier key: %v", err)
	}
}
