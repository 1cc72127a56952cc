package providerbatch

import (
	"fmt"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/providerbatch/batchfake"
	"github.com/promptcascade/promptcascade/internal/store"
)

// A batch with a budget: each prompt's estimated batch-price cost is held
// before it goes out; once the budget is held the batch pauses and the rest
// wait (not counted as waiting, not submitted); ingesting releases the holds
// in the transaction that logs the calls; cancelling the batch settles the
// prompts that never went out.
func TestBudgetHoldsAndPausedBatches(t *testing.T) {
	t.Parallel()
	b := setup(t, batchfake.OpenAI)
	ctx := t.Context()
	var ids []store.Enqueued
	var prompts []string
	for i := range 10 {
		ids = append(ids, store.Enqueued{ID: fmt.Sprintf("p%03d", i)})
		prompts = append(prompts, longPrompt(i, "ok"))
	}
	if _, err := b.st.RecordEnqueued(ctx, "b1", ids); err != nil {
		t.Fatal(err)
	}
	// Each prompt: ~30 tokens in, 150 out at $0.5/$2 per MTok ≈ $0.000315;
	// $0.0012 holds three (the fourth would go over).
	budget := 0.0012
	if _, _, err := b.st.SetBudget(ctx, "b1", &budget); err != nil {
		t.Fatal(err)
	}
	rs := make([]prompt.Result, len(prompts))
	for i, p := range prompts {
		rs[i] = prompt.Result{Job: prompt.Job{BatchID: "b1", ID: ids[i].ID, Prompt: p},
			Signals: prompt.Signals{TokenCount: 30}, Tier: prompt.TierSimple, Delivery: 1,
			Handoff: &prompt.Handoff{Model: b.name, Position: 0}}
	}
	if _, err := b.st.Write(ctx, rs); err != nil {
		t.Fatal(err)
	}
	r := b.runner(t, Limits{MaxRequests: 100, MaxBytes: 1 << 30, FlushAfter: time.Millisecond, PollEvery: time.Millisecond}, Hooks{})
	if _, err := r.StepOnce(ctx, b.name); err != nil {
		t.Fatal(err)
	}
	count := func(q string) int {
		t.Helper()
		var n int
		if err := b.st.Pool().QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := len(b.fake.Requests()); got != 3 {
		t.Fatalf("%d prompts sent with a budget that holds 3", got)
	}
	if got := count(`SELECT count(*) FROM budget_holds`); got != 3 {
		t.Errorf("%d budget holds, want 3", got)
	}
	if got := count(`SELECT count(*) FROM batches WHERE batch_id = 'b1' AND state = 'paused'`); got != 1 {
		t.Errorf("the batch did not pause when its budget was held")
	}
	for range 6 {
		if _, err := r.StepOnce(ctx, b.name); err != nil {
			t.Fatal(err)
		}
	}
	if got := count(`SELECT count(*) FROM results WHERE batch_id = 'b1'`); got != 3 {
		t.Errorf("%d results, want the 3 submitted", got)
	}
	if got := count(`SELECT count(*) FROM budget_holds`); got != 0 {
		t.Errorf("%d holds left after the ingest, want 0", got)
	}
	if got := count(`SELECT count(*) FROM batches b WHERE batch_id = 'b1'
		AND spent_usd = (SELECT sum(cost_usd) FROM request_log WHERE batch_id = 'b1') AND spent_usd <= budget_usd`); got != 1 {
		t.Errorf("spent_usd does not match request_log or exceeds the budget")
	}
	if n, err := Waiting(ctx, b.st.Pool()); err != nil || n != 0 {
		t.Errorf("Waiting = %d, %v; want 0 (the rest belong to a paused batch)", n, err)
	}
	if len(b.fake.Requests()) != 3 {
		t.Errorf("prompts of a paused batch were sent")
	}
	if _, err := b.st.CancelBatch(ctx, "b1", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.StepOnce(ctx, b.name); err != nil {
		t.Fatal(err)
	}
	if got := count(`SELECT count(*) FROM provider_batch_items WHERE state = 'done' AND outcome = 'canceled' AND job IS NULL`); got != 7 {
		t.Errorf("%d unsent items settled as canceled, want 7", got)
	}
}
