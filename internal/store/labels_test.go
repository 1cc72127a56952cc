package store

import (
	"slices"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

func TestSaveLabels(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	imp := []Label{
		{Source: LabelImport, Dataset: "gsm8k.csv", ItemID: "2", Prompt: "what is 2+2?", Model: "weak", Correct: true},
		{Source: LabelImport, Dataset: "gsm8k.csv", ItemID: "2", Prompt: "what is 2+2?", Model: "strong", Correct: true},
		{Source: LabelImport, Dataset: "gsm8k.csv", ItemID: "3", Prompt: "prove it\x00", Model: "weak", Correct: false},
	}
	n, err := st.SaveLabels(ctx, imp)
	if err != nil || n != 3 {
		t.Fatalf("first import: %d rows, %v; want 3", n, err)
	}
	// The same file again changes nothing; a changed verdict replaces the old one.
	if n, err := st.SaveLabels(ctx, imp); err != nil || n != 0 {
		t.Fatalf("same import again: %d rows, %v; want 0", n, err)
	}
	imp[0].Correct = false
	if n, err := st.SaveLabels(ctx, imp[:1]); err != nil || n != 1 {
		t.Fatalf("changed import: %d rows, %v; want 1", n, err)
	}
	// A shadow verdict never replaces the first one.
	sh := Label{Source: LabelShadow, Dataset: "b1", ItemID: "p1", BatchID: "b1", PromptID: "p1", Prompt: "prompt p1",
		Model: "sim/small", Correct: true, Reference: "sim/large", Judge: "sim/large"}
	if n, err := st.SaveLabels(ctx, []Label{sh}); err != nil || n != 1 {
		t.Fatalf("shadow: %d rows, %v", n, err)
	}
	sh.Correct = false
	if n, err := st.SaveLabels(ctx, []Label{sh}); err != nil || n != 0 {
		t.Fatalf("shadow again: %d rows, %v; want 0", n, err)
	}

	// A batch whose prompt matches an imported label by text finds it.
	r := res("b1", "p1", prompt.TierSimple, prompt.StatusSucceeded, 1, time.Second, att(1, "sim/small", prompt.OutcomeOK, 0.001, time.Second))
	r2 := res("b1", "p2", prompt.TierSimple, prompt.StatusSucceeded, 1, time.Second, att(1, "sim/small", prompt.OutcomeOK, 0.001, time.Second))
	r2.Job.Prompt = "what is 2+2?"
	if _, err := st.Write(ctx, []prompt.Result{r, r2}); err != nil {
		t.Fatal(err)
	}
	got, err := st.LabelsFor(ctx, []string{"b1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []StoredLabel{
		{LabelShadow, "b1", "p1", "prompt p1", "sim/small", true},
		{LabelImport, "gsm8k.csv", "2", "what is 2+2?", "strong", true},
		{LabelImport, "gsm8k.csv", "2", "what is 2+2?", "weak", false},
	}
	if len(got) != len(want) {
		t.Fatalf("LabelsFor(b1) = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("LabelsFor(b1)[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	byName, err := st.LabelsFor(ctx, []string{"gsm8k.csv"})
	if err != nil || len(byName) != 3 {
		t.Fatalf("LabelsFor(gsm8k.csv) = %d rows, %v; want 3", len(byName), err)
	}
	if byName[2].Prompt != "prove it" {
		t.Errorf("NUL not removed: %q", byName[2].Prompt)
	}
}

func TestFirstTries(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	rs := []prompt.Result{
		// Rate limited first (says nothing), then the cheap model fails the gate, then the strong passes.
		res("b", "hard", prompt.TierSimple, prompt.StatusSucceeded, 1, time.Second,
			att(1, "sim/small", prompt.OutcomeRateLimited, 0, time.Second),
			att(2, "sim/small", prompt.OutcomeQualityFailed, 0.001, time.Second),
			att(3, "sim/large", prompt.OutcomeOK, 0.01, time.Second)),
		res("b", "easy", prompt.TierSimple, prompt.StatusSucceeded, 1, time.Second,
			att(1, "sim/small", prompt.OutcomeOK, 0.001, time.Second)),
		// Only capacity errors: no first try.
		res("b", "none", prompt.TierSimple, prompt.StatusFailed, 1, time.Second,
			att(1, "sim/small", prompt.OutcomeServerError, 0, time.Second)),
		res("other", "x", prompt.TierSimple, prompt.StatusSucceeded, 1, time.Second,
			att(1, "sim/small", prompt.OutcomeOK, 0.001, time.Second)),
		// The first model only timed out; the next one's pass says nothing about it.
		res("b", "erred", prompt.TierSimple, prompt.StatusSucceeded, 1, time.Second,
			att(1, "sim/small", prompt.OutcomeTimeout, 0, time.Second),
			att(2, "sim/large", prompt.OutcomeOK, 0.01, time.Second)),
		// A model skipped while cooling down was not called: the first call is sim/large's.
		res("b", "skipped", prompt.TierSimple, prompt.StatusSucceeded, 1, time.Second,
			att(1, "sim/small", prompt.OutcomeCooldownSkip, 0, time.Second),
			att(2, "sim/large", prompt.OutcomeOK, 0.01, time.Second)),
	}
	if _, err := st.Write(ctx, rs); err != nil {
		t.Fatal(err)
	}
	got, err := st.FirstTries(ctx, []string{"b"})
	if err != nil {
		t.Fatal(err)
	}
	want := []FirstTry{
		{"b", "easy", "prompt easy", "simple", "sim/small", true},
		{"b", "hard", "prompt hard", "simple", "sim/small", false},
		{"b", "skipped", "prompt skipped", "simple", "sim/large", true},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("FirstTries = %+v, want %+v", got, want)
	}
}

func TestWriteShadowAndScore(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	r := res("b", "p1", prompt.TierSimple, prompt.StatusSucceeded, 1, time.Second,
		att(1, "sim/small", prompt.OutcomeOK, 0.001, time.Second),
		att(2, "sim/medium", prompt.OutcomeShadow, 0.002, time.Second),
		att(3, "sim/large", prompt.OutcomeShadow, 0.003, time.Second))
	r.Signals.Score, r.Signals.Scored = 0.25, true
	r.Shadow = &prompt.ShadowLabel{Model: "sim/small", Reference: "sim/medium", Judge: "sim/large", AsGood: false}
	plain := res("b", "p2", prompt.TierSimple, prompt.StatusSucceeded, 1, time.Second, att(1, "sim/small", prompt.OutcomeOK, 0.001, time.Second))
	if _, err := st.Write(ctx, []prompt.Result{r, plain}); err != nil {
		t.Fatal(err)
	}
	var attempts int
	var cost float64
	var score *float64
	if err := st.Pool().QueryRow(ctx, `SELECT attempts, cost_usd::float8, router_score FROM results WHERE prompt_id = 'p1'`).Scan(&attempts, &cost, &score); err != nil {
		t.Fatal(err)
	}
	if attempts != 1 || cost < 0.00599 || cost > 0.00601 || score == nil || *score != 0.25 {
		t.Errorf("p1: attempts %d (want 1: shadow calls are not attempts), cost %v (want 0.006: shadow spend is spend), score %v", attempts, cost, score)
	}
	if err := st.Pool().QueryRow(ctx, `SELECT router_score FROM results WHERE prompt_id = 'p2'`).Scan(&score); err != nil || score != nil {
		t.Errorf("p2 (heuristic): router_score %v, %v; want NULL", score, err)
	}
	// A losing delivery's verdict is not stored.
	lost := r
	lost.Delivery = 2
	lost.Shadow = &prompt.ShadowLabel{Model: "sim/small", Reference: "sim/medium", Judge: "sim/large", AsGood: true}
	if ins, err := st.Write(ctx, []prompt.Result{lost}); err != nil || ins[0] {
		t.Fatalf("second delivery: %v %v", ins, err)
	}
	var n int
	var correct bool
	var ref, judge, batch string
	if err := st.Pool().QueryRow(ctx, `SELECT count(*) OVER (), correct, reference, judge, batch_id FROM labels WHERE source = 'shadow'`).Scan(&n, &correct, &ref, &judge, &batch); err != nil {
		t.Fatal(err)
	}
	if n != 1 || correct || ref != "sim/medium" || judge != "sim/large" || batch != "b" {
		t.Errorf("shadow labels: %d rows, correct %v, reference %s, judge %s, batch %s", n, correct, ref, judge, batch)
	}
}
