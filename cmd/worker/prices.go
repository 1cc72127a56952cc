package main

import (
	"sort"

	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/store"
)

// routePrices lists the price of every model of routes, with the tiers that
// use it, for model_prices: what this worker applies to every batch.
func routePrices(routes *config.Routes) []store.ModelPrice {
	tiers := map[string][]string{}
	for _, t := range prompt.Tiers {
		for _, m := range routes.Tiers[t] {
			tiers[m] = append(tiers[m], string(t))
		}
	}
	out := make([]store.ModelPrice, 0, len(tiers))
	for m, ts := range tiers {
		p := routes.Models[m].Price
		out = append(out, store.ModelPrice{
			Model: m, InputPerMTok: p.InputPerMTok, OutputPerMTok: p.OutputPerMTok,
			CacheReadPerMTok: p.CacheReadPerMTok, CacheWritePerMTok: p.CacheWritePerMTok,
			ContextWindow: p.ContextWindow, Tiers: ts,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Model < out[j].Model })
	return out
}
