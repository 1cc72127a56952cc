package e2e

import (
	"strconv"
	"syscall"
	"testing"
	"time"
)

// status shows, per batch, the prompts workers have in flight and waiting,
// summed over every worker process: here two workers on a slow sim model
// whose simulated capacity (rpm 120 per process) is far below what their
// slots could call, so most prompts they hold wait for it in the limiter
// (on_rate_limit: wait). A killed worker's report stops counting on its own;
// once the batch is done both counts are 0.
func TestStatusInFlightAndWaiting(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, 5*time.Minute)
	routes := routesEnv(t, `
on_rate_limit: wait
tiers: {simple: [sim/slow], moderate: [sim/slow], complex: [sim/slow]}
models:
  sim/slow: {latency: 1s, rpm: 120, error_rate: 0, timeout_rate: 0, weak_rate: 0, rate_limit_rate: 0,
             input_cost_per_mtok: 1, output_cost_per_mtok: 2}
`)
	const n = 60
	b.enqueueFile(t, ctx, "slow", firstLines(t, b.root, n))
	env := []string{routes, "WORKER_CONCURRENCY=8", "NATS_ACK_WAIT=5s"}
	w1 := b.startWorker(t, ctx, "w1", append(env, "WORKER_EXIT_WHEN_IDLE=true")...)
	w2 := b.startWorker(t, ctx, "w2", env...)

	num := func(row map[string]string, col string) int {
		t.Helper()
		v, err := strconv.Atoi(row[col])
		if err != nil {
			t.Fatalf("status column %s = %q", col, row[col])
		}
		return v
	}
	var row map[string]string
	var text string
	status := func() map[string]string {
		text = b.ctl(t, ctx, 0, "status", "slow")
		row = statusRow(t, text)
		return row
	}
	waitUntil(t, ctx, "both workers reporting prompts in flight and waiting", func() bool {
		r := status()
		return num(r, "workers") == 2 && num(r, "in_flight") > 0 && num(r, "waiting") > 0
	})
	t.Logf("during the run:\n%s", text)
	if f, w, q := num(row, "in_flight"), num(row, "waiting"), num(row, "queued"); f+w > q || f > 2*8 {
		t.Errorf("in_flight %d + waiting %d: more than queued %d, or more in flight than 2 workers × 8 slots", f, w, q)
	}

	// Killed: its row stays in the table (it is deleted only once expired
	// for a minute) but stops counting within three report intervals.
	w2.signal(t, syscall.SIGKILL)
	w2.wait(t, time.Minute)
	killed := time.Now()
	waitUntil(t, ctx, "the killed worker's report to stop counting", func() bool { return num(status(), "workers") <= 1 })
	conn := b.pg(t, ctx)
	if got := queryInt(t, ctx, conn, `SELECT count(*) FROM worker_batch_load WHERE worker_id = 'w2'`); got != 1 && time.Since(killed) < 50*time.Second {
		t.Errorf("the killed worker has %d row(s) %v after the kill; want its row kept (not counted) until it has been expired a minute",
			got, time.Since(killed).Round(time.Second))
	}

	w1.waitOK(t, 3*time.Minute)
	r := status()
	if num(r, "done") != n || num(r, "in_flight") != 0 || num(r, "waiting") != 0 || num(r, "workers") != 0 {
		t.Errorf("after the run: %v; want %d done, 0 in flight, 0 waiting, no worker", r, n)
	}
	if got := queryInt(t, ctx, conn, `SELECT count(*) FROM worker_batch_load WHERE worker_id = 'w1'`); got != 0 {
		t.Errorf("w1 exited cleanly but left %d row(s)", got)
	}
}
