package input

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

func TestParseFormat(t *testing.T) {
	t.Parallel()
	for _, f := range Formats {
		if got, err := ParseFormat(string(f)); err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %q, %v", f, got, err)
		}
	}
	if got, err := ParseFormat(""); err != nil || got != FormatAuto {
		t.Errorf(`ParseFormat("") = %q, %v; want auto`, got, err)
	}
	if _, err := ParseFormat("JSONL"); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf(`ParseFormat("JSONL") = %v, want ErrUnknownFormat`, err)
	}
}

func TestJSONL(t *testing.T) {
	t.Parallel()
	in := "\ufeff" + `{"id": "q1", "prompt": "What is 2+2?", "system": "Be brief.", "max_tokens": 16, "metadata": {"set": "arith", "n": 1}, "extra": true}` + "\r\n" +
		`{"prompt": "Line two has no id"}` + "\n" +
		`{"id": 42, "prompt": "numeric id", "max_tokens": 0, "metadata": null, "system": null}` + "\n" +
		`{"prompt": "unicode \u00e9\ud83d\ude00 and a lone surrogate \ud800"}`
	res := readAll(t, "in.jsonl", FormatAuto, in, Options{})
	if res.fatal != nil || len(res.errs) != 0 {
		t.Fatalf("fatal %v, errors %v", res.fatal, res.errs)
	}
	if res.format != FormatJSONL {
		t.Errorf("format = %s, want jsonl", res.format)
	}
	want := []prompt.Job{
		{ID: "q1", Prompt: "What is 2+2?", System: "Be brief.", MaxTokens: 16, Metadata: json.RawMessage(`{"set": "arith", "n": 1,"extra":true}`)},
		{ID: "2", Prompt: "Line two has no id"},
		{ID: "42", Prompt: "numeric id"},
		{ID: "4", Prompt: "unicode é😀 and a lone surrogate \ufffd"},
	}
	checkJobs(t, res.jobs, want)
}

// Bug 6 of issue 7: top-level JSONL fields other than the known ones were
// dropped, while CSV keeps its other columns as metadata. They are kept in
// metadata now, with their JSON values; a clash with a metadata key is a
// bad line, not a silent loss.
func TestJSONLKeepsUnknownFieldsAsMetadata(t *testing.T) {
	t.Parallel()
	in := strings.Join([]string{
		`{"id": "a", "prompt": "p", "lang": "fr", "split": {"name": "dev", "n": [1, "x,}"]}, "score": -1.5e3, "ok": false, "note": null}`,
		`{"id": "b", "PROMPT": "case-insensitive known key", "Metadata": {"k": 1}, "src": "eval"}`,
		`{"id": "c", "prompt": "clash", "metadata": {"lang": "en"}, "lang": "fr"}`,
		`{"id": "d", "prompt": "escaped key", "a\"b": "v"}`,
		`{"id": "e", "prompt": "nul", "x": "a\u0000"}`,
		`{"id": "f", "prompt": "only known", "metadata": { "k" : 1 }}`,
	}, "\n") + "\n"
	res := readAll(t, "in.jsonl", FormatJSONL, in, Options{})
	if res.fatal != nil {
		t.Fatal(res.fatal)
	}
	wantErrs := []string{
		`in.jsonl:3: "lang" is both a top-level field and a key of "metadata"; rename one`,
		`in.jsonl:5: a top-level field contains \u0000, which cannot be stored`,
	}
	if len(res.errs) != len(wantErrs) {
		t.Fatalf("errors %v, want %v", res.errs, wantErrs)
	}
	for i, e := range res.errs {
		if e.Error() != wantErrs[i] {
			t.Errorf("error %d = %q, want %q", i, e, wantErrs[i])
		}
	}
	want := map[string]string{
		"a": `{"lang":"fr","split":{"name":"dev","n":[1,"x,}"]},"score":-1.5e3,"ok":false,"note":null}`,
		"b": `{"k":1,"src":"eval"}`,
		"d": `{"a\"b":"v"}`,
		"f": `{"k":1}`,
	}
	if len(res.jobs) != len(want) {
		t.Fatalf("%d jobs, want %d", len(res.jobs), len(want))
	}
	for _, j := range res.jobs {
		var got, exp any
		if err := json.Unmarshal(j.Metadata, &got); err != nil {
			t.Fatalf("job %s: metadata %s is not JSON: %v", j.ID, j.Metadata, err)
		}
		_ = json.Unmarshal([]byte(want[j.ID]), &exp)
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("job %s: metadata %s, want %s", j.ID, j.Metadata, want[j.ID])
		}
	}
	if string(res.jobs[3].Metadata) != `{ "k" : 1 }` {
		t.Errorf("metadata without extra fields changed: %s", res.jobs[3].Metadata)
	}
}

