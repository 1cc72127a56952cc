package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// slowRoutes: every prompt's cascade takes about two seconds: four calls
// of sim/flaky that fail (about 450 ms each), then sim/slow answers. So
// calls of one prompt go on for longer than cancel and pause take to
// return, and only the workers' check before each call stops them.
const slowRoutes = `
tiers:
  simple:   [sim/flaky, sim/slow]
  moderate: [sim/flaky, sim/slow]
  complex:  [sim/flaky, sim/slow]
backoff: {base: 1ms, max: 5ms}
models:
  sim/flaky:
    latency: 1500ms
    timeout: 5s
    max_retries: 3
    error_rate: 1
    input_cost_per_mtok: 1
    output_cost_per_mtok: 2
  sim/slow:
    latency: 150ms
    timeout: 5s
    capability: 1
    input_cost_per_mtok: 1
    output_cost_per_mtok: 2
cooldown:
  failures: 0
`

// Cancel during a running batch: once `cascadectl cancel` returns, no
// model call of that batch starts; its queued messages are gone, its
// unanswered prompts are canceled, verify accounts for every prompt, and
// another batch on the same workers is not touched.
func TestBatchCancelWhileRunning(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, 3*time.Minute)
	b.enqueueFile(t, ctx, "doomed", genPrompts(t, b.root, 200))
	b.enqueueFile(t, ctx, "kept", firstLines(t, b.root, 60))
	routes := routesEnv(t, slowRoutes)
	var ws []*proc
	for _, id := range []string{"w1", "w2"} {
		ws = append(ws, b.startWorker(t, ctx, id, routes, "WORKER_CONCURRENCY=8", "WORKER_EXIT_WHEN_IDLE=true"))
	}
	conn := b.pg(t, ctx)
	waitUntil(t, ctx, "first answers of batch doomed", func() bool {
		return queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'doomed'`) >= 5
	})
	out := b.ctl(t, ctx, 0, "cancel", "doomed")
	returned := time.Now()
	if !strings.Contains(out, "batch doomed canceled:") {
		t.Errorf("cancel printed:\n%s", out)
	}
	for _, w := range ws {
		w.waitOK(t, 2*time.Minute)
	}

	// No call started after cancel returned (request_log.started_at is
	// stamped just before each call, on this machine's clock).
	if late := queryInt(t, ctx, conn, `SELECT count(*) FROM request_log WHERE batch_id = 'doomed' AND started_at > $1`, returned); late != 0 {
		t.Errorf("%d model call(s) of the canceled batch started after cancel returned", late)
	}
	answered := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'doomed'`)
	canceled := queryInt(t, ctx, conn, `SELECT count(*) FROM batch_prompts p WHERE batch_id = 'doomed'
		AND NOT EXISTS (SELECT 1 FROM results r WHERE r.batch_id = p.batch_id AND r.prompt_id = p.prompt_id)`)
	if answered+canceled != 200 || canceled < 100 {
		t.Errorf("doomed: %d answered + %d canceled, want 200 with most canceled", answered, canceled)
	}
	state := queryStrings(t, ctx, conn, `SELECT state FROM batches WHERE batch_id = 'doomed'`)
	if len(state) != 1 || state[0] != "canceled" {
		t.Errorf("batches.state = %v", state)
	}
	if row := statusRow(t, b.ctl(t, ctx, 0, "status", "doomed")); row["state"] != "canceled" || row["canceled"] != fmt.Sprint(canceled) || row["queued"] != "0" {
		t.Errorf("status of the canceled batch: %v", row)
	}
	v := b.ctl(t, ctx, 0, "verify", "doomed")
	if !strings.Contains(v, "complete (canceled)") || !strings.Contains(v, "canceled") {
		t.Errorf("verify of a canceled batch:\n%s", v)
	}
	b.checkBatch(t, ctx, "kept", 60)
	// Cancel again is harmless; an unknown batch is a usage error.
	b.ctl(t, ctx, 0, "cancel", "doomed")
	if got := b.ctl(t, ctx, 2, "cancel", "nope"); !strings.Contains(got, "unknown batch") {
		t.Errorf("cancel of an unknown batch: %s", got)
	}
}

