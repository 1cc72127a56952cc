package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/router"
)

// sampleHalves splits the first n lines of testdata/prompts.jsonl at line
// k into two files.
func sampleHalves(t *testing.T, root string, k, n int) (string, string) {
	t.Helper()
	b, err := os.ReadFile(firstLines(t, root, n))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	return writeFile(t, "first.jsonl", strings.Join(lines[:k], "")), writeFile(t, "second.jsonl", strings.Join(lines[k:], ""))
}

// TestRouterLoop is the learning loop of the README: a batch on the
// heuristic with shadow labelling, `router train --from-db`, a second batch
// on the learned router, each step checked in Postgres.
func TestRouterLoop(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, 4*time.Minute)
	dir := t.TempDir()
	routes := `tiers:
  simple:   [sim/small, sim/large]
  moderate: [sim/medium, sim/large]
  complex:  [sim/large]
models:
  sim/small:  {latency: 1ms}
  sim/medium: {latency: 1ms}
  sim/large:  {latency: 1ms}
shadow: {share: 0.2, judge: sim/large}
`
	heuristic := filepath.Join(dir, "heuristic.yaml")
	if err := os.WriteFile(heuristic, []byte(routes), 0o644); err != nil {
		t.Fatal(err)
	}
	first, second := sampleHalves(t, b.root, 300, 500)
	b.enqueueFile(t, ctx, "h1", first)
	b.work(t, ctx, "ROUTES_FILE="+heuristic)
	b.ctl(t, ctx, 0, "verify", "h1")
	conn := b.pg(t, ctx)

	// Shadow: its calls are logged as their own outcome, not counted as
	// attempts, and their verdicts are labels.
	shadowCalls := queryInt(t, ctx, conn, `SELECT count(*) FROM request_log WHERE batch_id = 'h1' AND outcome = 'shadow'`)
	verdicts := queryInt(t, ctx, conn, `SELECT count(*) FROM labels WHERE source = 'shadow' AND batch_id = 'h1' AND prompt IS NOT NULL`)
	if verdicts == 0 || shadowCalls < verdicts*2 {
		t.Fatalf("shadow: %d calls, %d verdicts; want verdicts, each from two calls", shadowCalls, verdicts)
	}
	if n := queryInt(t, ctx, conn, `
		SELECT count(*) FROM results r WHERE batch_id = 'h1' AND attempts <>
		  (SELECT count(*) FROM request_log l WHERE l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id AND outcome <> 'shadow')`); n != 0 {
		t.Errorf("%d results count shadow calls as attempts", n)
	}
	if n := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'h1' AND router_score IS NOT NULL`); n != 0 {
		t.Errorf("%d heuristic results have a router_score", n)
	}

	out := b.ctl(t, ctx, 0, "router", "train", "--from-db", "h1", "--out", filepath.Join(dir, "router.json"), "--seed", "5")
	// Labels from the batch: failures of any first model and verdicts that an
	// answer was worse; passes and as-good verdicts only of sim/small, the
	// simple tier's first model (a pass of sim/large on a complex prompt says
	// nothing about the cheap model).
	usable := queryInt(t, ctx, conn, `SELECT count(*) FROM labels WHERE source = 'shadow' AND batch_id = 'h1' AND prompt IS NOT NULL AND (model = 'sim/small' OR NOT correct)`)
	firstTried := func(tier, model, outcomes string) int {
		return queryInt(t, ctx, conn, `SELECT count(*) FROM results r WHERE batch_id = 'h1' AND tier = $1 AND EXISTS (
			SELECT 1 FROM request_log l WHERE l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id
			AND l.delivery = 1 AND l.attempt = 1 AND l.model = $2 AND l.outcome = ANY(string_to_array($3, ',')))`, tier, model, outcomes)
	}
	sure := firstTried("simple", "sim/small", "ok,quality_failed")
	complexPasses := firstTried("complex", "sim/large", "ok")
	var trained, passedOver int
	for _, line := range strings.Split(out, "\n") {
		fmt.Sscanf(line, "trained on %d prompts", &trained)
		fmt.Sscanf(line, "note: %d pass(es) of models other than the cheap model sim/small", &passedOver)
	}
	if wantShadow := fmt.Sprintf(" %d shadow verdicts", usable); !strings.Contains(out, wantShadow) ||
		!(trained >= sure && trained < 300) || complexPasses == 0 || passedOver < complexPasses {
		t.Fatalf("router train --from-db:\n%s\nwant%s, between %d (sim/small's first tries) and 299 prompts, and at least the %d passes of sim/large on complex prompts passed over",
			out, wantShadow, sure, complexPasses)
	}
	r, err := router.LoadFile(filepath.Join(dir, "router.json"))
	if err != nil {
		t.Fatal(err)
	}

	learned := filepath.Join(dir, "learned.yaml")
	if err := os.WriteFile(learned, []byte(routes+"classifier: {kind: learned, model: router.json, shares: {simple: 0.5, moderate: 0.3, complex: 0.2}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.enqueueFile(t, ctx, "l2", second)
	b.work(t, ctx, "ROUTES_FILE="+learned)
	b.ctl(t, ctx, 0, "verify", "l2")

	// Every prompt of the second batch is scored, and its tier is the
	// router's: score against the cutoffs the shares gave.
	cut, err := r.CutoffsFor(router.Shares{Simple: 0.5, Moderate: 0.3, Complex: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `SELECT prompt, tier, router_score FROM results WHERE batch_id = 'l2'`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var p, tier string
		var score *float64
		if err := rows.Scan(&p, &tier, &score); err != nil {
			t.Fatal(err)
		}
		n++
		if score == nil {
			t.Fatalf("a learned-router result has no router_score: %.40q", p)
		}
		if want := r.Score(p); *score != want || string(cut.Tier(want)) != tier {
			t.Fatalf("%.40q: stored score %v tier %s; the router file gives %v tier %s", p, *score, tier, want, cut.Tier(want))
		}
	}
	if rows.Err() != nil || n != 200 {
		t.Fatalf("%d results in l2 (%v), want 200", n, rows.Err())
	}

	// A corrupt router file stops the worker at start, with the routes line.
	good, err := os.ReadFile(filepath.Join(dir, "router.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "router.json"), []byte(strings.Replace(string(good), `"seed":5,`, `"seed":6,`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := b.run(t, ctx, "worker", []string{"ROUTES_FILE=" + learned, "WORKER_EXIT_WHEN_IDLE=true"})
	if code == 0 || !strings.Contains(out, "learned.yaml:") || !strings.Contains(out, "classifier.model: router file") || !strings.Contains(out, "checksum mismatch") {
		t.Errorf("worker with a corrupt router file: exit %d\n%s", code, out)
	}

	// The report shows both batches (cost and cascade rates per tier).
	for batch, prompts := range map[string]int{"h1": 300, "l2": 200} {
		if out := b.ctl(t, ctx, 0, "report", batch); !strings.Contains(out, fmt.Sprintf("batch %s: %d prompts", batch, prompts)) || !strings.Contains(out, "cascade_rate") {
			t.Errorf("report %s:\n%s", batch, out)
		}
	}
}

// TestLabelsImport: a RouteLLM CSV and a JSONL file with one bad line are
// imported (the bad line reported as file:line, the good ones kept), and
// `router train --from-db DATASET` learns from the imported labels.
func TestLabelsImport(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, 2*time.Minute)
	gsm := filepath.Join(b.root, "testdata", "routellm", "gsm8k_responses.csv")
	out := b.ctl(t, ctx, 0, "labels", "import", gsm)
	if !strings.Contains(out, `1319 prompts x 2 models as dataset "gsm8k_responses.csv": 2638 labels new or changed`) {
		t.Fatalf("labels import:\n%s", out)
	}
	jl := writeFile(t, "extra.jsonl", `{"id":"a","prompt":"hi","correct":{"m1":true}}`+"\n"+`{"id":"b","prompt":"x","correct":{"m1":"yes"}}`+"\n")
	out, code := b.run(t, ctx, "cascadectl", nil, "labels", "import", "--dataset", "extra", jl)
	if code != 1 || !strings.Contains(out, jl+":2: correct: m1: want true or false") || !strings.Contains(out, "1 labels new or changed") {
		t.Fatalf("labels import with a bad line: exit %d\n%s", code, out)
	}
	conn := b.pg(t, ctx)
	if n := queryInt(t, ctx, conn, `SELECT count(*) FROM labels WHERE dataset = 'extra'`); n != 1 {
		t.Errorf("%d labels of the JSONL file stored, want the good line's 1", n)
	}
	out = b.ctl(t, ctx, 0, "router", "train", "--from-db", "gsm8k_responses.csv", "--cheap", "mistralai/Mixtral-8x7B-Instruct-v0.1",
		"--strong", "gpt-4-1106-preview", "--out", filepath.Join(t.TempDir(), "r.json"))
	if !strings.Contains(out, "trained on 1319 prompts (0 from files, 1319 imported") {
		t.Errorf("router train from imported labels:\n%s", out)
	}
}
