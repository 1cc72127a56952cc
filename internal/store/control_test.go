package store

import (
	"encoding/json"
	"errors"
	"strings"
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
	if err != nil || len(m) != 1 || m["b"].State != BatchPaused || m["b"].Reason != "budget reached" {
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
	// A prompt whose message the worker kept in the stream
	// (STORE_PROMPTS=false) leaves only its id: no text in Postgres, not
	// among ParkedMessages, counted by ParkedInStream and as parked.
	inStream := res("b", "open", prompt.TierSimple, "", 1, 0)
	inStream.Parked, inStream.ParkedInStream = true, true
	mustWrite(t, st, inStream)
	if n := count(t, st, `SELECT count(*) FROM batch_parked WHERE prompt_id = 'open' AND octet_length(payload) = 0`); n != 1 {
		t.Errorf("the prompt parked in the stream: %d id-only rows, want 1", n)
	}
	if ps, _ := st.ParkedMessages(ctx, "b", 10); len(ps) != 1 || ps[0].PromptID != "parked" {
		t.Errorf("ParkedMessages with one in the stream = %+v, want only the one kept in Postgres", ps)
	}
	if n, err := st.ParkedInStream(ctx, "b"); err != nil || n != 1 {
		t.Errorf("ParkedInStream = %d, %v; want 1", n, err)
	}
	if acct, err := st.AccountMissing(ctx, "b", nil, nil); err != nil || acct.Parked != 2 || acct.Lost != 0 {
		t.Errorf("paused batch with one parked in the stream: %+v %v", acct, err)
	}
	// An id-only row of a prompt answered meanwhile is dropped, not counted.
	late := res("b", "done", prompt.TierSimple, "", 1, 0)
	late.Parked, late.ParkedInStream = true, true
	mustWrite(t, st, late)
	if n, err := st.ParkedInStream(ctx, "b"); err != nil || n != 1 {
		t.Errorf("ParkedInStream with an answered prompt's row = %d, %v; want 1", n, err)
	}
	if n := count(t, st, `SELECT count(*) FROM batch_parked WHERE prompt_id = 'done'`); n != 0 {
		t.Errorf("the answered prompt's id-only row was kept")
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

func TestBudgetReserveAndSettle(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	if _, err := st.RecordEnqueued(ctx, "b", []Enqueued{{ID: "p1"}, {ID: "p2"}, {ID: "p3"}}); err != nil {
		t.Fatal(err)
	}
	usd := func(v float64) *float64 { return &v }
	if _, _, err := st.SetBudget(ctx, "nope", usd(1)); !errors.Is(err, ErrUnknownBatch) {
		t.Errorf("budget of an unknown batch: %v", err)
	}
	b, resumed, err := st.SetBudget(ctx, "b", usd(0.010))
	if err != nil || resumed || *b.BudgetUSD != 0.010 || b.SpentUSD != 0 || b.State != BatchRunning {
		t.Fatalf("set budget: %+v %v %v", b, resumed, err)
	}
	if m, _ := st.BatchControls(ctx); !m["b"].Budgeted || m["b"].State != BatchRunning {
		t.Errorf("controls of a budgeted batch = %+v", m["b"])
	}
	hold := func(amount float64) (int64, bool) {
		t.Helper()
		id, ok, err := st.Reserve(ctx, Hold{BatchID: "b", PromptID: "p1", WorkerID: "w", AmountUSD: amount})
		if err != nil {
			t.Fatal(err)
		}
		return id, ok
	}
	h1, ok1 := hold(0.004)
	h2, ok2 := hold(0.004)
	if !ok1 || !ok2 {
		t.Fatal("holds within the budget refused")
	}
	if _, ok := hold(0.003); ok {
		t.Fatal("a hold past the budget (0.004 + 0.004 + 0.003 > 0.010) was granted")
	}
	m, _ := st.BatchControls(ctx)
	if m["b"].State != BatchPaused || !strings.HasPrefix(m["b"].Reason, "budget $0.010000 reached: $0.000000 spent, $0.008000 held") {
		t.Errorf("refused hold did not pause the batch with the reason: %+v", m["b"])
	}

	// The commit logs the calls (real cost 0.005 and 0.001) and releases the holds.
	r1 := res("b", "p1", prompt.TierSimple, prompt.StatusSucceeded, 1, 0, att(1, small, prompt.OutcomeOK, 0.005, 0))
	r1.BudgetHolds = []int64{h1}
	r2 := res("b", "p2", prompt.TierSimple, prompt.StatusSucceeded, 1, 0, att(1, small, prompt.OutcomeOK, 0.001, 0))
	r2.BudgetHolds = []int64{h2}
	mustWrite(t, st, r1, r2)
	mustWrite(t, st, r1) // a retried write logs nothing twice
	if n := count(t, st, `SELECT count(*) FROM budget_holds`); n != 0 {
		t.Errorf("%d holds left after the commit", n)
	}
	var spent float64
	if err := st.Pool().QueryRow(ctx, `SELECT spent_usd::float8 FROM batches WHERE batch_id = 'b'`).Scan(&spent); err != nil || spent != 0.006 {
		t.Errorf("spent_usd = %v (%v), want 0.006 = sum(request_log.cost_usd)", spent, err)
	}

	// Raising the budget resumes the batch; lowering it does not pause it by itself.
	b, resumed, err = st.SetBudget(ctx, "b", usd(0.02))
	if err != nil || !resumed || b.State != BatchRunning || b.SpentUSD != 0.006 {
		t.Errorf("raise: %+v resumed=%v %v", b, resumed, err)
	}
	if _, ok := hold(0.013); !ok {
		t.Error("0.006 spent + 0.013 <= 0.02 refused")
	}
	if _, ok := hold(0.002); ok {
		t.Error("0.006 spent + 0.013 held + 0.002 > 0.02 granted")
	}
	// Paused by hand, a budget change does not resume it; no budget: no limit.
	if _, err := st.SetBatchState(ctx, "b", BatchPaused, "paused by cascadectl pause"); err != nil {
		t.Fatal(err)
	}
	b, resumed, err = st.SetBudget(ctx, "b", nil)
	if err != nil || resumed || b.State != BatchPaused || b.BudgetUSD != nil {
		t.Errorf("remove budget of a batch paused by hand: %+v resumed=%v %v", b, resumed, err)
	}
	if _, ok := hold(1000); !ok {
		t.Error("a batch without a budget refused a hold")
	}
}
