package store

import (
	"slices"
	"testing"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// A hand-off to a batch-mode model is a provider_batch_items row written with
// the attempts, once however often it is written; verify counts the prompt
// as waiting at a provider, not lost.
func TestHandoffRecordsItemAndCountsAtProvider(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	if _, err := st.RecordEnqueued(ctx, "b", enq("p1", "p2", "p3")); err != nil {
		t.Fatal(err)
	}
	r := res("b", "p1", prompt.TierSimple, "", 1, 0, att(1, small, prompt.OutcomeQualityFailed, 0.001, 0))
	r.Handoff = &prompt.Handoff{Model: "openai/gpt-4o-mini", Position: 1}
	mustWrite(t, st, r)
	mustWrite(t, st, r) // a redelivered hand-off
	var n, pos, before int
	var state, model, jobPrompt string
	if err := st.Pool().QueryRow(ctx, `SELECT count(*), min(position), min(attempts_before), min(state), min(model), min(job->>'prompt')
		FROM provider_batch_items`).Scan(&n, &pos, &before, &state, &model, &jobPrompt); err != nil {
		t.Fatal(err)
	}
	if n != 1 || pos != 1 || before != 1 || state != "queued" || model != "openai/gpt-4o-mini" || jobPrompt != "prompt p1" {
		t.Errorf("items: %d, position %d, attempts_before %d, state %s, model %s, prompt %q", n, pos, before, state, model, jobPrompt)
	}
	if got := queryCount(t, st, `SELECT count(*) FROM results`); got != 0 {
		t.Errorf("%d results rows for a hand-off, want 0", got)
	}
	a, err := st.AccountMissing(ctx, "b", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Missing != 3 || a.AtProvider != 1 || a.Lost != 2 || !slices.Equal(a.LostSample, []string{"p2", "p3"}) {
		t.Errorf("account = %+v, want p1 at a provider, p2 and p3 lost", a)
	}
	// Handed back to the stream after verify read it: queued, not lost.
	if _, err := st.Pool().Exec(ctx, `UPDATE provider_batch_items SET state = 'handed_off'`); err != nil {
		t.Fatal(err)
	}
	if a, err = st.AccountMissing(ctx, "b", nil, nil); err != nil || a.HandedBack != 1 || a.AtProvider != 0 || a.Lost != 2 {
		t.Errorf("after the hand-back: account = %+v (%v), want p1 handed back", a, err)
	}
}

func queryCount(t *testing.T, st *Store, q string) int {
	t.Helper()
	var n int
	if err := st.Pool().QueryRow(t.Context(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
