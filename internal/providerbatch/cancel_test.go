package providerbatch

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/providerbatch/batchfake"
	"github.com/promptcascade/promptcascade/internal/store"
)

// handOffIn records prompts from..from+n-1 of batch as the enqueue and a
// worker whose cascade reached the batch model would: batch_prompts rows,
// then the queued items, in one Write.
func (b bundle) handOffIn(t *testing.T, batch string, from, n int) {
	t.Helper()
	var es []store.Enqueued
	var rs []prompt.Result
	for i := from; i < from+n; i++ {
		id := fmt.Sprintf("p%03d", i)
		es = append(es, store.Enqueued{ID: id})
		rs = append(rs, prompt.Result{Job: prompt.Job{BatchID: batch, ID: id, Prompt: longPrompt(i, "in "+batch), EnqueuedAt: time.Now()},
			Tier: prompt.TierSimple, Delivery: 1, Handoff: &prompt.Handoff{Model: b.name, Position: 0}})
	}
	if _, err := b.st.RecordEnqueued(t.Context(), batch, es); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.Write(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
}

func (b bundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := b.st.Pool().QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func (b bundle) step(t *testing.T, r *Runner) {
	t.Helper()
	if ok, err := r.StepOnce(t.Context(), b.name); err != nil || !ok {
		t.Fatalf("step: ran %v, err %v", ok, err)
	}
}

// cascadectl cancel while prompts of the batch wait at the provider: a
// provider batch of only its prompts is cancelled at the provider, once;
// its prompts in a provider batch shared with a running batch get no
// answer, and what the provider billed for them is logged; its queued
// prompts are never sent; verify counts all of them canceled.
func TestCanceledBatchAtTheProvider(t *testing.T) {
	t.Parallel()
	b := setup(t, batchfake.OpenAI)
	b.fake.SetHold(true)
	r := b.runner(t, fast, Hooks{})
	b.handOffIn(t, "gone", 0, 10) // provider batch 1: gone only
	b.step(t, r)
	b.handOffIn(t, "gone", 10, 5) // provider batch 2: 5 gone + 5 kept ("gone" < "kept")
	b.handOffIn(t, "kept", 0, 5)
	b.step(t, r)
	b.handOffIn(t, "gone", 15, 5) // queued: under max_requests, flush_after an hour
	b.step(t, r)
	if n := b.fake.Batches(); n != 2 || len(b.fake.Requests()) != 20 {
		t.Fatalf("%d provider batches with %d requests before the cancel, want 2 with 20 (the test did not test anything)", n, len(b.fake.Requests()))
	}

	if _, err := b.st.CancelBatch(t.Context(), "gone", "test"); err != nil {
		t.Fatal(err)
	}
	acc, err := b.st.AccountMissing(t.Context(), "gone", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if acc.Missing != 20 || acc.Canceled != 20 || acc.AtProvider != 0 || acc.Lost != 0 {
		t.Errorf("verify while at the provider: %+v, want all 20 canceled", acc)
	}

	b.step(t, r)
	b.step(t, r) // the cancel is made once
	if n := b.fake.Cancels(); n != 1 {
		t.Fatalf("%d cancel calls at the provider, want 1 (provider batch 1 holds only canceled prompts)", n)
	}
	if got := b.count(t, `SELECT count(*) FROM provider_batches WHERE cancel_requested_at IS NOT NULL`); got != 1 {
		t.Errorf("%d provider batches with a recorded cancel, want 1", got)
	}
	if got := b.count(t, `SELECT count(*) FROM provider_batches WHERE id = 2 AND cancel_requested_at IS NULL`); got != 1 {
		t.Errorf("the shared provider batch was cancelled")
	}
	b.fake.SetHold(false)
	b.drain(t, r)

	if n := len(b.fake.Requests()); n != 20 {
		t.Errorf("the provider got %d requests, want 20 (the queued prompts of the canceled batch were sent)", n)
	}
	for _, q := range b.fake.Requests() {
		for i := 15; i < 20; i++ {
			if strings.Contains(q.Prompt, fmt.Sprintf("number %d in gone", i)) {
				t.Errorf("queued prompt p%03d of the canceled batch was sent", i)
			}
		}
	}
	if got := b.count(t, `SELECT count(*) FROM results WHERE batch_id = 'gone'`); got != 0 {
		t.Errorf("%d answers stored for the canceled batch", got)
	}
	if got := b.count(t, `SELECT count(*) FROM results WHERE batch_id = 'kept' AND status = 'succeeded'`); got != 5 {
		t.Errorf("%d answers for the running batch, want 5", got)
	}
	// The provider answered the 5 shared ones: billed at the batch price,
	// logged as canceled. The 10 of the cancelled provider batch were not run.
	if got := b.count(t, `SELECT count(*) FROM request_log WHERE batch_id = 'gone' AND outcome = 'canceled'
		AND cost_usd > 0 AND cost_usd = round((input_tokens * 0.5 + output_tokens * 2.0) / 1e6, 10)
		AND provider_batch_id = (SELECT provider_batch_id FROM provider_batches WHERE id = 2)`); got != 5 {
		t.Errorf("%d billed attempts of canceled prompts logged at the batch price, want 5", got)
	}
	if got := b.count(t, `SELECT count(*) FROM request_log WHERE batch_id = 'gone' AND outcome = 'batch_canceled' AND cost_usd = 0`); got != 10 {
		t.Errorf("%d attempts of the cancelled provider batch logged as batch_canceled at no cost, want 10", got)
	}
	if got := b.count(t, `SELECT count(*) FROM request_log WHERE batch_id = 'gone'`); got != 15 {
		t.Errorf("%d attempts logged for the canceled batch, want 15 (none for the 5 never sent)", got)
	}
	if got := b.count(t, `SELECT count(*) FROM provider_batch_items WHERE batch_id = 'gone' AND NOT (state = 'done' AND outcome = 'canceled')`); got != 0 {
		t.Errorf("%d items of the canceled batch not settled as canceled", got)
	}
	for _, j := range b.pub.jobs {
		if j.BatchID == "gone" {
			t.Errorf("prompt %s of the canceled batch was handed back to the queue", j.ID)
		}
	}
	if acc, err = b.st.AccountMissing(t.Context(), "gone", nil, nil); err != nil || acc.Canceled != 20 || acc.Lost != 0 {
		t.Errorf("verify after the ingest: %+v (%v), want all 20 canceled", acc, err)
	}
}

// A batch canceled between the intent and the create: its prompts are
// taken out before sending, and an intent left empty is not sent.
func TestIntentOfCanceledPromptsIsNotSent(t *testing.T) {
	t.Parallel()
	b := setup(t, batchfake.Anthropic)
	r := b.runner(t, fast, Hooks{})
	m := &r.cfg.Models[0]
	b.handOffIn(t, "x", 0, 4)
	b.handOffIn(t, "y", 0, 4)
	id, label, err := r.recordIntent(t.Context(), m)
	if err != nil || id == 0 {
		t.Fatalf("intent: %d, %v", id, err)
	}
	if _, err := b.st.CancelBatch(t.Context(), "x", "test"); err != nil {
		t.Fatal(err)
	}
	if err := r.submit(t.Context(), m, id, label); err != nil {
		t.Fatal(err)
	}
	if n := len(b.fake.Requests()); n != 4 {
		t.Errorf("the provider got %d requests, want the 4 of the running batch", n)
	}
	for _, q := range b.fake.Requests() {
		if strings.Contains(q.Prompt, " in x:") {
			t.Errorf("a prompt of the canceled batch was sent: %q", q.Prompt)
		}
	}
	if got := b.count(t, `SELECT count(*) FROM provider_batches WHERE id = $1 AND items = 4 AND state = 'submitted'`, id); got != 1 {
		t.Errorf("the intent does not record the 4 requests sent")
	}

	b.handOffIn(t, "z", 0, 3)
	id, label, err = r.recordIntent(t.Context(), m)
	if err != nil || id == 0 {
		t.Fatalf("intent: %d, %v", id, err)
	}
	if _, err := b.st.CancelBatch(t.Context(), "z", "test"); err != nil {
		t.Fatal(err)
	}
	if err := r.submit(t.Context(), m, id, label); err != nil {
		t.Fatal(err)
	}
	if n := b.fake.Batches(); n != 1 {
		t.Errorf("%d provider batches, want 1: an intent of only canceled prompts was sent", n)
	}
	if got := b.count(t, `SELECT count(*) FROM provider_batches WHERE id = $1 AND state = 'canceled' AND done_at IS NOT NULL`, id); got != 1 {
		t.Errorf("the empty intent is not marked canceled")
	}
	b.drain(t, r)
	if got := b.count(t, `SELECT count(*) FROM results WHERE batch_id IN ('x', 'z')`); got != 0 {
		t.Errorf("%d results for canceled batches", got)
	}
	if got := b.count(t, `SELECT count(*) FROM results WHERE batch_id = 'y'`); got != 4 {
		t.Errorf("%d results for the running batch, want 4", got)
	}
}
