package pricing_test

import (
	"fmt"

	"github.com/promptcascade/promptcascade/internal/pricing"
)

func ExamplePrice_Cost() {
	prices := pricing.Builtin()
	p, _ := prices.Lookup("anthropic/claude-haiku-4-5")
	cost := p.Cost(pricing.Usage{InputTokens: 1200, OutputTokens: 300, CacheReadTokens: 10000})
	fmt.Printf("$%.6f\n", cost)
	// Output: $0.003700
}
