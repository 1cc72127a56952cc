package store

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// fixture writes a small batch whose report numbers are computed by hand
// in the tests below.
//
//	b1/p1 simple   succeeded small              1 attempt   0.0001         100 ms
//	b1/p2 simple   succeeded medium  small q-f, medium ok   0.0001+0.0004  300 ms
//	b1/p3 moderate succeeded medium             1 attempt   0.001          200 ms
//	b1/p4 complex  failed    large   5xx, q-f               0+0.01         1234.56 ms
//	b1/p5 simple   transient (nak'd) small rate limited     0.00002        (no result)
//	b2/q1 simple   succeeded small              1 attempt   0.5            50 ms
func fixture(t *testing.T) *Store {
	t.Helper()
	st := setup(t)
	if err := st.UpsertBatch(t.Context(), "b1", 5); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, st,
		res("b1", "p1", prompt.TierSimple, prompt.StatusSucceeded, 1, 100*time.Millisecond,
			att(1, small, prompt.OutcomeOK, 0.0001, 100*time.Millisecond)),
		res("b1", "p2", prompt.TierSimple, prompt.StatusSucceeded, 1, 300*time.Millisecond,
			att(1, small, prompt.OutcomeQualityFailed, 0.0001, 80*time.Millisecond),
			att(2, medium, prompt.OutcomeOK, 0.0004, 300*time.Millisecond)),
		res("b1", "p3", prompt.TierModerate, prompt.StatusSucceeded, 1, 200*time.Millisecond,
			att(1, medium, prompt.OutcomeOK, 0.001, 200*time.Millisecond)),
		res("b1", "p4", prompt.TierComplex, prompt.StatusFailed, 1, 1234560*time.Microsecond,
			att(1, large, prompt.OutcomeServerError, 0, 10*time.Millisecond),
			att(2, large, prompt.OutcomeQualityFailed, 0.01, time.Second)),
		res("b1", "p5", prompt.TierSimple, "", 1, 0,
			att(1, small, prompt.OutcomeRateLimited, 0.00002, time.Millisecond)),
		res("b2", "q1", prompt.TierSimple, prompt.StatusSucceeded, 1, 50*time.Millisecond,
			att(1, small, prompt.OutcomeOK, 0.5, 50*time.Millisecond)),
	)
	return st
}

func TestStatus(t *testing.T) {
	t.Parallel()
	st := fixture(t)
	got, err := st.Status(t.Context(), "b1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("status = %+v", got)
	}
	b := got[0]
	if b.State != BatchRunning || b.LastMinute != 0 || b.Canceled() != 0 || b.Now.IsZero() {
		t.Errorf("status b1 state = %q, last minute %d, canceled %d, now %v", b.State, b.LastMinute, b.Canceled(), b.Now)
	}
	if b.BatchID != "b1" || b.Total != 5 || b.Succeeded != 3 || b.Failed != 1 || b.Done() != 4 || b.Queued() != 1 ||
		!approx(b.CostUSD, 0.0116) || !approx(b.SpentUSD, 0.01162) || b.CreatedAt.IsZero() ||
		!b.FirstCompleted.Equal(t0.Add(time.Minute)) || !b.LastCompleted.Equal(t0.Add(time.Minute)) {
		t.Errorf("status b1 = %+v", b)
	}
	all, err := st.Status(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].BatchID != "b1" || all[1].BatchID != "b2" || all[1].Total != 0 ||
		all[1].Succeeded != 1 || !approx(all[1].CostUSD, 0.5) || !all[1].CreatedAt.IsZero() {
		t.Errorf("status all = %+v", all)
	}
	none, err := st.Status(t.Context(), "nope")
	if err != nil || len(none) != 0 {
		t.Errorf("unknown batch: %+v %v", none, err)
	}
}

func TestExportCSV(t *testing.T) {
	t.Parallel()
	st := fixture(t)
	var buf bytes.Buffer
	if err := st.ExportCSV(t.Context(), "b1", &buf); err != nil {
		t.Fatal(err)
	}
	want := `batch_id,prompt_id,prompt_tier,model_used,attempts,cost_usd,latency_ms,status,input_tokens,output_tokens,error,source
b1,p1,simple,sim/small,1,0.00010000,100.0,succeeded,10,20,,test
b1,p2,simple,sim/medium,2,0.00050000,300.0,succeeded,10,20,,test
b1,p3,moderate,sim/medium,1,0.00100000,200.0,succeeded,10,20,,test
b1,p4,complex,sim/large,2,0.01000000,1234.6,failed,0,0,all models failed,test
`
	if buf.String() != want {
		t.Errorf("csv:\n%s\nwant:\n%s", buf.String(), want)
	}
	buf.Reset()
	if err := st.ExportCSV(t.Context(), "", &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(buf.String(), "b2,q1,simple,sim/small,1,0.50000000,50.0,succeeded,10,20,,test\n") {
		t.Errorf("csv of all batches:\n%s", buf.String())
	}
}

func TestExportJSONL(t *testing.T) {
	t.Parallel()
	st := fixture(t)
	var buf bytes.Buffer
	if err := st.ExportJSONL(t.Context(), "b1", &buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(lines), buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &m); err != nil {
		t.Fatal(err)
	}
	if m["prompt_id"] != "p2" || m["status"] != "succeeded" || m["model_used"] != medium || m["attempts"] != 2.0 ||
		m["cost_usd"] != 0.0005 || m["latency_ms"] != 300.0 || m["tier"] != "simple" || m["delivery"] != 1.0 {
		t.Errorf("line 2 = %s", lines[1])
	}
	for _, k := range []string{"prompt", "system", "response"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s exported without IncludeText", k)
		}
	}
	for _, k := range []string{"metadata", "word_count", "token_count", "complex_hits", "moderate_hits", "finish_reason",
		"input_tokens", "output_tokens", "error", "enqueued_at", "completed_at", "worker_id", "prompt_sha256",
		"prompt_chars", "response_chars", "usage_estimated"} {
		if _, ok := m[k]; !ok {
			t.Errorf("key %s missing", k)
		}
	}
	buf.Reset()
	if err := st.ExportJSONL(t.Context(), "b1", &buf, IncludeText()); err != nil {
		t.Fatal(err)
	}
	var r ResultRow
	if err := json.Unmarshal([]byte(strings.Split(buf.String(), "\n")[0]), &r); err != nil {
		t.Fatal(err)
	}
	if r.Prompt == nil || *r.Prompt != "prompt p1" || r.Response == nil || *r.Response != "answer to p1" {
		t.Errorf("with text: %+v", r)
	}
}
