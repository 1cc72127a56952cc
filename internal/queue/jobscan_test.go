package queue

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// publishedJobs are jobs as enqueue, the publisher and the provider batch
// poller's republish encode them (EncodeJob): their messages are
// FuzzScanJob's seeds, and scanJob must take every one of them.
func publishedJobs() []prompt.Job {
	at := time.Date(2026, 12, 2, 5, 6, 7, 891011121, time.UTC)
	return []prompt.Job{
		{BatchID: "b", ID: "1", Prompt: "What is 1 plus 1?", EnqueuedAt: at},
		{BatchID: "batch-2026_01", ID: "line-42", Prompt: "Summarise:\n\t\"quoted\" and \\ back\\slash\r\n",
			System: "Be brief.", MaxTokens: 256, Metadata: json.RawMessage(`{"k":"v","n":[1,2.5,-3e2,{"x":null}],"t":true,"f":false}`),
			EnqueuedAt: at.In(time.FixedZone("", 3600)), Seq: 42, Priority: PriorityHigh},
		{BatchID: "b", ID: "ünï/code c.d", Prompt: "<html> & 'amp' \u2028 \u2029 é 😀 \x01 \x1f \x7f", EnqueuedAt: at, Priority: PriorityLow},
		{BatchID: "b", ID: "r", Prompt: "resumed", Resume: &prompt.Resume{Tier: prompt.TierComplex, Position: 2, Attempts: 3},
			EnqueuedAt: at, Seq: 1 << 40},
		{BatchID: "b", ID: "0", Prompt: "x", Resume: &prompt.Resume{}, Metadata: json.RawMessage(`{}`)},
		{BatchID: "b", ID: "nul", Prompt: "a\x00b", MaxTokens: 1<<53 + 1, Metadata: json.RawMessage(`{"s":"\u0000 \\ \"","":[[]]}`)},
		{BatchID: "b", ID: "big", Prompt: strings.Repeat("lorem ipsum ", 500), EnqueuedAt: time.Now()},
	}
}

func encoded(t testing.TB, j prompt.Job) []byte {
	t.Helper()
	m, err := EncodeJob(j, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m.Body
}

// Messages scanJob must leave to json.Unmarshal (which may take them or
// not): other keys or spellings, duplicates, nulls, non-integer numbers,
// surrogate escapes, escaped keys, deep nesting, and invalid JSON.
var declinedJobs = []string{
	`{"Batch":"b","id":"1","prompt":"p"}`, `{"batch":"b","batch":"c","id":"1","prompt":"p"}`,
	`{"batch":"b","id":"1","prompt":"p","lang":"fr"}`, `{"batch":null,"id":"1","prompt":"p"}`,
	`{"batch":"b","id":"1","prompt":"p","metadata":null}`, `{"batch":"b","id":"1","prompt":"p","resume":null}`,
	`{"batch":"b","id":"1","prompt":"p","max_tokens":1.0}`, `{"batch":"b","id":"1","prompt":"p","max_tokens":1e3}`,
	`{"batch":"b","id":"1","prompt":"p","max_tokens":01}`, `{"batch":"b","id":"1","prompt":"p","seq":9999999999999999999}`,
	`{"batch":"b","id":"1","prompt":"\ud83d\ude00"}`, `{"batch":"b","id":"1","prompt":"\ud83d"}`, `{"b\u0061tch":"b","id":"1","prompt":"p"}`,
	`{"batch":"b","id":"1","prompt":"p","enqueued_at":"2026-01-01T00:00:00\u005a"}`,
	`{"batch":"b","id":"1","prompt":"p","metadata":[1]}`, `{"batch":"b","id":"1","prompt":"p","metadata":"s"}`,
	`{"batch":"b","id":"1","prompt":"p","metadata":{"a":}}`, `{"batch":"b","id":"1","prompt":"p","metadata":{"a":1,}}`,
	`{"batch":"b","id":"1","prompt":"p","metadata":{"a":tru}}`, `{"batch":"b","id":"1","prompt":"p","metadata":{"a":-}}`,
	`{"batch":"b","id":"1","prompt":"p","metadata":` + strings.Repeat(`{"a":`, 70) + `1` + strings.Repeat(`}`, 70) + `}`,
	`{"batch":"b","id":"1","prompt":"p","resume":{"tier":"simple","Position":1}}`,
	`{"batch":"b","id":"1","prompt":"p","resume":{"tier":"simple","tier":"complex"}}`,
	`{"batch":"b","id":"1","prompt":"p","enqueued_at":"yesterday"}`, `{"batch":"b","id":1,"prompt":"p"}`,
	`{"batch":"b","id":"1","prompt":"p"} x`, `{"batch":"b","id":"1","prompt":"p",}`, `{"batch":"b","id":"1","prompt":"p"`,
	`{"batch":"b","id":"1","prompt":"a` + "\x01" + `b"}`, `{"batch":"b","id":"1","prompt":"\x"}`, `{"batch":"b" "id":"1"}`,
	`null`, `[]`, `"s"`, ``, `{`, `{"batch"}`, `{"batch":}`, `{"batch":"b",}`,
}

func TestScanJobTakesPublishedMessages(t *testing.T) {
	t.Parallel()
	for _, j := range publishedJobs() {
		body := encoded(t, j)
		got, ok := scanJob(body)
		if !ok {
			t.Errorf("scanJob declined a published message: %s", body)
			continue
		}
		var want prompt.Job
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("scanJob(%s)\n = %+v\nwant %+v", body, got, want)
		}
	}
	// With whitespace between the tokens, as a hand-written message has.
	body := []byte(" {\n\t\"batch\" : \"b\" ,\"id\":\"1\", \"prompt\":\"p\",\r\n\"metadata\": { \"a\" : [ 1 , { } ] } , " +
		"\"resume\" : { \"tier\" : \"simple\" , \"position\" : 1 } } \n")
	got, ok := scanJob(body)
	var want prompt.Job
	if err := json.Unmarshal(body, &want); err != nil || !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("scanJob(%s) = %+v, %v; want %+v (%v)", body, got, ok, want, err)
	}
}

