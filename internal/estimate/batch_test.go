package estimate

import (
	"strings"
	"testing"

	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

// A batch-mode model is estimated at its batch price.
func TestFromRoutesBatchPrice(t *testing.T) {
	t.Parallel()
	src := "tiers:\n  simple: [openai/gpt-4o-mini, openai/gpt-4o]\n  moderate: [openai/gpt-4o]\n  complex: [openai/gpt-4o]\n" +
		"models:\n  openai/gpt-4o-mini:\n    batch: true\n  openai/gpt-4o: {rpm: 500, tpm: 30000, max_concurrency: 7}\n"
	rt, err := config.ParseRoutes("routes.yaml", strings.NewReader(src), pricing.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	p := FromRoutes(rt, byPrefix{}, nil)
	simple := p.Tiers[prompt.TierSimple]
	mini, _ := pricing.Builtin().Lookup("openai/gpt-4o-mini")
	full, _ := pricing.Builtin().Lookup("openai/gpt-4o")
	if simple[0].Price != mini.Batch() || simple[1].Price != full {
		t.Errorf("prices = %+v, %+v; want the batch price for the batch-mode model only", simple[0].Price, simple[1].Price)
	}
	if !simple[0].Batch || simple[1].Batch || simple[1].Limits != (Limits{RPM: 500, TPM: 30000, MaxConcurrency: 7}) {
		t.Errorf("models = %+v; want the first in batch mode, the second with the declared limits", simple)
	}
}
