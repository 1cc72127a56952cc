package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm/openai/openaitest"
)

func oneModelRoutes(model, extra string) string {
	return fmt.Sprintf(`
tiers:
  simple:   [%[1]s]
  moderate: [%[1]s]
  complex:  [%[1]s]
models:
  %[1]s:
    latency: 20ms
    timeout: 5s
    input_cost_per_mtok: 1
    output_cost_per_mtok: 2
%[2]s
cooldown:
  failures: 0
`, model, extra)
}

// Two batches with different routes run at once on the same workers: each
// prompt is answered (and every call made) by its own batch's models.
func TestBatchRoutesTwoBatchesAtOnce(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, 3*time.Minute)
	ra := writeFile(t, "a.yaml", oneModelRoutes("sim/alpha", "    capability: 1"))
	rb := writeFile(t, "b.yaml", oneModelRoutes("sim/beta", "    capability: 1"))
	file := genPrompts(t, b.root, 150)
	outA := b.runWant(t, ctx, 0, "enqueue", nil, "--batch", "ba", "--routes", ra, "--quiet", file)
	b.runWant(t, ctx, 0, "enqueue", nil, "--batch", "bb", "--routes", rb, "--quiet", file)
	if !strings.Contains(outA, "batch ba: routes "+ra+" (sha256 ") || !strings.Contains(outA, "version 1)") {
		t.Errorf("enqueue --routes printed:\n%s", outA)
	}
	// The workers' own routes name neither model.
	w1 := b.startWorker(t, ctx, "w1", "WORKER_EXIT_WHEN_IDLE=true", "WORKER_CONCURRENCY=16")
	w2 := b.startWorker(t, ctx, "w2", "WORKER_EXIT_WHEN_IDLE=true", "WORKER_CONCURRENCY=16")
	w1.waitOK(t, 2*time.Minute)
	w2.waitOK(t, 2*time.Minute)
	b.checkBatch(t, ctx, "ba", 150)
	b.checkBatch(t, ctx, "bb", 150)
	conn := b.pg(t, ctx)
	for batch, model := range map[string]string{"ba": "sim/alpha", "bb": "sim/beta"} {
		if other := queryStrings(t, ctx, conn, `SELECT DISTINCT model FROM request_log WHERE batch_id = $1 AND model <> $2`, batch, model); len(other) > 0 {
			t.Errorf("batch %s called %v, not only %s", batch, other, model)
		}
		if n := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = $1 AND model_used = $2`, batch, model); n != 150 {
			t.Errorf("batch %s: %d answers from %s, want 150", batch, n, model)
		}
		// The savings view (and report) prices the batch by its own routes.
		if got := queryStrings(t, ctx, conn, `SELECT model || ' ' || input_usd_per_mtok::float8 || ' ' || output_usd_per_mtok::float8
			FROM model_prices WHERE batch_id = $1`, batch); len(got) != 1 || got[0] != model+" 1 2" {
			t.Errorf("batch %s: model_prices %q, want only %s at $1/$2 (its own routes)", batch, got, model)
		}
	}
	for _, w := range []*proc{w1, w2} {
		if !strings.Contains(w.out.String(), `msg="batch routes loaded"`) {
			t.Errorf("%s did not log loading the batches' routes", w.name)
		}
	}
	// A bad routes file is refused with the worker's error, before anything is published.
	bad := writeFile(t, "bad.yaml", "tiers:\n  simple: [sim/x]\n  moderate: [sim/x]\n  complex: [sim/x]\nmodels:\n  sim/x: {timout: 1s}\n")
	out := b.runWant(t, ctx, 1, "enqueue", nil, "--batch", "bad", "--routes", bad, "--quiet", file)
	if !strings.Contains(out, `unknown key "timout"`) {
		t.Errorf("bad routes:\n%s", out)
	}
	// ... and before enqueue connects to anything: with neither broker nor
	// database reachable, the error is still the file's.
	out = b.runWant(t, ctx, 1, "enqueue", []string{"NATS_URL=nats://127.0.0.1:1", "DATABASE_URL=postgres://nobody@127.0.0.1:1/none?connect_timeout=1"},
		"--batch", "bad", "--routes", bad, "--quiet", file)
	if !strings.Contains(out, `unknown key "timout"`) || strings.Contains(out, "127.0.0.1:1") {
		t.Errorf("bad routes, nothing reachable:\n%s", out)
	}
}

// retry with stronger routes answers the chosen (failed) prompts again and
// changes nothing else; the earlier answers are kept in result_history.
func TestBatchRetryWithStrongerRoutes(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, 3*time.Minute)
	weak := writeFile(t, "weak.yaml", oneModelRoutes("sim/weak", "    capability: 0\n    weak_rate: 1"))
	strong := writeFile(t, "strong.yaml", oneModelRoutes("sim/strong", "    capability: 1\n    weak_rate: 0"))
	b.runWant(t, ctx, 0, "enqueue", nil, "--batch", "r", "--routes", weak, "--quiet", genPrompts(t, b.root, 120))
	b.work(t, ctx)
	b.checkBatch(t, ctx, "r", 120)
	conn := b.pg(t, ctx)
	failed := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'r' AND status = 'failed'`)
	if failed == 0 || failed == 120 {
		t.Fatalf("%d of 120 failed with the weak model: the test needs some of each", failed)
	}
	kept := `SELECT prompt_id || ' ' || model_used || ' ' || completed_at::text || ' ' || md5(coalesce(response, ''))
		FROM results WHERE batch_id = 'r' AND status = 'succeeded' ORDER BY prompt_id`
	before := queryStrings(t, ctx, conn, kept)

	out := b.ctl(t, ctx, 0, "retry", "r", "--status", "failed", "--routes", strong)
	if !strings.Contains(out, fmt.Sprintf("batch r: %d prompt(s) queued again as generation 2", failed)) || !strings.Contains(out, "version 2)") {
		t.Errorf("retry printed:\n%s", out)
	}
	b.work(t, ctx)
	b.checkBatch(t, ctx, "r", 120)
	if after := queryStrings(t, ctx, conn, kept); len(after) != len(before)+failed {
		t.Fatalf("%d succeeded before the retry and %d retried, but %d succeeded after", len(before), failed, len(after))
	}
	// Every earlier success is untouched; every retried prompt is now answered by the strong model.
	afterOld := queryStrings(t, ctx, conn, `SELECT prompt_id || ' ' || model_used || ' ' || completed_at::text || ' ' || md5(coalesce(response, ''))
		FROM results WHERE batch_id = 'r' AND status = 'succeeded' AND model_used = 'sim/weak' ORDER BY prompt_id`)
	if strings.Join(afterOld, "\n") != strings.Join(before, "\n") {
		t.Errorf("retry changed prompts it was not asked to retry")
	}
	if n := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'r' AND model_used = 'sim/strong' AND status = 'succeeded'`); n != failed {
		t.Errorf("%d prompts answered by sim/strong, want the %d retried", n, failed)
	}
	if n := queryInt(t, ctx, conn, `SELECT count(*) FROM result_history WHERE batch_id = 'r' AND generation = 1
		AND result->>'status' = 'failed' AND result->>'model_used' = 'sim/weak'`); n != failed {
		t.Errorf("result_history holds %d earlier failures, want %d", n, failed)
	}
	if got := b.ctl(t, ctx, 0, "retry", "r"); !strings.Contains(got, "no prompt matches") {
		t.Errorf("second retry: %s", got)
	}
	if got := b.ctl(t, ctx, 2, "retry", "nope"); !strings.Contains(got, `unknown batch "nope"`) {
		t.Errorf("retry of an unknown batch: %s", got)
	}
}

// A batch whose routes need a provider key the worker lacks is not failed
// by that worker: it hands the prompts back and says so in its log and in
// `cascadectl status`.
func TestBatchRoutesMissingKeyHandedBack(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, 2*time.Minute)
	routes := writeFile(t, "openai.yaml", `
