package queue

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// checkAppendJob fails unless appendJob encodes job exactly as json.Marshal
// does, or declines a job that it does not handle (metadata, resume) or that
// json.Marshal refuses (a time outside RFC 3339).
func checkAppendJob(t *testing.T, job prompt.Job) {
	t.Helper()
	want, werr := json.Marshal(job)
	prefix := []byte("prefix")
	got, ok := appendJob(prefix, &job)
	if !bytes.HasPrefix(got, []byte("prefix")) {
		t.Fatalf("appendJob overwrote dst: %q", got)
	}
	got = got[len(prefix):]
	switch {
	case !ok && len(got) != 0:
		t.Fatalf("declined, but left %q in dst", got)
	case !ok && werr == nil && len(job.Metadata) == 0 && job.Resume == nil:
		t.Fatalf("declined a job json.Marshal encodes as %s", want)
	case ok && werr != nil:
		t.Fatalf("encoded %s where json.Marshal fails: %v", got, werr)
	case ok && !bytes.Equal(got, want):
		t.Fatalf("appendJob:\n %s\njson.Marshal:\n %s", got, want)
	}
	// EncodeJob's body is json.Marshal's whichever path it took.
	if werr == nil && ValidBatchName(job.BatchID) == nil && ValidJobID(job.ID) == nil && ValidPriority(job.Priority) == nil {
		m, err := EncodeJob(job, 1<<30)
		if err != nil {
			t.Fatalf("EncodeJob: %v", err)
		}
		if !bytes.Equal(m.Body, want) {
			t.Fatalf("EncodeJob:\n %s\njson.Marshal:\n %s", m.Body, want)
		}
	}
}

func TestAppendJobIsJSONMarshal(t *testing.T) {
	at := time.Date(2026, 12, 2, 5, 6, 7, 123456789, time.UTC)
	plus := time.FixedZone("x", 5*3600+30*60)
	for name, job := range map[string]prompt.Job{
		"enqueue's": {BatchID: "enq1", ID: "12", Prompt: "What is 12 plus 12? Answer briefly.", EnqueuedAt: at, Seq: 13},
		"every field": {BatchID: "b-1_x", ID: "a b", Prompt: "p", System: "s", MaxTokens: 256, EnqueuedAt: at.In(plus),
			Seq: 1 << 40, Priority: PriorityHigh},
		"zero":               {},
		"escapes":            {BatchID: "b", ID: `"\<>&`, Prompt: "tab\there\nnl\r\b\f\x00\x01\x1f\x7f <script>&amp;", System: "\u2028\u2029 é 日本 🎉"},
		"invalid utf-8":      {BatchID: "b", ID: "1", Prompt: "a\xffb\xc3(c\xe2\x82", System: "\xed\xa0\x80"},
		"negative numbers":   {BatchID: "b", ID: "1", Prompt: "p", MaxTokens: -5, Seq: -7},
		"whole seconds":      {BatchID: "b", ID: "1", Prompt: "p", EnqueuedAt: time.Unix(1700000000, 0)},
		"local zone":         {BatchID: "b", ID: "1", Prompt: "p", EnqueuedAt: time.Unix(1700000000, 5000).Local()},
		"year 10000":         {BatchID: "b", ID: "1", Prompt: "p", EnqueuedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"negative year":      {BatchID: "b", ID: "1", Prompt: "p", EnqueuedAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
		"offset of 24 hours": {BatchID: "b", ID: "1", Prompt: "p", EnqueuedAt: at.In(time.FixedZone("y", 24*3600))},
		"metadata":           {BatchID: "b", ID: "1", Prompt: "p", Metadata: json.RawMessage(`{ "k" : "<v>" }`)},
		"resume":             {BatchID: "b", ID: "1", Prompt: "p", Resume: &prompt.Resume{Tier: prompt.TierComplex, Position: 1, Attempts: 2}},
	} {
		t.Run(name, func(t *testing.T) { checkAppendJob(t, job) })
	}
}

func FuzzAppendJob(f *testing.F) {
	f.Add("enq1", "12", "What is 12 plus 12? Answer briefly.", "", 0, int64(1764651967123456789), 0, int64(13), "")
	f.Add("b", `"\<>&`, "tab\there\nnl\x00\x7f\u2028\u2029", "日本\xff", 256, int64(-1), 19800, int64(-1), "high")
	f.Add("b", "1", "p", "s", -1, int64(253402300800_000000000/1000), 86400, int64(1), "low")
	f.Fuzz(func(t *testing.T, batch, id, p, system string, maxTokens int, unixNano int64, offset int, seq int64, priority string) {
		at := time.Unix(0, unixNano).In(time.FixedZone("z", offset%(48*3600)))
		checkAppendJob(t, prompt.Job{BatchID: batch, ID: id, Prompt: p, System: system, MaxTokens: maxTokens,
			EnqueuedAt: at, Seq: seq, Priority: priority})
	})
}

// BenchmarkEncodeJob is EncodeJob on enqueue's job for a benchmark line (the
// appendJob path) and json.Marshal of the same job (the path it replaces).
func BenchmarkEncodeJob(b *testing.B) {
	job := prompt.Job{BatchID: "enq1", ID: "123456", Prompt: "What is 123456 plus 123456? Answer briefly.",
		EnqueuedAt: time.Date(2026, 12, 2, 5, 6, 7, 123456789, time.UTC), Seq: 123457}
	b.Run("EncodeJob", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := EncodeJob(job, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(job); err != nil {
				b.Fatal(err)
			}
		}
	})
}
