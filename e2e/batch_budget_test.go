package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// budgetRoutes: one pricey sim model (about $0.01-0.05 a call), 100 ms a call.
const budgetRoutes = `
tiers:
  simple:   [sim/pricey]
  moderate: [sim/pricey]
  complex:  [sim/pricey]
models:
  sim/pricey:
    latency: 100ms
    timeout: 5s
    capability: 1
    input_cost_per_mtok: 100
    output_cost_per_mtok: 100
cooldown:
  failures: 0
`

// A budget hit while three workers run: the batch pauses with a status line
// saying why, its spend stays within the budget plus the calls that were in
// flight (README: at most workers × WORKER_CONCURRENCY calls), spent_usd
// equals request_log to the last digit, and raising the budget resumes it.
func TestBatchBudgetThreeWorkers(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, 3*time.Minute)
	const n, budget, workers, slots = 300, 2.0, 3, 8
	routes := routesEnv(t, budgetRoutes)
	out := b.runWant(t, ctx, 0, "enqueue", []string{routes}, "--batch", "capped", "--budget", fmt.Sprint(budget), "--quiet", genPrompts(t, b.root, n))
	if !strings.Contains(out, "batch capped: budget $2.000000") {
		t.Errorf("enqueue --budget printed:\n%s", out)
	}
	var ws []*proc
	for i := range workers {
		ws = append(ws, b.startWorker(t, ctx, fmt.Sprintf("w%d", i), routes, fmt.Sprintf("WORKER_CONCURRENCY=%d", slots), "WORKER_EXIT_WHEN_IDLE=true"))
	}
	for _, w := range ws {
		w.waitOK(t, 2*time.Minute)
	}
	conn := b.pg(t, ctx)
	var spent, logged, maxCall float64
	var state, reason string
	if err := conn.QueryRow(ctx, `SELECT b.spent_usd::float8, b.state, coalesce(b.state_reason, ''),
		(SELECT coalesce(sum(cost_usd), 0)::float8 FROM request_log WHERE batch_id = 'capped'),
		(SELECT coalesce(max(cost_usd), 0)::float8 FROM request_log WHERE batch_id = 'capped')
		FROM batches b WHERE batch_id = 'capped'`).Scan(&spent, &state, &reason, &logged, &maxCall); err != nil {
		t.Fatal(err)
	}
	bound := workers * slots * maxCall
	t.Logf("spent $%.6f of a $%.2f budget (bound $%.6f over it); %s", logged, budget, bound, reason)
	if spent != logged {
		t.Errorf("batches.spent_usd %v != sum(request_log.cost_usd) %v", spent, logged)
	}
	if logged > budget+bound {
		t.Errorf("spent $%.6f: over the budget $%.2f by more than the calls in flight can cost ($%.6f)", logged, budget, bound)
	}
	if logged < budget/2 {
		t.Errorf("spent only $%.6f of $%.2f: the budget stopped the batch too early", logged, budget)
	}
	if state != "paused" || !strings.HasPrefix(reason, "budget $2.000000 reached") {
		t.Fatalf("batch state %q, reason %q", state, reason)
	}
	done := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'capped'`)
	parked := queryInt(t, ctx, conn, `SELECT count(*) FROM batch_parked WHERE batch_id = 'capped'`)
	if done+parked != n || parked == 0 {
		t.Errorf("%d done + %d set aside, want %d", done, parked, n)
	}
	if held := queryInt(t, ctx, conn, `SELECT count(*) FROM budget_holds`); held != 0 {
		t.Errorf("%d budget holds left after every worker exited", held)
	}
	st := b.ctl(t, ctx, 0, "status", "capped")
	if !strings.Contains(st, "batch capped is paused (budget $2.000000 reached") {
		t.Errorf("status does not say why the batch is paused:\n%s", st)
	}
	b.ctl(t, ctx, 3, "verify", "capped")

	// Raising the budget resumes the batch; it then completes.
	out = b.ctl(t, ctx, 0, "budget", "capped", "1000")
	if !strings.Contains(out, "batch capped: budget $1000.000000") || !strings.Contains(out, fmt.Sprintf("batch capped resumed: %d prompt(s)", parked)) {
		t.Errorf("budget raise printed:\n%s", out)
	}
	b.work(t, ctx, routes)
	b.checkBatch(t, ctx, "capped", n)
	if got := b.ctl(t, ctx, 2, "budget", "capped", "lots"); !strings.Contains(got, "want an amount in USD") {
		t.Errorf("bad amount: %s", got)
	}
}