tiers:
  simple:   [openai/gpt-4o-mini]
  moderate: [openai/gpt-4o-mini]
  complex:  [openai/gpt-4o-mini]
`)
	b.runWant(t, ctx, 0, "enqueue", nil, "--batch", "keyed", "--routes", routes, "--quiet", firstLines(t, b.root, 20))
	b.enqueueFile(t, ctx, "plain", firstLines(t, b.root, 20))
	w := b.startWorker(t, ctx, "nokey", "OPENAI_API_KEY=", "OPENAI_BASE_URL=", "WORKER_CONCURRENCY=8")
	conn := b.pg(t, ctx)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("worker output:\n%s", w.out)
		}
	})
	waitUntil(t, within(t, ctx, 60*time.Second), "the other batch answered and a note on the keyed one", func() bool {
		return queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'plain'`) == 20 &&
			queryInt(t, ctx, conn, `SELECT count(*) FROM batch_notes WHERE batch_id = 'keyed'`) == 1
	})
	st := b.ctl(t, ctx, 0, "status", "keyed")
	if !strings.Contains(st, "worker nokey cannot work this batch: OPENAI_API_KEY") {
		t.Errorf("status does not say why the batch waits:\n%s", st)
	}
	w.signal(t, syscall.SIGTERM)
	w.waitOK(t, time.Minute)
	if n := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'keyed'`); n != 0 {
		t.Errorf("%d prompts of the keyed batch were stored (failed?) by a worker without the key", n)
	}
	if got := strings.Count(w.out.String(), "cannot work batch with its own routes"); got != 1 {
		t.Errorf("the worker logged the missing key %d times, want once:\n%s", got, w.out)
	}
	b.ctl(t, ctx, 3, "verify", "keyed") // still queued, nothing lost

	// The same worker back with the key works the batch, and its note goes.
	api := openaitest.NewLimited(1000, 0)
	t.Cleanup(api.Close)
	w = b.startWorker(t, ctx, "nokey", "OPENAI_API_KEY=sk-e2e-routes-key-0001", "OPENAI_BASE_URL="+api.URL,
		"WORKER_CONCURRENCY=8", "WORKER_EXIT_WHEN_IDLE=true")
	w.waitOK(t, time.Minute)
	if n := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'keyed' AND status = 'succeeded'`); n != 20 {
		t.Errorf("%d prompts of the keyed batch answered by the worker with the key, want 20", n)
	}
	// (status shows notes only while a batch has queued prompts.)
	if n := queryInt(t, ctx, conn, `SELECT count(*) FROM batch_notes WHERE batch_id = 'keyed'`); n != 0 {
		t.Errorf("%d notes on the keyed batch left by a worker that works it now", n)
	}
}
