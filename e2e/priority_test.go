package e2e

import (
	"testing"
	"time"
)

// evenRoutes: one quick sim model that never errs, so no delivery is
// handed back and every prompt is answered by its first delivery: the
// order of results is the order the worker took the prompts in.
const evenRoutes = `
tiers:
  simple:   [sim/even]
  moderate: [sim/even]
  complex:  [sim/even]
models:
  sim/even:
    latency: 15ms
    timeout: 5s
    capability: 1
    input_cost_per_mtok: 1
    output_cost_per_mtok: 2
cooldown:
  failures: 0
`

// Priority between batches, with one worker of 8 slots: a high batch
// enqueued behind thousands of normal prompts is answered while the
// normal batch is still running (only the normal prompts the worker
// already held start meanwhile), and a low batch, enqueued before the normal
// one (so first in the stream), waits until normal has nothing left.
func TestPriorityHighJumpsQueueLowWaits(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, 4*time.Minute)
	const slots, bulkN, urgentN, laterN = 8, 3000, 40, 30
	b.runWant(t, ctx, 0, "enqueue", nil, "--batch", "later", "--priority", "low", "--quiet", firstLines(t, b.root, laterN))
	b.enqueueFile(t, ctx, "bulk", genPrompts(t, b.root, bulkN))
	w := b.startWorker(t, ctx, "w1", routesEnv(t, evenRoutes), "WORKER_CONCURRENCY=8", "WORKER_EXIT_WHEN_IDLE=true")
	conn := b.pg(t, ctx)
	waitUntil(t, ctx, "first answers of batch bulk", func() bool {
		return queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'bulk'`) >= 200
	})
	urgentFile := firstLines(t, b.root, urgentN)
	enqueued := time.Now()
	b.runWant(t, ctx, 0, "enqueue", nil, "--batch", "urgent", "--priority", "high", "--quiet", urgentFile)
	published := time.Now()
	bulkAtEnqueue := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'bulk'`)
	w.waitOK(t, 3*time.Minute)

	for batch, n := range map[string]int{"bulk": bulkN, "urgent": urgentN, "later": laterN} {
		b.checkBatch(t, ctx, batch, n)
	}
	// High: once all of it is published, and until its last prompt
	// starts, a high prompt is always queued, on its way to a slot
	// (claimed) or waiting for one, so normal prompts may start only in the
	// first moments: those this worker held but had not started when the
	// last high one was published, at most its credits (slots + prefetch:
	// 8 + 2). The old slot gate, without claims, let 13-20 start in 3 of 4
	// runs on a loaded machine: each slot that freed while a fetched high
	// prompt was still being checked went to a normal one. (While the high
	// batch is being published, a fetch may find none of it yet and take
	// normal prompts. Counting the normal prompts that finished while the
	// high ones ran would count those started in the high batch's tail, when
	// every high prompt was already worked and free slots rightly went to
	// normal ones.)
	during := queryInt(t, ctx, conn, `WITH first AS (
			SELECT batch_id, prompt_id, min(started_at) AS s FROM request_log
			WHERE batch_id IN ('bulk', 'urgent') GROUP BY 1, 2)
		SELECT count(*) FROM first
		WHERE batch_id = 'bulk'
		AND s > greatest($1, (SELECT min(s) FROM first WHERE batch_id = 'urgent'))
		AND s < (SELECT max(s) FROM first WHERE batch_id = 'urgent')`, published)
	after := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'bulk'
		AND completed_at > (SELECT max(completed_at) FROM results WHERE batch_id = 'urgent')`)
	const credits = slots + slots/4 // WORKER_PREFETCH's default: a quarter of the slots
	if during > credits || after == 0 {
		t.Errorf("bulk prompts started after urgent was published, before its last prompt started: %d (want at most %d, the deliveries the worker held); answered after urgent's last: %d (want > 0)", during, credits, after)
	}
	// Low: once its first prompt is answered, only normal prompts already
	// in flight may still finish.
	lowFirst := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'bulk'
		AND completed_at > (SELECT min(completed_at) FROM results WHERE batch_id = 'later')`)
	if lowFirst > slots {
		t.Errorf("%d bulk prompts answered after the low batch's first answer, want at most %d (the ones in flight)", lowFirst, slots)
	}

	// How long the high batch waited: from the start of its enqueue run to
	// its first model call, and how much of bulk was still queued.
	var firstCall, lastDone time.Time
	if err := conn.QueryRow(ctx, `SELECT (SELECT min(started_at) FROM request_log WHERE batch_id = 'urgent'),
		(SELECT max(completed_at) FROM results WHERE batch_id = 'urgent')`).Scan(&firstCall, &lastDone); err != nil {
		t.Fatal(err)
	}
	t.Logf("high batch of %d enqueued with %d normal prompts still queued: first call %v after enqueue started, all answered %v after; %d normal prompts started once it was published and before its last, %d answered after it",
		urgentN, bulkN-bulkAtEnqueue, firstCall.Sub(enqueued).Round(time.Millisecond), lastDone.Sub(enqueued).Round(time.Millisecond), during, after)

	for batch, want := range map[string]string{"urgent": "high", "bulk": "normal", "later": "low"} {
		if row := statusRow(t, b.ctl(t, ctx, 0, "status", batch)); row["priority"] != want {
			t.Errorf("status %s: priority %q, want %q", batch, row["priority"], want)
		}
	}
}
