package store

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

func TestRecordEnqueuedAndVerify(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	// enqueue interrupted, then run again: overlapping, repeated ids.
	if err := st.RecordEnqueued(ctx, "b", []string{"p1", "p2", "p3", "p3"}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordEnqueued(ctx, "b", []string{"p3", "p4", "p5"}); err != nil {
		t.Fatal(err)
	}
	if err := st.UpsertBatch(ctx, "b", 3); err != nil { // never lowers
		t.Fatal(err)
	}
	mustWrite(t, st,
		res("b", "p1", prompt.TierSimple, prompt.StatusSucceeded, 1, 0, att(1, small, prompt.OutcomeOK, 0.001, 0)),
		res("b", "p2", prompt.TierSimple, prompt.StatusFailed, 1, 0, att(1, small, prompt.OutcomeAuthError, 0, 0)),
		res("b", "p3", prompt.TierSimple, "", 1, 0, att(1, small, prompt.OutcomeRateLimited, 0, 0)),
		res("b", "p9", prompt.TierSimple, prompt.StatusSucceeded, 1, 0, att(1, small, prompt.OutcomeOK, 0.001, 0)),
	)
	v, err := st.Verify(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if v.Total != 5 || v.Enqueued != 5 || v.Succeeded != 2 || v.Failed != 1 || v.Done() != 3 || v.Missing != 3 ||
		v.Unexpected != 1 || v.ExtraAttempts != 0 || v.ExtraCostUSD != 0 || v.AnsweredTwice != 0 ||
		!slices.Equal(v.MissingSample, []string{"p3", "p4", "p5"}) || !slices.Equal(v.UnexpectedSample, []string{"p9"}) {
		t.Errorf("verify = %+v", v)
	}

	// A second input adds to the total; the sample is capped.
	ids := make([]string, 5000)
	for i := range ids {
		ids[i] = fmt.Sprintf("q%05d", i)
	}
	if err := st.RecordEnqueued(ctx, "b", ids); err != nil {
		t.Fatal(err)
	}
	v, err = st.Verify(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if v.Total != 5005 || v.Enqueued != 5005 || v.Missing != 5003 || len(v.MissingSample) != VerifySampleSize {
		t.Errorf("after 5000 more: total %d enqueued %d missing %d sample %d", v.Total, v.Enqueued, v.Missing, len(v.MissingSample))
	}

	if err := st.RecordEnqueued(ctx, "b", []string{"ok", ""}); err == nil || !strings.Contains(err.Error(), "id 1 is empty") {
		t.Errorf("empty id: %v", err)
	}
	if err := st.RecordEnqueued(ctx, "", []string{"x"}); err == nil {
		t.Error("empty batch accepted")
	}
	if v, err := st.Verify(ctx, "unknown"); err != nil || v.Enqueued != 0 || v.Missing != 0 || v.Total != 0 {
		t.Errorf("unknown batch: %+v %v", v, err)
	}
}

func TestUpsertBatch(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	for _, n := range []int{10, 4, 12} {
		if err := st.UpsertBatch(ctx, "b", n); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, st, `SELECT total FROM batches WHERE batch_id = 'b'`); n != 12 {
		t.Errorf("total = %d, want 12", n)
	}
	if err := st.UpsertBatch(ctx, "b", -1); err == nil {
		t.Error("negative total accepted")
	}
}
