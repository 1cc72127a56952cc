package store

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

func TestBatchStatesCancelAndPark(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	if _, err := st.RecordEnqueued(ctx, "b", []Enqueued{{ID: "done"}, {ID: "parked"}, {ID: "open"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RecordEnqueued(ctx, "other", []Enqueued{{ID: "x"}}); err != nil {
		t.Fatal(err)
	}
	if m, err := st.BatchControls(ctx); err != nil || len(m) != 0 {
		t.Fatalf("fresh batches are running: %v %v", m, err)
	}
	if _, err := st.SetBatchState(ctx, "nope", BatchPaused, ""); !errors.Is(err, ErrUnknownBatch) {
		t.Errorf("unknown batch: %v", err)
	}
	prev, err := st.SetBatchState(ctx, "b", BatchPaused, "budget reached")
	if err != nil || prev != BatchRunning {
		t.Fatalf("pause: %v %v", prev, err)
	}
	m, err := st.BatchControls(ctx)
	if err != nil || len(m) != 1 || m["b"] != (Control{BatchPaused, "budget reached"}) {
		t.Fatalf("controls = %v %v", m, err)
	}

	// A worker parks one prompt (with the attempt it made before the pause)
	// and answers another.
	park := res("b", "parked", prompt.TierSimple, "", 2, 0, att(1, small, prompt.OutcomeServerError, 0.001, 0))
	park.Parked, park.Job.Seq, park.Job.MaxTokens = true, 7, 99
	mustWrite(t, st, park, park, res("b", "done", prompt.TierSimple, prompt.StatusSucceeded, 1, 0, att(1, small, prompt.OutcomeOK, 0.002, 0)))
	ps, err := st.ParkedMessages(ctx, "b", 10)
	if err != nil || len(ps) != 1 || ps[0].PromptID != "parked" {
		t.Fatalf("parked = %+v %v", ps, err)
	}
	var job prompt.Job
	if err := json.Unmarshal(ps[0].Payload, &job); err != nil || job.Prompt != "prompt parked" || job.MaxTokens != 99 || job.Seq != 7 || job.BatchID != "b" {
		t.Errorf("parked payload = %s (%v)", ps[0].Payload, err)
	}
	if n := count(t, st, `SELECT count(*) FROM request_log WHERE prompt_id = 'parked'`); n != 1 {
		t.Errorf("the parked prompt's attempt: %d request_log rows, want 1", n)
	}
	acct, err := st.AccountMissing(ctx, "b", nil, nil)
	if err != nil || acct.Missing != 2 || acct.Parked != 1 || acct.Lost != 1 || acct.Canceled != 0 {
		t.Errorf("paused batch: %+v %v", acct, err)
	}

	marked, err := st.CancelBatch(ctx, "b", "")
	if err != nil || marked != 2 {
		t.Fatalf("cancel: marked %d, %v; want the 2 unanswered", marked, err)
	}
	if ps, _ := st.ParkedMessages(ctx, "b", 10); len(ps) != 0 {
		t.Errorf("cancel left parked messages: %+v", ps)
	}
	acct, err = st.AccountMissing(ctx, "b", nil, nil)
	if err != nil || acct.Missing != 2 || acct.Canceled != 2 || acct.Lost != 0 {
		t.Errorf("canceled batch: %+v %v", acct, err)
	}
	if _, err := st.SetBatchState(ctx, "b", BatchRunning, ""); err == nil {
		t.Error("a canceled batch was resumed")
	}
	if m, _ := st.BatchControls(ctx); m["b"].State != BatchCanceled || len(m) != 1 {
		t.Errorf("controls after cancel = %v", m)
	}
	if err := st.Unpark(ctx, "b", []string{"parked"}); err != nil {
		t.Error(err)
	}
}
