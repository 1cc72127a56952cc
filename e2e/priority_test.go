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
// normal batch is still running (only the normal prompts already in
// flight finish meanwhile), and a low batch, enqueued before the normal
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
	bulkAtEnqueue := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'bulk'`)
	w.waitOK(t, 3*time.Minute)

	for batch, n := range map[string]int{"bulk": bulkN, "urgent": urgentN, "later": laterN} {
		b.checkBatch(t, ctx, batch, n)
	}
	// High: from its first answer to its last, only normal prompts that
	// were already in flight may finish (at most one per slot), and the
	// normal batch goes on after it.
	during := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'bulk'
		AND completed_at > (SELECT min(completed_at) FROM results WHERE batch_id = 'urgent')
		AND completed_at < (SELECT max(completed_at) FROM results WHERE batch_id = 'urgent')`)
	after := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'bulk'
		AND completed_at > (SELECT max(completed_at) FROM results WHERE batch_id = 'urgent')`)
	if during > slots || after == 0 {
		t.Errorf("bulk prompts answered while urgent ran: %d (want at most %d, the ones in flight); after urgent's last: %d (want > 0)", during, slots, after)
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
	t.Logf("high batch of %d enqueued with %d normal prompts still queued: first call %v after enqueue started, all answered %v after; %d normal prompts answered after it",
		urgentN, bulkN-bulkAtEnqueue, firstCall.Sub(enqueued).Round(time.Millisecond), lastDone.Sub(enqueued).Round(time.Millisecond), after)

	for batch, want := range map[string]string{"urgent": "high", "bulk": "normal", "later": "low"} {
		if row := statusRow(t, b.ctl(t, ctx, 0, "status", batch)); row["priority"] != want {
			t.Errorf("status %s: priority %q, want %q", batch, row["priority"], want)
		}
	}
}