func TestScanJobDeclines(t *testing.T) {
	t.Parallel()
	for _, s := range declinedJobs {
		if j, ok := scanJob([]byte(s)); ok {
			t.Errorf("scanJob(%s) = %+v, want it left to json.Unmarshal", s, j)
		}
	}
}

// DecodeJob reads every message as json.Unmarshal does, the ones scanJob
// takes and the ones it leaves alike: same job, same verdict.
func TestDecodeJobSameAsUnmarshal(t *testing.T) {
	t.Parallel()
	var inputs [][]byte
	for _, j := range publishedJobs() {
		inputs = append(inputs, encoded(t, j))
	}
	for _, s := range declinedJobs {
		inputs = append(inputs, []byte(s))
	}
	for _, in := range inputs {
		got, err := decodeJob(in, 0)
		want, wantErr := referenceDecodeJob(in, 0)
		if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() || !reflect.DeepEqual(got, want) {
			t.Errorf("decodeJob(%s)\n = %+v, %v\nwant %+v, %v", in, got, err, want, wantErr)
		}
	}
}

// referenceDecodeJob is decodeJob with json.Unmarshal only.
func referenceDecodeJob(data []byte, limit int) (prompt.Job, error) {
	if len(data) == 0 || !utf8.Valid(data) {
		return decodeJob(data, limit) // decided before any JSON is read
	}
	j, err := unmarshalJob(data)
	if err != nil {
		return j, err
	}
	// The checks that follow the reading, on a body scanJob declines.
	return decodeJobChecks(j, data, limit)
}

// FuzzScanJob checks that scanJob gives exactly what json.Unmarshal gives
// for every input it takes.
func FuzzScanJob(f *testing.F) {
	for _, j := range publishedJobs() {
		f.Add(encoded(f, j))
	}
	for _, s := range declinedJobs {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			return // decodeJob refuses it before scanJob
		}
		got, ok := scanJob(data)
		var want prompt.Job
		err := json.Unmarshal(data, &want)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("scanJob took %q, which json.Unmarshal refuses: %v", data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("scanJob(%q)\n = %#v\nwant %#v", data, got, want)
		}
	})
}

// FuzzScanJobPublished checks that scanJob takes every message EncodeJob
// writes, whatever the prompt, system prompt, id and metadata hold.
func FuzzScanJobPublished(f *testing.F) {
	for _, j := range publishedJobs() {
		f.Add(j.ID, j.Prompt, j.System, "v", int64(j.MaxTokens), j.Seq, j.EnqueuedAt.UnixNano(), j.Resume != nil)
	}
	f.Fuzz(func(t *testing.T, id, p, system, meta string, maxTokens, seq, at int64, resume bool) {
		j := prompt.Job{BatchID: "b", ID: id, Prompt: p, System: system, MaxTokens: int(maxTokens), Seq: seq,
			EnqueuedAt: time.Unix(0, at).In(time.FixedZone("", int(at%50400)))}
		if meta != "" {
			v, _ := json.Marshal(meta)
			j.Metadata = json.RawMessage(`{"m":` + string(v) + `,"n":[` + string(v) + `]}`)
		}
		if resume {
			j.Resume = &prompt.Resume{Tier: prompt.Tier(system), Position: int(maxTokens), Attempts: int(seq)}
		}
		m, err := EncodeJob(j, 1<<30)
		if err != nil {
			return // not a job enqueue would publish (bad id)
		}
		got, ok := scanJob(m.Body)
		if !ok {
			if at := j.EnqueuedAt.Year(); at < 0 || at > 9999 {
				return // json.Marshal refuses such times; EncodeJob fails first
			}
			t.Fatalf("scanJob declined a published message: %q", m.Body)
		}
		var want prompt.Job
		if err := json.Unmarshal(m.Body, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("scanJob(%q)\n = %#v\nwant %#v", m.Body, got, want)
		}
	})
}

// BenchmarkDecodeJob decodes a typical published message: scanJob (the
// path DecodeJob takes) against json.Unmarshal (the fallback).
func BenchmarkDecodeJob(b *testing.B) {
	body := encoded(b, prompt.Job{BatchID: "bench", ID: "12345", Prompt: "What is 12345 plus 12345?\nAnswer in one line.",
		Metadata: json.RawMessage(`{"source":"bench","n":1}`), EnqueuedAt: time.Now().UTC(), Seq: 12345})
	b.Run("DecodeJob", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeJob(body, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := referenceDecodeJob(body, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}