// Pause stops spending on a batch without losing its place: workers set its
// queued messages aside in Postgres (no model call), verify says paused
// (exit 3, nothing lost), and resume puts them back so the batch completes
// with one result per prompt.
func TestBatchPauseResume(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, 3*time.Minute)
	b.enqueueFile(t, ctx, "p", genPrompts(t, b.root, 100))
	routes := routesEnv(t, slowRoutes)
	w1 := b.startWorker(t, ctx, "w1", routes, "WORKER_CONCURRENCY=8")
	conn := b.pg(t, ctx)
	waitUntil(t, ctx, "first answers", func() bool {
		return queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'p'`) >= 5
	})
	row := statusRow(t, b.ctl(t, ctx, 0, "status", "p"))
	if row["state"] != "running" || row["total"] != "100" || row["prompts/s"] == "0.0" || row["eta"] == "?" || row["eta"] == "-" {
		t.Errorf("status of a running batch: %v", row)
	}
	out := b.ctl(t, ctx, 0, "pause", "p")
	paused := time.Now()
	if !strings.Contains(out, "batch p paused") {
		t.Errorf("pause printed:\n%s", out)
	}
	js := b.jetStream(t)
	waitUntil(t, ctx, "the paused batch's messages set aside", func() bool {
		return streamMsgs(t, ctx, promptsStream(t, ctx, js)) == 0
	})
	if late := queryInt(t, ctx, conn, `SELECT count(*) FROM request_log WHERE batch_id = 'p' AND started_at > $1`, paused); late != 0 {
		t.Errorf("%d model call(s) started after pause returned", late)
	}
	done := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'p'`)
	parked := queryInt(t, ctx, conn, `SELECT count(*) FROM batch_parked WHERE batch_id = 'p'`)
	if done+parked != 100 || parked == 0 {
		t.Fatalf("paused: %d done + %d parked, want 100", done, parked)
	}
	v := b.ctl(t, ctx, 3, "verify", "p")
	if !strings.Contains(v, "batch paused, nothing lost") || !strings.Contains(v, "paused") {
		t.Errorf("verify of a paused batch:\n%s", v)
	}
	st := b.ctl(t, ctx, 0, "status", "p")
	if row := statusRow(t, st); row["state"] != "paused" || row["eta"] != "paused" || row["queued"] != fmt.Sprint(parked) ||
		!strings.Contains(st, fmt.Sprintf("batch p is paused (paused by cascadectl pause): %d prompt(s) set aside", parked)) {
		t.Errorf("status of a paused batch:\n%s", st)
	}
	if got := b.ctl(t, ctx, 0, "pause", "p"); !strings.Contains(got, "already paused") {
		t.Errorf("second pause: %s", got)
	}

	out = b.ctl(t, ctx, 0, "resume", "p")
	if !strings.Contains(out, "batch p resumed:") {
		t.Errorf("resume printed:\n%s", out)
	}
	w1.signal(t, 15) // the first worker stops; one that exits when idle finishes the batch
	w1.waitOK(t, time.Minute)
	b.work(t, ctx, routes)
	b.checkBatch(t, ctx, "p", 100)
	if row := statusRow(t, b.ctl(t, ctx, 0, "status", "p")); row["state"] != "running" || row["done"] != "100" || row["queued"] != "0" || row["eta"] != "-" {
		t.Errorf("status of the finished batch: %v", row)
	}
	if n := queryInt(t, ctx, conn, `SELECT count(*) FROM batch_parked`); n != 0 {
		t.Errorf("%d parked message(s) left after resume", n)
	}
}

// statusRow parses `cascadectl status BATCH`: its header and first row.
func statusRow(t *testing.T, out string) map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		t.Fatalf("status printed:\n%s", out)
	}
	head, vals := strings.Fields(lines[0]), strings.Fields(lines[1])
	if len(head) != len(vals) {
		t.Fatalf("status row does not match its header:\n%s", out)
	}
	m := map[string]string{}
	for i, h := range head {
		m[h] = vals[i]
	}
	return m
}

// With STORE_PROMPTS=false a paused batch's prompt text is not set aside
// in Postgres: its messages wait in the stream on prompts.parked.<batch>
// (batch_parked keeps only the ids), and resume puts every one of them
// back, so the batch completes with one result per prompt.
func TestBatchPauseResumeWithoutStoredPrompts(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, 3*time.Minute)
	b.enqueueFile(t, ctx, "np", genPrompts(t, b.root, 100))
	routes := routesEnv(t, slowRoutes)
	w1 := b.startWorker(t, ctx, "w1", routes, "WORKER_CONCURRENCY=8", "STORE_PROMPTS=false")
	conn := b.pg(t, ctx)
	waitUntil(t, ctx, "first answers", func() bool {
		return queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'np'`) >= 5
	})
	b.ctl(t, ctx, 0, "pause", "np")
	js := b.jetStream(t)
	stream := promptsStream(t, ctx, js)
	onSubject := func(subject string) uint64 {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Subjects[subject]
	}
	waitUntil(t, ctx, "the paused batch's messages set aside", func() bool {
		return onSubject("prompts.np") == 0 &&
			queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'np'`)+
				queryInt(t, ctx, conn, `SELECT count(*) FROM batch_parked WHERE batch_id = 'np'`) == 100
	})
	parked := queryInt(t, ctx, conn, `SELECT count(*) FROM batch_parked WHERE batch_id = 'np'`)
	if parked == 0 {
		t.Fatal("nothing was parked: the test did not test anything")
	}
	if n := queryInt(t, ctx, conn, `SELECT count(*) FROM batch_parked WHERE batch_id = 'np' AND octet_length(payload) > 0`); n != 0 {
		t.Errorf("%d of %d parked rows keep the message (prompt text) in Postgres with STORE_PROMPTS=false", n, parked)
	}
	if n := onSubject("prompts.parked.np"); n != uint64(parked) {
		t.Errorf("%d messages on prompts.parked.np, want the %d parked prompts", n, parked)
	}
	if v := b.ctl(t, ctx, 3, "verify", "np"); !strings.Contains(v, "batch paused, nothing lost") {
		t.Errorf("verify of a paused batch:\n%s", v)
	}

	out := b.ctl(t, ctx, 0, "resume", "np")
	if !strings.Contains(out, fmt.Sprintf("batch np resumed: %d prompt(s) set aside while paused are queued again", parked)) {
		t.Errorf("resume printed:\n%s", out)
	}
	w1.signal(t, 15)
	w1.waitOK(t, time.Minute)
	b.work(t, ctx, routes, "STORE_PROMPTS=false")
	b.checkBatch(t, ctx, "np", 100)
	if n := queryInt(t, ctx, conn, `SELECT count(*) FROM batch_parked`); n != 0 {
		t.Errorf("%d parked row(s) left after resume", n)
	}
	if n := onSubject("prompts.parked.np"); n != 0 {
		t.Errorf("%d parked message(s) left in the stream after resume", n)
	}
	if n := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'np' AND (prompt IS NOT NULL OR response IS NOT NULL)`); n != 0 {
		t.Errorf("%d results keep text with STORE_PROMPTS=false", n)
	}
}
