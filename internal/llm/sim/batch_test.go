package sim_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/sim"
	"github.com/promptcascade/promptcascade/internal/providerbatch"
	"github.com/promptcascade/promptcascade/internal/providerbatch/batchtest"
)

func TestBatchConformance(t *testing.T) {
	t.Parallel()
	batchtest.Run(t, batchtest.Harness{
		Model: "small",
		New: func(t testing.TB, _ batchtest.Env) providerbatch.Client {
			return sim.New(map[string]sim.Model{"small": {Capability: 1}})
		},
		KeepsLabel:   true,
		ExpiredAs:    llm.ItemExpired,
		CanceledEnds: llm.BatchEnded,
	})
}

// Batch mode's delay and expiry share: a batch runs until its delay has
// passed, and about the configured share of its requests expire.
func TestBatchDelayAndExpiry(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := sim.New(map[string]sim.Model{"small": {Capability: 1}})
	p.SetBatch("", sim.BatchConfig{Now: func() time.Time { return now }})
	p.SetBatch("small", sim.BatchConfig{Delay: time.Hour, ExpireRate: 0.3})
	var reqs []llm.BatchRequest
	for i := range 1000 {
		reqs = append(reqs, llm.BatchRequest{CustomID: fmt.Sprint("r", i), Request: llm.Request{Prompt: "What is the capital of France?", Seed: uint64(i)}})
	}
	ctx := context.Background()
	b, err := p.SubmitBatch(ctx, "l", "small", reqs)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := p.GetBatch(ctx, b.ID); got.State != llm.BatchRunning {
		t.Fatalf("batch is %s before its delay, want running", got.State)
	}
	if _, err := p.BatchResults(ctx, b.ID); err == nil {
		t.Fatal("results of a running batch were returned")
	}
	now = now.Add(time.Hour)
	if got, _ := p.GetBatch(ctx, b.ID); got.State != llm.BatchEnded {
		t.Fatalf("batch is %s after its delay, want ended", got.State)
	}
	rs, err := p.BatchResults(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	expired := 0
	for _, r := range rs {
		if r.State == llm.ItemExpired {
			expired++
		}
	}
	if len(rs) != 1000 || expired < 250 || expired > 350 {
		t.Errorf("%d results, %d expired; want 1000 and about 300", len(rs), expired)
	}
	if _, err := p.GetBatch(ctx, "simbatch_nope"); llm.ClassOf(err) != llm.ClassNotFound {
		t.Errorf("unknown batch: %v, want not_found", err)
	}
}
