package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEnqueueReportsBadLinesAndPublishesGoodOnes(t *testing.T) {
	b, ctx := setup(t, time.Minute)
	file := writeFile(t, "in.jsonl", strings.Join([]string{
		`{"id":"a","prompt":"What is the capital of France?"}`,
		`{"id":"b","prompt":""}`,
		`not json`,
		`{"prompt":"no id: defaults to the line number"}`,
		`{"id":"a","prompt":"duplicate id"}`,
		`{"id":"c","prompt":"Explain how gradient descent works","max_tokens":"many"}`,
		`{"id":"d","prompt":"Analyze and compare the tradeoffs","system":"Be brief.","metadata":{"k":1}}`,
	}, "\n")+"\n")

	s, code := b.run(t, ctx, "enqueue", nil, "--batch", "bad", file)
	if code != 1 {
		t.Fatalf("exit %d, want 1 for rejected lines\n%s", code, s)
	}
	for _, want := range []string{file + ":2:", file + ":3:", file + ":5:", file + ":6:", "published 3, duplicates 0, rejected 4"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	for _, good := range []string{file + ":1:", file + ":4:", file + ":7:"} {
		if strings.Contains(s, good) {
			t.Errorf("good line reported as bad (%s):\n%s", good, s)
		}
	}

	// Running it again publishes nothing new.
	out, _ := b.run(t, ctx, "enqueue", nil, "--batch", "bad", file)
	if !strings.Contains(out, "published 0, duplicates 3, rejected 4") {
		t.Fatalf("second run: %s", out)
	}
	if n := b.enqueued(t, ctx); n != 3 {
		t.Fatalf("batch_prompts = %d, want 3", n)
	}
}

func TestEnqueueStrictPublishesNothingOnABadLine(t *testing.T) {
	b, ctx := setup(t, time.Minute)
	file := writeFile(t, "in.jsonl", `{"prompt":"good"}`+"\n"+`{"prompt":42}`+"\n")
	out, code := b.run(t, ctx, "enqueue", nil, "--strict", "--batch", "strict", file)
	if code != 1 || !strings.Contains(out, file+":2:") || !strings.Contains(out, "nothing published") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if n := b.enqueued(t, ctx); n != 0 {
		t.Fatalf("batch_prompts = %d after --strict failure, want 0", n)
	}
}

func TestEnqueueRejectsBadBatchNameAndFormat(t *testing.T) {
	b, ctx := setup(t, time.Minute)
	file := writeFile(t, "in.txt", "hello\n")
	for _, args := range [][]string{
		{"--batch", "has.dot", file},
		{"--batch", "has space", file},
		{"--format", "xml", file},
		{"--batch", "x", filepath.Join(t.TempDir(), "missing.jsonl")},
	} {
		out, code := b.run(t, ctx, "enqueue", nil, args...)
		if code == 0 || strings.Count(strings.TrimSpace(out), "\n") > 3 {
			t.Errorf("enqueue %v: exit %d\n%s", args, code, out)
		}
	}
}

func TestClassifyPrintsTierAndSignals(t *testing.T) {
	b, ctx := setup(t, time.Minute)
	file := writeFile(t, "in.txt", strings.Join([]string{
		"What is the capital of France?",
		"Explain how gradient descent works with momentum",
		"Analyze the tradeoffs between LORA and full fine-tuning for a 70B parameter model, compare memory usage and downstream task performance",
	}, "\n")+"\n")
	out, err := b.cmd(ctx, "cascadectl", nil, "classify", file).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []struct {
		id, tier string
		words    int
	}{{"1", "simple", 6}, {"2", "moderate", 7}, {"3", "complex", 20}}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines:\n%s", len(lines), out)
	}
	for i, l := range lines {
		var got struct {
			ID           string `json:"id"`
			Tier         string `json:"tier"`
			WordCount    int    `json:"word_count"`
			TokenCount   int    `json:"token_count"`
			ComplexHits  *int   `json:"complex_hits"`
			ModerateHits *int   `json:"moderate_hits"`
		}
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatal(err)
		}
		if got.ID != want[i].id || got.Tier != want[i].tier || got.WordCount != want[i].words || got.TokenCount == 0 || got.ComplexHits == nil || got.ModerateHits == nil {
			t.Errorf("line %d = %s", i+1, l)
		}
	}
}