func TestOpenAIBatch(t *testing.T) {
	t.Parallel()
	in := `{"custom_id": "request-1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hello world!"}], "max_tokens": 1000}}` + "\n" +
		`{"custom_id": "request-2", "body": {"messages": [{"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]}, {"role": "user", "content": [{"type": "text", "text": "Part one."}, {"type": "text", "text": "Part two."}]}, {"role": "assistant", "content": "ignored"}, {"role": "user", "content": "Follow-up."}], "max_tokens": 5, "max_completion_tokens": 50, "metadata": {"team": "eval"}}}` + "\n" +
		`{"custom_id": 3, "body": {"model": "m", "metadata": {}, "messages": [{"role": "user", "content": "x", "name": "bob"}]}}` + "\n"
	res := readAll(t, "batch.jsonl", FormatAuto, in, Options{})
	if res.fatal != nil || len(res.errs) != 0 {
		t.Fatalf("fatal %v, errors %v", res.fatal, res.errs)
	}
	if res.format != FormatOpenAIBatch {
		t.Errorf("format = %s, want openai-batch", res.format)
	}
	checkJobs(t, res.jobs, []prompt.Job{
		{ID: "request-1", Prompt: "Hello world!", System: "You are a helpful assistant.", MaxTokens: 1000, Metadata: json.RawMessage(`{"model":"gpt-4o-mini"}`)},
		{ID: "request-2", Prompt: "Part one.\n\nPart two.\n\nFollow-up.", System: "Answer in French.", MaxTokens: 50, Metadata: json.RawMessage(`{"team": "eval"}`)},
		{ID: "3", Prompt: "x", Metadata: json.RawMessage(`{"model":"m"}`)},
	})
}

func TestCSV(t *testing.T) {
	t.Parallel()
	in := "\ufeffID, Prompt ,system,Max_Tokens,category,\r\n" +
		"c1,\"Hello, \"\"world\"\"\r\nsecond line\",Be kind.,12,greeting,x\r\n" +
		"\r\n" +
		",no id here,,,misc,\r\n" +
		"c3,\"\"\"quoted\"\"\",,0,\"with \"\"quotes\"\" and \\\\ and \t tab\",\r\n"
	res := readAll(t, "in.csv", FormatAuto, in, Options{})
	if res.fatal != nil || len(res.errs) != 0 {
		t.Fatalf("fatal %v, errors %v", res.fatal, res.errs)
	}
	checkJobs(t, res.jobs, []prompt.Job{
		{ID: "c1", Prompt: "Hello, \"world\"\nsecond line", System: "Be kind.", MaxTokens: 12, Metadata: json.RawMessage(`{"category":"greeting","column_6":"x"}`)},
		{ID: "5", Prompt: "no id here", Metadata: json.RawMessage(`{"category":"misc","column_6":""}`)},
		{ID: "c3", Prompt: `"quoted"`, Metadata: json.RawMessage(`{"category":"with \"quotes\" and \\\\ and \t tab","column_6":""}`)},
	})
	for _, j := range res.jobs {
		if !json.Valid(j.Metadata) {
			t.Errorf("metadata %s is not valid JSON", j.Metadata)
		}
	}
	// Only a prompt column: no metadata.
	res = readAll(t, "in.csv", FormatCSV, "prompt\nhello\n\"multi\nline\"\n", Options{})
	checkJobs(t, res.jobs, []prompt.Job{{ID: "2", Prompt: "hello"}, {ID: "3", Prompt: "multi\nline"}})
}

