package e2e

// Fault tests of issue 4: each runs the real binaries against an embedded
// nats-server and a fresh Postgres schema, breaks something at a chosen
// moment, lets the batch finish, and ends with reconcile: every enqueued
// prompt has exactly one results row, and no model call for a prompt started
// once its result was being committed.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

// TestFaultKillWorker kills a worker (os.Exit(137) from the fault-injection
// setting, as kill -9 would) during a model call, after the answer but
// before its commit, and after the commit but before the ack. Another worker
// keeps going, a replacement starts, and together they finish the batch with
// exactly one result per prompt and nothing committed paid again.
func TestFaultKillWorker(t *testing.T) {
	for _, point := range []string{"during-call", "before-commit", "after-commit"} {
		t.Run(point, func(t *testing.T) {
			b, ctx := setup(t, 45*time.Second)
			const n, faultAfter = 400, 40
			b.enqueueFile(t, ctx, "kill", firstLines(t, b.root, n))

			// AckWait 2s: the dead worker's deliveries come back quickly.
			common := []string{routesEnv(t, fastRoutes), "NATS_ACK_WAIT=2s",
				"WORKER_CONCURRENCY=16", "WORKER_EXIT_WHEN_IDLE=true"}
			// The faulty worker starts first, so that it surely commits
			// WORKER_FAULT_AFTER prompts before the batch runs out.
			addr := freeAddr(t)
			faulty := b.startWorker(t, ctx, "faulty", append(common, "WORKER_FAULT="+point,
				fmt.Sprint("WORKER_FAULT_AFTER=", faultAfter), "METRICS_ADDR="+addr)...)
			waitUntil(t, ctx, "the faulty worker to start work", func() bool {
				v, ok := inFlight(ctx, addr)
				return ok && v > 0 || faulty.exited()
			})
			steady := b.startWorker(t, ctx, "steady", common...)

			if code := faulty.wait(t, 30*time.Second); code != 137 {
				t.Fatalf("faulty worker exited %d, want 137; output:\n%s", code, faulty.out)
			}
			if !strings.Contains(faulty.out.String(), "point="+point) {
				t.Fatalf("faulty worker did not report fault point %s; output:\n%s", point, faulty.out)
			}
			replacement := b.startWorker(t, ctx, "replacement", common...)
			steady.waitOK(t, 30*time.Second)
			replacement.waitOK(t, 30*time.Second)

			rec := b.reconcile(t, ctx, "kill", n)
			if len(rec.ExtraOK) > 0 {
				t.Errorf("prompts answered ok by more than one delivery: %v", rec.ExtraOK)
			}
			conn := b.pg(t, ctx)
			byFaulty := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'kill' AND worker_id = 'faulty'`)
			if byFaulty == 0 {
				t.Errorf("the faulty worker committed nothing before its fault (WORKER_FAULT_AFTER=%d)", faultAfter)
			}
			already := steady.alreadyDone(t) + replacement.alreadyDone(t)
			t.Logf("%s: faulty worker committed %d results; %d results came after a delivery lost in the crash; %d redeliveries acked as already done",
				point, byFaulty, rec.CrashRedelivered, already)
			switch point {
			case "during-call", "before-commit":
				// The crash lost deliveries whose calls had started (and,
				// before-commit, been answered): they were asked again,
				// which is allowed, since nothing about them was committed.
				if rec.CrashRedelivered == 0 {
					t.Errorf("no result came from a redelivery of a prompt the faulty worker held when it died")
				}
			case "after-commit":
				// The batch committed just before the crash was never acked:
				// its redeliveries must be acked without a model call.
				if already == 0 {
					t.Errorf("no redelivery was acked as already done; the committed-but-unacked batch was not seen again")
				}
				if again := queryInt(t, ctx, conn, `SELECT count(*) FROM results r JOIN request_log l
					ON l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id AND l.delivery > r.delivery
					WHERE r.batch_id = 'kill' AND r.worker_id = 'faulty'`); again != 0 {
					t.Errorf("%d model calls for prompts the faulty worker had committed", again)
				}
			}
		})
	}
}

// pauseRoutes: simple prompts get an instant answer, the others a slow one,
// all without errors, so a worker using these routes warms up on the simple
// prompts and then holds slow ones mid-call for seconds, one call each.
const pauseRoutes = `
tiers:
  simple:   [sim/instant]
  moderate: [sim/slow]
  complex:  [sim/slow]
models:
  sim/instant:
    latency: 1ms
    timeout: 60s
    max_retries: 0
    error_rate: 0
    rate_limit_rate: 0
    timeout_rate: 0
    weak_rate: 0
    capability: 1
    input_cost_per_mtok: 1
    output_cost_per_mtok: 4
  sim/slow:
    latency: 4s
    timeout: 60s
    max_retries: 0
    error_rate: 0
    rate_limit_rate: 0
    timeout_rate: 0
    weak_rate: 0
    capability: 1
    input_cost_per_mtok: 1
    output_cost_per_mtok: 4
`

// simpleFirst writes the first n lines of testdata/prompts.jsonl with the
// prompts the default classifier calls simple moved to the front.
func simpleFirst(t *testing.T, root string, n int) string {
	t.Helper()
	data, err := os.ReadFile(firstLines(t, root, n))
	if err != nil {
		t.Fatal(err)
	}
	cl := classify.Default()
	var simple, rest []byte
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		var j struct{ Prompt string }
		if len(line) == 0 {
			continue
		}
		if err := json.Unmarshal(line, &j); err != nil {
			t.Fatal(err)
		}
		if tier, _ := cl.Classify(j.Prompt); tier == prompt.TierSimple {
			simple = append(simple, line...)
		} else {
			rest = append(rest, line...)
		}
	}
	return writeFile(t, "simple-first.jsonl", string(append(simple, rest...)))
}

// TestFaultPausedWorker stops a worker (SIGSTOP) while it holds prompts
// mid-call, past AckWait: its heartbeats stop, the server redelivers, and
// another worker answers and commits them. Resumed (SIGCONT), the paused
// worker finishes its calls, writes and acks; none of that changes results,
// and its calls all started before the other worker's commits.
func TestFaultPausedWorker(t *testing.T) {
	b, ctx := setup(t, 45*time.Second)
	const n, held = 80, 8
	b.enqueueFile(t, ctx, "pause", simpleFirst(t, b.root, n))
	conn := b.pg(t, ctx)
	countBy := func(worker string) int {
		return queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'pause' AND worker_id = $1`, worker)
	}

	// AckWait 2s, not 1s: the paused worker heartbeats every third of it,
	// and on a loaded machine a heartbeat can come later than 667 ms; the
	// server then redelivers a prompt the worker is still answering, and
	// it is paid twice (p-0021 in a CI run at load 14).
	common := []string{"NATS_ACK_WAIT=2s", "WORKER_EXIT_WHEN_IDLE=true"}
	addr := freeAddr(t)
	paused := b.startWorker(t, ctx, "paused", append(common, routesEnv(t, pauseRoutes),
		fmt.Sprint("WORKER_CONCURRENCY=", held), "METRICS_ADDR="+addr)...)
	// Stop it once it is warm (it has answered and committed the simple
	// prompts) and every slot holds a slow call: all slots busy and nothing
	// committed for a while. A warm worker starts a call microseconds after
	// taking a prompt, and a slow call lasts a second or more.
	var warm, stable int
	waitUntil(t, ctx, "the worker to hold slow calls in every slot", func() bool {
		time.Sleep(20 * time.Millisecond)
		v, ok := inFlight(ctx, addr)
		c := countBy("paused")
		if !ok || v != held || c == 0 || c != warm {
			warm, stable = c, 0
			return false
		}
		stable++
		return stable >= 5
	})
	paused.signal(t, syscall.SIGSTOP)
	stoppedAt := time.Now()

	// The taker exits only when nothing is pending or unacked, so it has also
	// answered the prompts the paused worker holds, once AckWait let the
	// server redeliver them.
	taker := b.startWorker(t, ctx, "taker", append(common, routesEnv(t, fastRoutes), "WORKER_CONCURRENCY=16")...)
	taker.waitOK(t, 30*time.Second)
	if paused.exited() {
		t.Fatalf("the paused worker exited while stopped; output:\n%s", paused.out)
	}
	const digest = `SELECT count(*)::text || ':' || coalesce(md5(string_agg(r::text, '|' ORDER BY prompt_id)), '')
		FROM results r WHERE batch_id = 'pause'`
	before := queryStrings(t, ctx, conn, digest)[0]
	if p, k := countBy("paused"), countBy("taker"); p != warm || p+k != n {
		t.Fatalf("results: %d by the paused worker (%d when stopped), %d by the taker; want %d in all", p, warm, k, n)
	}

	paused.signal(t, syscall.SIGCONT)
	paused.waitOK(t, 30*time.Second)

	if after := queryStrings(t, ctx, conn, digest)[0]; after != before {
		t.Errorf("results changed after the paused worker resumed:\nbefore %s\nafter  %s", before, after)
	}
	rec := b.reconcile(t, ctx, "pause", n)

	// The paused worker's late writes: one logged call per prompt it held,
	// each started before it was stopped; the result is the taker's, from a
	// later delivery.
	late := queryStrings(t, ctx, conn, `SELECT l.prompt_id FROM request_log l WHERE l.batch_id = 'pause' AND l.worker_id = 'paused'
		AND l.started_at < $1 AND l.delivery = 1 AND l.outcome = 'ok'
		AND EXISTS (SELECT 1 FROM results r WHERE r.batch_id = l.batch_id AND r.prompt_id = l.prompt_id
			AND r.worker_id = 'taker' AND r.delivery > l.delivery)
		ORDER BY 1`, stoppedAt)
	all := queryInt(t, ctx, conn, `SELECT count(*) FROM request_log l WHERE batch_id = 'pause' AND worker_id = 'paused'
		AND NOT EXISTS (SELECT 1 FROM results r WHERE r.batch_id = l.batch_id AND r.prompt_id = l.prompt_id AND r.worker_id = 'paused')`)
	if len(late) != held || all != held {
		t.Errorf("paused worker logged %d calls for prompts it did not commit, %d of them the expected late ok answers (want %d): %v", all, len(late), held, late)
	}
	if fmt.Sprint(rec.ExtraOK) != fmt.Sprint(late) {
		t.Errorf("prompts answered ok twice = %v, want exactly the paused worker's %v", rec.ExtraOK, late)
	}
	t.Logf("paused worker committed %d simple prompts, then held %v; results digest %s", warm, late, before)
}

// TestFaultEnqueueInterrupted kills enqueue (SIGKILL) part-way through a
// large input and runs it again with the same batch while a worker is
// already consuming: the second run publishes only what the first did not
// store, the stream holds each prompt once, and every prompt is answered
// exactly once.
func TestFaultEnqueueInterrupted(t *testing.T) {
	b, ctx := setup(t, 55*time.Second)
	const n = 20000
	file := genPrompts(t, b.root, n)
	conn := b.pg(t, ctx)
	recorded := func() int {
		var k int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM batch_prompts`).Scan(&k); err != nil {
			return 0 // not migrated yet
		}
		return k
	}

	// Kill enqueue once the stream holds some of the batch (ids are recorded
	// per chunk before the chunk is published).
	js := b.jetStream(t)
	stored := func(ctx context.Context) uint64 {
		st, _ := streamState(t, ctx, js)
		return st.LastSeq // 0 while the stream does not exist
	}
	first := b.start(t, ctx, "enqueue", nil, "--batch", "big", "--quiet", file)
	for stored(ctx) < n/8 && !first.exited() && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	first.signal(t, syscall.SIGKILL)
	if code := first.wait(t, 10*time.Second); code != -1 {
		t.Fatalf("enqueue finished (exit %d) before it could be killed half-way; output:\n%s", code, first.out)
	}
	// The server may still be reading what the dead process sent: wait until
	// the stream has not grown for a second. Under heavy load it can pause
	// longer than that (CI at load 40 saw 1,703 more stored after a 100 ms
	// quiet spell), so the count below is a lower bound of what the killed
	// run stored; the stream's total at the end is the exact check.
	stored1 := stored(ctx)
	for quiet := 0; quiet < 10; {
		time.Sleep(100 * time.Millisecond)
		if now := stored(ctx); now != stored1 {
			stored1, quiet = now, 0
			continue
		}
		quiet++
	}
	recorded1 := recorded()
	// Every id may be recorded already (the recorder runs chunks ahead of
	// the publisher since e67d046's small first chunks): that is the harder
	// case, ids recorded but never published, which the second run must
	// publish rather than count as duplicates.
	if stored1 == 0 || stored1 >= n {
		t.Fatalf("the killed enqueue had stored %d messages and recorded %d ids of %d: not interrupted half-way", stored1, recorded1, n)
	}
	t.Logf("killed enqueue: %d ids recorded, %d messages stored", recorded1, stored1)
	startedAt := time.Now()

	routes := routesEnv(t, fastRoutes)
	early := b.startWorker(t, ctx, "early", routes, "WORKER_CONCURRENCY=256")
	out := b.enqueueFile(t, ctx, "big", file)
	sum := enqueueSummary(t, out)
	if sum.batch != "big" || sum.rejected != 0 {
		t.Fatalf("second enqueue summary: %s", out)
	}
	published, dups := sum.published, sum.duplicates
	if published+dups != n || uint64(dups) < stored1 {
		t.Errorf("second enqueue: published %d, duplicates %d; want %d in all, at least %d of them duplicates (what the killed run had stored)", published, dups, n, stored1)
	}
	if seq := stored(ctx); seq != n {
		t.Errorf("stream stored %d messages in all, want %d: a prompt was published twice or not at all", seq, n)
	}

	t.Logf("second enqueue done after %s: %s", time.Since(startedAt).Round(time.Millisecond), sum.line)
	late := b.startWorker(t, ctx, "late", routes, "WORKER_CONCURRENCY=256", "WORKER_EXIT_WHEN_IDLE=true")
	late.waitOK(t, 45*time.Second)
	early.signal(t, syscall.SIGTERM)
	early.waitOK(t, 30*time.Second)
	t.Logf("batch done after %s", time.Since(startedAt).Round(time.Millisecond))

	rec := b.reconcile(t, ctx, "big", n)
	if len(rec.ExtraOK) > 0 {
		t.Errorf("%d prompts answered ok by more than one delivery, e.g. %v", len(rec.ExtraOK), rec.ExtraOK[:min(5, len(rec.ExtraOK))])
	}
	if a, l := early.alreadyDone(t), late.alreadyDone(t); a+l != 0 {
		t.Errorf("workers saw %d+%d deliveries of prompts already answered; each prompt should be in the stream once", a, l)
	}
	if total := queryInt(t, ctx, conn, `SELECT total FROM batches WHERE batch_id = 'big'`); total != n {
		t.Errorf("batches.total = %d, want %d", total, n)
	}
}

// loadRoutes: models that take about a second, with rare hangs (a timeout
// past the drain timeout), errors and rate limits.
const loadRoutes = `
# random 429s are faults here, not capacity: fall back as the article does
on_rate_limit: cascade
tiers:
  simple:   [sim/second, sim/second-b]
  moderate: [sim/second-b, sim/second]
  complex:  [sim/second-b, sim/second]
models:
  sim/second:
    latency: 1s
    timeout: 4s
    max_retries: 1
    error_rate: 0.02
    rate_limit_rate: 0.02
    timeout_rate: 0.01
    retry_after: 100ms
    weak_rate: 0.02
    capability: 0.7
    input_cost_per_mtok: 0.15
    output_cost_per_mtok: 0.6
  sim/second-b:
    latency: 1500ms
    timeout: 4s
    max_retries: 1
    error_rate: 0.02
    rate_limit_rate: 0.02
    timeout_rate: 0.01
    retry_after: 100ms
    weak_rate: 0.01
    capability: 0.9
    input_cost_per_mtok: 2.5
    output_cost_per_mtok: 10
backoff:
  base: 50ms
  max: 500ms
cooldown:
  failures: 0
`

// TestFaultGracefulShutdownUnderLoad sends SIGTERM to a worker with hundreds
// of prompts in flight: it must exit 0 within WORKER_DRAIN_TIMEOUT (plus a
// small margin for the last commit), having committed what finished and
// handed back the rest; a fresh worker then completes the batch, every
// prompt exactly once.
func TestFaultGracefulShutdownUnderLoad(t *testing.T) {
	b, ctx := setup(t, 55*time.Second)
	const n = 2000
	const drain, margin = 3 * time.Second, 5 * time.Second
	b.enqueueFile(t, ctx, "load", genPrompts(t, b.root, n))

	routes := routesEnv(t, loadRoutes)
	addr := freeAddr(t)
	loaded := b.startWorker(t, ctx, "loaded", routes, "WORKER_CONCURRENCY=500", "METRICS_ADDR="+addr,
		"WORKER_DRAIN_TIMEOUT="+drain.String())
	var atStop int
	waitUntil(t, ctx, "hundreds of prompts in flight", func() bool {
		v, ok := inFlight(ctx, addr)
		atStop = v
		return ok && v >= 300
	})
	loaded.signal(t, syscall.SIGTERM)
	sent := time.Now()
	loaded.waitOK(t, drain+margin)
	if took := loaded.exitedAt.Sub(sent); took > drain+margin {
		t.Errorf("worker took %s to stop, more than the drain timeout %s + %s", took.Round(time.Millisecond), drain, margin)
	}
	if !strings.Contains(loaded.out.String(), `msg="worker stopped"`) {
		t.Errorf("no final log line; output:\n%s", loaded.out)
	}
	conn := b.pg(t, ctx)
	drained := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'load'`)
	if drained == 0 || drained >= n {
		t.Fatalf("%d results after the stop; want some (in-flight prompts that finished in the drain) but not all %d", drained, n)
	}
	t.Logf("SIGTERM with %d in flight; stopped in %s with %d results committed", atStop, loaded.exitedAt.Sub(sent).Round(time.Millisecond), drained)

	fresh := b.startWorker(t, ctx, "fresh", routes, "WORKER_CONCURRENCY=500", "WORKER_EXIT_WHEN_IDLE=true")
	fresh.waitOK(t, 45*time.Second)
	rec := b.reconcile(t, ctx, "load", n)
	if len(rec.ExtraOK) > 0 {
		t.Errorf("%d prompts answered ok by more than one delivery, e.g. %v", len(rec.ExtraOK), rec.ExtraOK[:min(5, len(rec.ExtraOK))])
	}
	if got := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'load' AND worker_id = 'loaded'`); got != drained {
		t.Errorf("results by the stopped worker went from %d to %d after it exited", drained, got)
	}
}

// TestFaultVerifyLargeFreshBatch is the minimal reproduction of a bug that
// TestFaultEnqueueInterrupted exposed: right after a large batch finishes
// (tables not yet analysed by autovacuum), `cascadectl verify` spends most
// of its time in the query that samples unexpected result ids, whose plan
// compares every results row with every batch_prompts row. Here verify runs
// with a statement_timeout far above what a linear plan needs on 20,000
// prompts (tens of milliseconds).
func TestFaultVerifyLargeFreshBatch(t *testing.T) {
	b, ctx := setup(t, 50*time.Second)
	const n = 20000
	b.ctl(t, ctx, 0, "migrate")
	conn := b.pg(t, ctx)
	for _, q := range []string{
		`INSERT INTO batches (batch_id, total, enqueued) VALUES ('big', $1, $1)`,
		`INSERT INTO batch_prompts (batch_id, prompt_id) SELECT 'big', 'g' || i FROM generate_series(1, $1) i`,
		// Rows as wide as real ones (prompt and response text).
		`INSERT INTO results (batch_id, prompt_id, tier, status, attempts, prompt, response, prompt_sha256, worker_id)
		 SELECT 'big', 'g' || i, 'simple', 'succeeded', 1, repeat('p', 200), repeat('r', 600), '\x00', 'w'
		 FROM generate_series(1, $1) i`,
	} {
		if _, err := conn.Exec(ctx, q, n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	b.runWant(t, ctx, 0, "cascadectl", []string{"DATABASE_URL=" + b.dsn + "&statement_timeout=5s"}, "verify", "big")
}
