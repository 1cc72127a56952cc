package main

import (
	"log/slog"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/pgtest"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/store"
)

// A batch with its own routes (enqueue --routes) has model_prices rows of
// those routes' models and prices, not of the worker's; a batch without
// has the worker's.
func TestModelPricesOfABatchWithItsOwnRoutes(t *testing.T) {
	ctx := t.Context()
	prices, err := config.LoadPrices("")
	if err != nil {
		t.Fatal(err)
	}
	workerRoutes, err := config.LoadRoutes("", prices)
	if err != nil {
		t.Fatal(err)
	}
	var st *store.Store
	st, err = store.Open(ctx, pgtest.Schema(t), store.WithMaxConns(3),
		store.WithPrices(batchPrices(func() routesSource { return st }, prices, routePrices(workerRoutes), slog.New(slog.DiscardHandler))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	own := []byte(`
tiers:
  simple:   [sim/own]
  moderate: [sim/own]
  complex:  [sim/own]
models:
  sim/own:
    input_cost_per_mtok: 7
    output_cost_per_mtok: 9
`)
	if _, _, err := st.SetBatchRoutes(ctx, "mine", "own.yaml", own); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var rs []prompt.Result
	for _, batch := range []string{"mine", "plain"} {
		rs = append(rs, prompt.Result{Job: prompt.Job{BatchID: batch, ID: "1", Prompt: "hi"}, Tier: prompt.TierSimple,
			Status: prompt.StatusSucceeded, ModelUsed: "sim/x", Response: "hello", CompletedAt: now,
			Attempts: []prompt.Attempt{{Attempt: 1, Model: "sim/x", Outcome: prompt.OutcomeOK, StartedAt: now}}})
	}
	if _, err := st.Write(ctx, rs); err != nil {
		t.Fatal(err)
	}

	got, err := st.ModelPrices(ctx, "mine")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Model != "sim/own" || got[0].InputPerMTok != 7 || got[0].OutputPerMTok != 9 || len(got[0].Tiers) != 3 {
		t.Fatalf("model_prices of the batch with its own routes: %+v, want sim/own at $7/$9 in every tier", got)
	}
	plain, err := st.ModelPrices(ctx, "plain")
	if err != nil {
		t.Fatal(err)
	}
	if want := routePrices(workerRoutes); len(plain) != len(want) || len(want) == 0 || plain[0].Model != want[0].Model {
		t.Fatalf("model_prices of a batch on the worker's routes: %+v, want %+v", plain, want)
	}
}