func TestText(t *testing.T) {
	t.Parallel()
	in := "\ufeffWhat is the capital of France?\r\n\n   \n  indented prompt keeps its spaces  \nlast line without newline"
	res := readAll(t, "in.txt", FormatAuto, in, Options{})
	if res.fatal != nil || len(res.errs) != 0 {
		t.Fatalf("fatal %v, errors %v", res.fatal, res.errs)
	}
	checkJobs(t, res.jobs, []prompt.Job{
		{ID: "1", Prompt: "What is the capital of France?"},
		{ID: "4", Prompt: "  indented prompt keeps its spaces  "},
		{ID: "5", Prompt: "last line without newline"},
	})
}

func TestDetect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, input string
		want        Format
	}{
		{"a.jsonl", `{"prompt":"x"}`, FormatJSONL},
		{"a.NDJSON", `{"prompt":"x"}`, FormatJSONL},
		{"a.json", "\n\n" + `{"custom_id":"1","body":{}}`, FormatOpenAIBatch},
		{"a.jsonl", `{"prompt":"the key \"custom_id\" inside text"}`, FormatJSONL},
		{"a.jsonl", `{"prompt":"` + strings.Repeat("x", bufferSize) + `"}`, FormatJSONL}, // first line longer than the peek window
		{"a.jsonl", `{"custom_id":"` + strings.Repeat("x", bufferSize) + `"}`, FormatOpenAIBatch},
		{"a.jsonl", "not json at all", FormatJSONL},
		{"a.csv", "prompt\nx", FormatCSV},
		{"a.TXT", `{"prompt":"x"}`, FormatText},
		{"-", `{"prompt":"x"}`, FormatJSONL},
		{"-", `  {"custom_id":"x","body":{}}`, FormatOpenAIBatch},
		{"-", "id,prompt,notes\n1,hi,x", FormatCSV},
		{"-", "Prompt\nhi", FormatCSV},
		{"-", "What is a prompt, anyway?\nAnother", FormatText},
		{"-", "\ufeff\r\n\r\nplain text", FormatText},
		{"prompts", "just words", FormatText},
		{"dir.v2/prompts", `{"prompt":"x"}`, FormatJSONL},
	}
	for _, tt := range tests {
		rd, err := NewReader(strings.NewReader(tt.input), tt.name, FormatAuto, Options{})
		if err != nil {
			t.Errorf("NewReader(%s, %.30q): %v", tt.name, tt.input, err)
			continue
		}
		if rd.Format() != tt.want {
			t.Errorf("NewReader(%s, %.30q) detected %s, want %s", tt.name, tt.input, rd.Format(), tt.want)
		}
	}
	// Sniffing does not consume input.
	res := readAll(t, "-", FormatAuto, "id,prompt\n1,hi\n", Options{})
	if !slices.Equal(res.ids(), []string{"1"}) {
		t.Errorf("ids = %q after sniffing", res.ids())
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "p.txt")
	if err := os.WriteFile(path, []byte("hello\nworld\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rd, err := Open(path, FormatAuto, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := drain(t, rd)
	if err := rd.Close(); err != nil {
		t.Error(err)
	}
	if !slices.Equal(res.ids(), []string{"1", "2"}) || rd.Name() != path || rd.BytesRead() != 12 || rd.Line() != 2 {
		t.Errorf("ids %q, name %q, bytes %d, line %d", res.ids(), rd.Name(), rd.BytesRead(), rd.Line())
	}

	missing := filepath.Join(dir, "missing.jsonl")
	_, err = Open(missing, FormatAuto, Options{})
	var fe *FileError
	if !errors.As(err, &fe) || fe.File != missing || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want a *FileError wrapping fs.ErrNotExist", err)
	}
	if _, err = Open(dir, FormatText, Options{}); err == nil || err.Error() != dir+": is a directory" {
		t.Errorf("Open(dir) = %v", err)
	}
	if os.Geteuid() != 0 { // root reads anything
		locked := filepath.Join(dir, "locked.txt")
		if err := os.WriteFile(locked, []byte("x\n"), 0o000); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(locked, FormatAuto, Options{}); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("Open(unreadable) = %v, want fs.ErrPermission", err)
		}
	}
}

