package main

import (
	"bytes"
	"context"
	"log/slog"
	"sort"
	"sync"

	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/store"
)

// routePrices lists the price of every model of routes, with the tiers that
// use it, for model_prices.
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

// routesSource reads a batch's own routes (store.Store).
type routesSource interface {
	BatchRoutesSum(ctx context.Context, batchID string) ([]byte, error)
	Routes(ctx context.Context, sum []byte) (yaml []byte, source string, err error)
}

// batchPrices is the store's PricesFunc: the prices a batch's calls are
// made at, for model_prices (and so the savings view and the report). A
// batch with its own routes (enqueue --routes, retry --routes) is priced
// by those routes, parsed as the worker parses them to run the batch
// (once per routes file and process); any other batch by this worker's
// routes (own). src is called at the first Write (the store it returns
// is the one being opened). A routes file that does not parse any more
// (a pricing file changed since) records no prices for the batch rather
// than failing its results.
func batchPrices(src func() routesSource, prices *pricing.Table, own []store.ModelPrice, log *slog.Logger) store.PricesFunc {
	var mu sync.Mutex
	byRoutes := map[string][]store.ModelPrice{}
	return func(ctx context.Context, batch string) ([]store.ModelPrice, error) {
		sum, err := src().BatchRoutesSum(ctx, batch)
		if err != nil || sum == nil {
			return own, err
		}
		mu.Lock()
		ps, ok := byRoutes[string(sum)]
		mu.Unlock()
		if ok {
			return ps, nil
		}
		yaml, source, err := src().Routes(ctx, sum)
		if err != nil {
			return nil, err
		}
		routes, err := config.ParseRoutes(source, bytes.NewReader(yaml), prices)
		if err != nil {
			log.Warn("batch routes do not parse; no model prices recorded for the batch", "batch", batch, "routes", source, "err", err)
		} else {
			ps = routePrices(routes)
		}
		mu.Lock()
		byRoutes[string(sum)] = ps
		mu.Unlock()
		return ps, nil
	}
}
