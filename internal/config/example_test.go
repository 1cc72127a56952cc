package config_test

import (
	"fmt"
	"strings"

	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/pricing"
)

// A routes file names each tier's models in order; prices come from the
// file or from the built-in table.
func ExampleParseRoutes() {
	r, err := config.ParseRoutes("routes.yaml", strings.NewReader(`
tiers:
  simple:   [sim/small, sim/medium]
  moderate: [sim/medium, sim/large]
  complex:  [sim/large]
models:
  sim/small: {latency: 0s, timeout: 5s, input_cost_per_mtok: 0.2, output_cost_per_mtok: 1}
`), pricing.Builtin())
	if err != nil {
		fmt.Println(err)
		return
	}
	small := r.Models["sim/small"]
	fmt.Println(r.Tiers["simple"], small.Timeout, small.Price.InputPerMTok)

	_, err = config.ParseRoutes("bad.yaml", strings.NewReader("tiers:\n  simple: []\n  moderate: [sim/small]\n  complex: [sim/small]\n"), pricing.Builtin())
	fmt.Println(err)
	// Output:
	// [sim/small sim/medium] 5s 0.2
	// bad.yaml:2: tiers.simple: empty; list at least one model
}