// failingReader returns its data, then an error.
type failingReader struct {
	data string
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.data == "" {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk on fire")
	for _, f := range []Format{FormatJSONL, FormatCSV, FormatText, FormatOpenAIBatch} {
		src := &failingReader{data: "prompt\n" + `{"prompt":"x"}` + "\n", err: boom}
		rd, err := NewReader(src, "f", f, Options{})
		if err != nil {
			t.Fatal(err)
		}
		res := drain(t, rd)
		var le *LineError
		if !errors.Is(res.fatal, boom) || errors.As(res.fatal, &le) || !strings.HasPrefix(res.fatal.Error(), "f: read: ") {
			t.Errorf("%s: reading ended with %v, want a read error wrapping %v", f, res.fatal, boom)
		}
	}
}

// lazyLine produces one line of n bytes of JSON without holding it.
type lazyLine struct {
	head, tail string
	n          int // filler bytes still to produce
}

func (l *lazyLine) Read(p []byte) (int, error) {
	switch {
	case l.head != "":
		n := copy(p, l.head)
		l.head = l.head[n:]
		return n, nil
	case l.n > 0:
		n := min(len(p), l.n)
		for i := range n {
			p[i] = 'x'
		}
		l.n -= n
		return n, nil
	case l.tail != "":
		n := copy(p, l.tail)
		l.tail = l.tail[n:]
		return n, nil
	}
	return 0, io.EOF
}

// TestMemoryIsBounded reads a 64 MiB line with a 1 MiB limit and checks that
// the reader neither kept it nor allocated in proportion to it.
func TestMemoryIsBounded(t *testing.T) {
	const size = 64 << 20
	src := &lazyLine{head: `{"id":"a","prompt":"ok"}` + "\n" + `{"prompt":"`, n: size, tail: `"}` + "\n" + `{"id":"b","prompt":"after"}` + "\n"}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rd, err := NewReader(src, "big.jsonl", FormatJSONL, Options{MaxLineBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	res := drain(t, rd)
	runtime.ReadMemStats(&after)
	if len(res.errs) != 1 || res.errs[0].Line != 2 || !slices.Equal(res.ids(), []string{"a", "b"}) {
		t.Fatalf("errors %v, ids %q", res.errs, res.ids())
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("allocated %d bytes to read a %d-byte line with a 1 MiB limit", alloc, size)
	}
	if c := cap(rd.buf); c > 2<<20 {
		t.Errorf("line buffer grew to %d bytes", c)
	}
}

func checkJobs(t *testing.T, got, want []prompt.Job) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d jobs, want %d:\n%+v", len(got), len(want), got)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Prompt != w.Prompt || g.System != w.System || g.MaxTokens != w.MaxTokens || string(g.Metadata) != string(w.Metadata) {
			t.Errorf("job %d:\n got  %+v (metadata %s)\n want %+v (metadata %s)", i, g, g.Metadata, w, w.Metadata)
		}
	}
}

// With RepeatsElsewhere the reader keeps no ids: a repeated id comes back
// like any other line (the caller finds it), in every format.
func TestRepeatsElsewhere(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, input string }{
		{"in.jsonl", `{"id":"a","prompt":"x"}` + "\n" + `{"id":"b","prompt":"y"}` + "\n" + `{"id":"a","prompt":"z"}` + "\n"},
		{"in.csv", "id,prompt\na,x\nb,y\na,z\n"},
		{"b.jsonl", `{"custom_id":"a","body":{"messages":[{"role":"user","content":"x"}]}}` + "\n" +
			`{"custom_id":"b","body":{"messages":[{"role":"user","content":"y"}]}}` + "\n" +
			`{"custom_id":"a","body":{"messages":[{"role":"user","content":"z"}]}}` + "\n"},
	} {
		res := readAll(t, c.name, FormatAuto, c.input, Options{RepeatsElsewhere: true})
		if res.fatal != nil || len(res.errs) != 0 || !slices.Equal(res.ids(), []string{"a", "b", "a"}) {
			t.Errorf("%s: ids %v, errors %v, fatal %v; want a, b, a and no errors", c.name, res.ids(), res.errs, res.fatal)
		}
		res = readAll(t, c.name, FormatAuto, c.input, Options{})
		if len(res.errs) != 1 || res.errs[0].Reason != RepeatReason("a") {
			t.Errorf("%s without RepeatsElsewhere: errors %v, want one %q", c.name, res.errs, RepeatReason("a"))
		}
	}
}
