package store

import (
	"bytes"
	"crypto/sha256"
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
	if _, err := st.RecordEnqueued(ctx, "b", enq("p1", "p2", "p3", "p3")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RecordEnqueued(ctx, "b", enq("p3", "p4", "p5")); err != nil {
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
	if _, err := st.RecordEnqueued(ctx, "b", enq(ids...)); err != nil {
		t.Fatal(err)
	}
	v, err = st.Verify(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if v.Total != 5005 || v.Enqueued != 5005 || v.Missing != 5003 || len(v.MissingSample) != VerifySampleSize {
		t.Errorf("after 5000 more: total %d enqueued %d missing %d sample %d", v.Total, v.Enqueued, v.Missing, len(v.MissingSample))
	}

	if _, err := st.RecordEnqueued(ctx, "b", enq("ok", "")); err == nil || !strings.Contains(err.Error(), "id 1 is empty") {
		t.Errorf("empty id: %v", err)
	}
	if _, err := st.RecordEnqueued(ctx, "", enq("x")); err == nil {
		t.Error("empty batch accepted")
	}
	if v, err := st.Verify(ctx, "unknown"); err != nil || v.Enqueued != 0 || v.Missing != 0 || v.Total != 0 {
		t.Errorf("unknown batch: %+v %v", v, err)
	}
}

// enq makes entries without content hashes (which match any content).
func enq(ids ...string) []Enqueued {
	out := make([]Enqueued, len(ids))
	for i, id := range ids {
		out[i] = Enqueued{ID: id}
	}
	return out
}

// An id recorded with one content and given again with another is a
// conflict: reported by index, not recorded, and nothing stored changes; the
// same content again is a silent no-op.
func TestRecordEnqueuedConflicts(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	h := func(s string) []byte { x := sha256.Sum256([]byte(s)); return x[:] }
	first := []Enqueued{{"1", h("a1")}, {"2", h("a2")}, {"3", h("a3")}}
	if bad, err := st.RecordEnqueued(ctx, "q", first); err != nil || len(bad) != 0 {
		t.Fatalf("first run: conflicts %v, err %v", bad, err)
	}
	// The same lines again (a re-run): nothing to report, nothing added.
	if bad, err := st.RecordEnqueued(ctx, "q", first); err != nil || len(bad) != 0 {
		t.Fatalf("re-run: conflicts %v, err %v", bad, err)
	}
	// Another file of the same name: ids 1 and 3 mean other prompts; 2 is
	// the same; 4 is new; a 5 given twice with two contents keeps the first.
	second := []Enqueued{{"1", h("b1")}, {"2", h("a2")}, {"3", h("b3")}, {"4", h("b4")}, {"5", h("b5")}, {"5", h("c5")}}
	wantBad := []int{0, 2, 5}
	bad, err := st.EnqueueConflicts(ctx, "q", second)
	if err != nil || !slices.Equal(bad, wantBad) {
		t.Fatalf("EnqueueConflicts = %v, %v; want %v", bad, err, wantBad)
	}
	if v, _ := st.Verify(ctx, "q"); v.Enqueued != 3 {
		t.Fatalf("EnqueueConflicts recorded something: %d enqueued", v.Enqueued)
	}
	bad, err = st.RecordEnqueued(ctx, "q", second)
	if err != nil || !slices.Equal(bad, wantBad) {
		t.Fatalf("RecordEnqueued = %v, %v; want %v", bad, err, wantBad)
	}
	rows, err := st.pool.Query(ctx, `SELECT prompt_id, content_sha256 FROM batch_prompts WHERE batch_id = 'q' ORDER BY prompt_id`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	for rows.Next() {
		var id string
		var sum []byte
		if err := rows.Scan(&id, &sum); err != nil {
			t.Fatal(err)
		}
		got[id] = sum
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	want := map[string][]byte{"1": h("a1"), "2": h("a2"), "3": h("a3"), "4": h("b4"), "5": h("b5")}
	if len(got) != len(want) {
		t.Fatalf("batch_prompts holds %d ids, want %d", len(got), len(want))
	}
	for id, sum := range want {
		if !bytes.Equal(got[id], sum) {
			t.Errorf("id %s: stored hash changed or wrong", id)
		}
	}
	if v, _ := st.Verify(ctx, "q"); v.Enqueued != 5 || v.Total != 5 {
		t.Errorf("enqueued %d total %d, want 5 and 5", v.Enqueued, v.Total)
	}
	// An id recorded without a hash (before migration 010, or by a replay)
	// matches any content.
	if bad, err := st.RecordEnqueued(ctx, "q", enq("6")); err != nil || len(bad) != 0 {
		t.Fatal(bad, err)
	}
	if bad, err := st.RecordEnqueued(ctx, "q", []Enqueued{{"6", h("x")}}); err != nil || len(bad) != 0 {
		t.Errorf("an unknown recorded hash conflicted: %v %v", bad, err)
	}
	if _, err := st.RecordEnqueued(ctx, "q", []Enqueued{{"7", []byte("short")}}); err == nil {
		t.Error("a 5-byte content hash was accepted")
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