func TestEnqueueStrictReadsStdin(t *testing.T) {
	b, ctx := setup(t, time.Minute)
	c := b.cmd(ctx, "enqueue", nil, "--strict", "--batch", "piped", "-")
	c.Stdin = strings.NewReader(`{"id":"x","prompt":"What is 2 plus 2?"}` + "\n" + `{"id":"y","prompt":"Name a prime number"}` + "\n")
	out, err := c.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "published 2, duplicates 0, rejected 0") {
		t.Fatalf("enqueue --strict - : %v\n%s", err, out)
	}
	c = b.cmd(ctx, "enqueue", nil, "--strict", "--batch", "piped2", "-")
	c.Stdin = strings.NewReader(`{"prompt":"fine"}` + "\n" + `{"prompt":""}` + "\n")
	out, _ = c.CombinedOutput()
	if c.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "stdin:2:") || strings.Contains(string(out), os.TempDir()) {
		t.Fatalf("exit %d; want 1 naming stdin:2 (not the spooled temp file)\n%s", c.ProcessState.ExitCode(), out)
	}
	if n := b.enqueued(t, ctx); n != 2 {
		t.Fatalf("batch_prompts = %d, want the 2 of the first run", n)
	}
}

func TestEnqueueRejectsIDsRepeatedAcrossFiles(t *testing.T) {
	b, ctx := setup(t, time.Minute)
	first := writeFile(t, "a.jsonl", `{"id":"1","prompt":"What is the capital of Peru?"}`+"\n"+`{"id":"2","prompt":"What is the capital of Chile?"}`+"\n")
	second := writeFile(t, "b.jsonl", `{"id":"3","prompt":"What is the capital of Bolivia?"}`+"\n"+`{"id":"1","prompt":"Same id as a.jsonl line 1"}`+"\n")
	out, code := b.run(t, ctx, "enqueue", nil, "--batch", "two", first, second)
	if code != 1 || !strings.Contains(out, second+`:2: duplicate id "1" (already in `+first+")") ||
		!strings.Contains(out, "published 3, duplicates 0, rejected 1") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

// Repeated ids are found in Postgres, not in a map of every id: a repeat
// many chunks (10,000 lines) after the first occurrence, in the same file
// (with the same content: still a repeat) or in the next file, is rejected
// with the same messages as before; a re-run rejects the same lines and
// publishes nothing new; --strict finds them too and publishes nothing.
func TestEnqueueFindsRepeatsChunksApart(t *testing.T) {
	b, ctx := setup(t, 2*time.Minute)
	const n = 25_000
	var a strings.Builder
	for i := range n {
		fmt.Fprintf(&a, `{"id":"%d","prompt":"What is %d plus %d?"}`+"\n", i, i, i)
	}
	a.WriteString(`{"id":"5","prompt":"What is 5 plus 5?"}` + "\n") // line n+1
	first := writeFile(t, "a.jsonl", a.String())
	second := writeFile(t, "b.jsonl", `{"id":"x1","prompt":"Name a prime"}`+"\n"+
		`{"id":"12","prompt":"Another prompt, line 13's id"}`+"\n"+`{"id":"x2","prompt":"Name a color"}`+"\n")
	want := []string{
		fmt.Sprintf(`%s:%d: duplicate id "5"`+"\n", first, n+1),
		second + `:2: duplicate id "12" (already in ` + first + ")",
	}
	check := func(out string, code int) {
		t.Helper()
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s", code, tail(out))
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q:\n%s", w, tail(out))
			}
		}
	}

	out, code := b.run(t, ctx, "enqueue", nil, "--quiet", "--strict", "--batch", "far", first, second)
	check(out, code)
	if !strings.Contains(out, "--strict: 2 bad line(s); nothing published") {
		t.Errorf("--strict:\n%s", tail(out))
	}
	if got := b.enqueued(t, ctx); got != 0 {
		t.Fatalf("--strict recorded %d ids", got)
	}

	out, code = b.run(t, ctx, "enqueue", nil, "--quiet", "--batch", "far", first, second)
	check(out, code)
	if s := enqueueSummary(t, out); s.published != n+2 || s.duplicates != 0 || s.rejected != 2 {
		t.Errorf("first run: %s", s.line)
	}
	if got := b.enqueued(t, ctx); got != n+2 {
		t.Fatalf("batch_prompts = %d, want %d", got, n+2)
	}

	// A re-run: the same two lines rejected, nothing new recorded (the
	// others are duplicate message ids within the stream's window).
	out, code = b.run(t, ctx, "enqueue", nil, "--quiet", "--batch", "far", first, second)
	check(out, code)
	if s := enqueueSummary(t, out); s.published+s.duplicates != n+2 || s.rejected != 2 {
		t.Errorf("re-run: %s", s.line)
	}
	if got := b.enqueued(t, ctx); got != n+2 {
		t.Fatalf("after the re-run batch_prompts = %d, want %d", got, n+2)
	}
}

// tail is the end of a long output, for failure messages.
func tail(s string) string {
	if len(s) > 2000 {
		return "..." + s[len(s)-2000:]
	}
	return s
}

// Bug 1 of issue 7: two files that share a name go to the same batch with
// the same line-number ids. The second must not pass for a re-run of the
// first: its lines with other prompts are rejected, and what the first
// stored stays as it is. A true re-run stays a silent no-op.
func TestEnqueueSameNameFilesDoNotMerge(t *testing.T) {
	b, ctx := setup(t, time.Minute)
	dir := t.TempDir()
	write := func(sub, content string) string {
		p := filepath.Join(dir, sub, "q.txt")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a", "What is the capital of Peru?\nName a prime number.\nWhat is 2 plus 2?\n")
	bq := write("b", "Who wrote Hamlet?\nName a prime number.\nTranslate hello into French.\nWhat is the tallest mountain?\n")

	out := b.runWant(t, ctx, 0, "enqueue", nil, "--quiet", a)
	if s := enqueueSummary(t, out); s.batch != "q" || s.published != 3 {
		t.Fatalf("first file: %s", s.line)
	}
	// --strict checks against what the batch holds, and publishes nothing.
	out, code := b.run(t, ctx, "enqueue", nil, "--quiet", "--strict", bq)
	if code != 1 || !strings.Contains(out, bq+`:1: id "1" is already in batch "q" with a different prompt`) ||
		!strings.Contains(out, "nothing published") {
		t.Fatalf("--strict: exit %d\n%s", code, out)
	}
	if n := b.enqueued(t, ctx); n != 3 {
		t.Fatalf("--strict recorded something: batch_prompts = %d, want 3", n)
	}

	out, code = b.run(t, ctx, "enqueue", nil, "--quiet", bq)
	if code != 1 {
		t.Fatalf("second file: exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{
		bq + `:1: id "1" is already in batch "q" with a different prompt`,
		bq + `:3: id "3" is already in batch "q" with a different prompt`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, bq+":2:") || strings.Contains(out, bq+":4:") {
		t.Errorf("a good line was reported:\n%s", out)
	}
	// Line 2 is the same prompt (a duplicate, silently), line 4 is new.
	if s := enqueueSummary(t, out); s.published != 1 || s.duplicates != 1 || s.rejected != 2 {
		t.Errorf("second file: %s", s.line)
	}

	// Nothing the first file stored changed: the stream holds the first
	// file's prompts for ids 1 and 3, and one message more (id 4).
	if n := b.enqueued(t, ctx); n != 4 {
		t.Errorf("batch_prompts = %d, want 4", n)
	}
	s := promptsStream(t, ctx, b.jetStream(t))
	if n := streamMsgs(t, ctx, s); n != 4 {
		t.Errorf("stream holds %d messages, want 4", n)
	}
	for id, want := range map[string]string{"1": "What is the capital of Peru?", "3": "What is 2 plus 2?"} {
		msg, err := s.GetMsg(ctx, findSeq(t, ctx, s, "prompts.q", id))
		if err != nil {
			t.Fatal(err)
		}
		var j struct{ Prompt string }
		if err := json.Unmarshal(msg.Data, &j); err != nil || j.Prompt != want {
			t.Errorf("id %s: stream holds %q (%v), want the first file's %q", id, j.Prompt, err, want)
		}
	}

	// A true re-run of the first file: exit 0, nothing new, nothing reported.
	out = b.runWant(t, ctx, 0, "enqueue", nil, "--quiet", a)
	if s := enqueueSummary(t, out); s.published != 0 || s.duplicates != 3 || s.rejected != 0 {
		t.Errorf("re-run: %s", s.line)
	}
}

// Bugs 2 and 3 of issue 7: one oversized line stopped the whole enqueue
// ("run the same command again", which failed the same way forever). A
// 900 KB HTML prompt is about 1.75 MB once JSON-escaped, and a prompt of
// exactly 1 MiB is over a 1 MiB max_payload once wrapped in its message:
// both are rejected as bad lines, before anything is recorded, and every
// good line around them is published.
func TestEnqueueRejectsOversizedLinesAndPublishesTheRest(t *testing.T) {
	b, ctx := setup(t, time.Minute)
	var html strings.Builder
	for html.Len() < 900_000 {
		html.WriteString(`<div class="row"><a href="/x?a=1&b=2">link</a> <p>Tom & Jerry's "show"</p></div>` + "\n")
	}
	encode := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	type line struct {
		ID     string `json:"id"`
		Prompt string `json:"prompt"`
	}
	file := writeFile(t, "big.jsonl", strings.Join([]string{
		encode(line{"g1", "What is the capital of France?"}),
		encode(line{"html", html.String()}),
		encode(line{"g2", "Name a prime number."}),
		encode(line{"mib", strings.Repeat("a", 1<<20)}),
		encode(line{"g3", "What is 2 plus 2?"}),
	}, "\n")+"\n")

	out, code := b.run(t, ctx, "enqueue", nil, "--quiet", "--batch", "big", file)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (lines rejected)\n%s", code, out)
	}
	for _, want := range []string{file + ":2: prompt and system are ", file + ":4: prompt and system are 1048576 bytes", "over the 1048576-byte limit (MAX_PROMPT_BYTES)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if s := enqueueSummary(t, out); s.published != 3 || s.rejected != 2 {
		t.Errorf("summary %q; want the 3 good lines published and 2 rejected", s.line)
	}
	if strings.Contains(out, "run the same command again") {
		t.Errorf("enqueue stopped:\n%s", out)
	}
	pg := b.pg(t, ctx)
	if ids := queryStrings(t, ctx, pg, `SELECT prompt_id FROM batch_prompts WHERE batch_id = 'big' ORDER BY 1`); strings.Join(ids, ",") != "g1,g2,g3" {
		t.Errorf("batch_prompts = %v, want only the good lines", ids)
	}
	s := promptsStream(t, ctx, b.jetStream(t))
	for _, id := range []string{"g1", "g2", "g3"} {
		findSeq(t, ctx, s, "prompts.big", id)
	}
	// --strict rejects them the same way, publishing nothing.
	out, code = b.run(t, ctx, "enqueue", nil, "--quiet", "--strict", "--batch", "big2", file)
	if code != 1 || !strings.Contains(out, file+":4: ") || !strings.Contains(out, "nothing published") {
		t.Errorf("--strict: exit %d\n%s", code, out)
	}

	// MAX_PROMPT_BYTES is one setting for every binary, at most the
	// server's max_payload: above it, each refuses to start naming both.
	for _, name := range []string{"enqueue", "worker"} {
		args := []string{"--quiet", "--batch", "big", file}
		if name == "worker" {
			args = []string{"--exit-when-idle"}
		}
		out, code := b.run(t, ctx, name, []string{"MAX_PROMPT_BYTES=2097152"}, args...)
		if code == 0 || !strings.Contains(out, "MAX_PROMPT_BYTES is 2097152, over the max_payload of 1048576") {
			t.Errorf("%s with MAX_PROMPT_BYTES over max_payload: exit %d\n%s", name, code, out)
		}
	}
}
