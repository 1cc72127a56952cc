// Package e2e runs the built binaries end to end: enqueue → JetStream →
// two worker processes → Postgres, with an embedded nats-server and a fresh
// Postgres schema.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestEndToEnd1000PromptsTwoWorkers(t *testing.T) {
	b, ctx := setup(t, 4*time.Minute)
	const n = 1000
	file := firstLines(t, b.root, n)

	out := b.runWant(t, ctx, 0, "enqueue", nil, "--batch", "e2e", file)
	if !strings.Contains(out, "published 1000, duplicates 0, rejected 0") {
		t.Fatalf("enqueue summary: %s", out)
	}

	var workers []*proc
	for i := range 2 {
		workers = append(workers, b.startWorker(t, ctx, "w"+string(rune('1'+i)), "WORKER_EXIT_WHEN_IDLE=true", "WORKER_CONCURRENCY=64"))
	}
	for _, w := range workers {
		w.waitOK(t, 4*time.Minute) // ctx kills it first
	}

	conn := b.pg(t, ctx)
	var rows, distinct, succeeded, failed, workersSeen int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT prompt_id), count(*) FILTER (WHERE status='succeeded'),
		count(*) FILTER (WHERE status='failed'), count(DISTINCT worker_id) FROM results WHERE batch_id='e2e'`).
		Scan(&rows, &distinct, &succeeded, &failed, &workersSeen); err != nil {
		t.Fatal(err)
	}
	if rows != n || distinct != n {
		t.Fatalf("results: %d rows, %d distinct prompts; want %d of each", rows, distinct, n)
	}
	if succeeded+failed != n || succeeded < n*9/10 {
		t.Errorf("results: %d succeeded, %d failed", succeeded, failed)
	}
	if workersSeen != 2 {
		t.Errorf("results were written by %d workers, want 2", workersSeen)
	}
	checkResultsMatchLog(t, ctx, conn, "e2e")
	if orphans := queryInt(t, ctx, conn, `SELECT count(*) FROM request_log l WHERE l.batch_id='e2e'
		AND NOT EXISTS (SELECT 1 FROM results r WHERE r.batch_id=l.batch_id AND r.prompt_id=l.prompt_id)`); orphans != 0 {
		t.Errorf("%d request_log rows belong to no result", orphans)
	}
	if tiers := queryInt(t, ctx, conn, `SELECT count(DISTINCT tier) FROM results WHERE batch_id='e2e'`); tiers != 3 {
		t.Errorf("results span %d tiers, want 3", tiers)
	}

	b.ctl(t, ctx, 0, "verify", "e2e")
	// The workers recorded the price of every model they called, and the
	// views add up to the batch.
	if unpriced := queryInt(t, ctx, conn, `SELECT count(DISTINCT model) FROM request_log l WHERE batch_id = 'e2e'
		AND NOT EXISTS (SELECT 1 FROM model_prices p WHERE p.batch_id = l.batch_id AND p.model = l.model)`); unpriced != 0 {
		t.Errorf("%d models of batch e2e have no model_prices row", unpriced)
	}
	if got := queryInt(t, ctx, conn, `SELECT sum(prompts) FROM tier_summary WHERE batch_id = 'e2e'`); got != n {
		t.Errorf("tier_summary counts %d prompts, want %d", got, n)
	}
	html := filepath.Join(t.TempDir(), "report.html")
	out = b.ctl(t, ctx, 0, "report", "e2e", "--html", html)
	if !strings.Contains(out, "batch e2e: 1000 prompts") || !strings.Contains(out, "all on the strongest model: $") ||
		!strings.Contains(out, "\nsavings: ") || !strings.Contains(out, "\ncomplex ") {
		t.Fatalf("cascadectl report:\n%s", out)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	if charts := strings.Count(string(page), `<svg class="chart"`); charts != 6 {
		t.Errorf("report --html has %d charts, want 6", charts)
	}
	if out := b.ctl(t, ctx, 0, "report", "e2e", "--format", "json"); !strings.Contains(out, `"tier_summary": [`) {
		t.Errorf("report --format json:\n%.500s", out)
	}
	if out := b.ctl(t, ctx, 1, "report", "nope"); !strings.Contains(out, `no results for batch "nope"`) {
		t.Errorf("report of an unknown batch: %s", out)
	}
	if out := b.ctl(t, ctx, 2, "report", "e2e", "--format", "yaml"); !strings.Contains(out, `--format: "yaml" is not one of text, markdown, json, csv`) {
		t.Errorf("report --format yaml: %s", out)
	}
	csv, err := b.cmd(ctx, "cascadectl", nil, "export", "e2e", "--format", "csv").Output()
	if err != nil {
		t.Fatalf("cascadectl export: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
	if len(lines) != n+1 || !strings.Contains(lines[0], "prompt_tier,model_used,attempts,cost_usd,latency_ms") {
		t.Fatalf("export: %d lines, header %q", len(lines), lines[0])
	}
}

// checkResultsMatchLog checks the money of every results row of batch
// (store.Write, migrations/001_init.sql): results.attempts and cost_usd are
// those of the request_log rows of the prompt committed up to and including
// the transaction that inserted the row. These are the committing
// delivery's own rows (at least one, numbered 1..n) and those of whole
// other deliveries committed before it: transient deliveries handed back
// with their attempts logged (a redelivery then counts them too). A
// delivery that lost the race and committed later is in request_log only.
// Which other deliveries committed first is not recorded, so the check asks
// that some set of them makes both sums exact. Shadow calls cost money but
// are not attempts.
func checkResultsMatchLog(t *testing.T, ctx context.Context, conn *pgx.Conn, batch string) {
	t.Helper()
	type part struct{ n, maxAttempt, cost int64 } // cost in 1e-10 USD, exact for numeric(18, 10)
	type row struct {
		attempts, cost int64
		own            *part
		others         []part
	}
	rows, err := conn.Query(ctx, `
		SELECT r.prompt_id, r.attempts, (r.cost_usd * 1e10)::bigint, r.delivery, l.delivery, l.n, l.maxa, l.cost
		FROM results r
		LEFT JOIN LATERAL (
			SELECT delivery, count(*) FILTER (WHERE outcome <> 'shadow') AS n,
				coalesce(max(attempt) FILTER (WHERE outcome <> 'shadow'), 0) AS maxa, (sum(cost_usd) * 1e10)::bigint AS cost
			FROM request_log l WHERE l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id
			GROUP BY delivery) l ON true
		WHERE r.batch_id = $1`, batch)
	if err != nil {
		t.Fatal(err)
	}
	byPrompt := map[string]*row{}
	for rows.Next() {
		var id string
		var attempts, cost int64
		var delivery int
		var d *int
		var p part
		var n, maxa, lcost *int64
		if err := rows.Scan(&id, &attempts, &cost, &delivery, &d, &n, &maxa, &lcost); err != nil {
			t.Fatal(err)
		}
		r := byPrompt[id]
		if r == nil {
			r = &row{attempts: attempts, cost: cost}
			byPrompt[id] = r
		}
		if d == nil {
			continue
		}
		p = part{*n, *maxa, *lcost}
		if *d == delivery {
			r.own = &p
		} else {
			r.others = append(r.others, p)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var bad []string
	withOthers := 0
	for id, r := range byPrompt {
		if r.own == nil || r.own.n == 0 || r.own.maxAttempt != r.own.n {
			bad = append(bad, fmt.Sprintf("%s: committing delivery's attempts %+v, want 1..n", id, r.own))
			continue
		}
		found := false
		for mask := 0; mask < 1<<len(r.others) && !found; mask++ {
			n, cost := r.own.n, r.own.cost
			for i, p := range r.others {
				if mask&(1<<i) != 0 {
					n, cost = n+p.n, cost+p.cost
				}
			}
			found = n == r.attempts && cost == r.cost
			if found && mask != 0 {
				withOthers++
			}
		}
		if !found {
			bad = append(bad, fmt.Sprintf("%s: results has %d attempts, cost %de-10; its delivery logged %+v, other deliveries %+v",
				id, r.attempts, r.cost, *r.own, r.others))
		}
	}
	t.Logf("batch %s: %d results count attempts of earlier deliveries too", batch, withOthers)
	if len(bad) > 0 {
		slices.Sort(bad)
		t.Errorf("%d results do not match their request_log rows: %v", len(bad), bad[:min(len(bad), 10)])
	}
}
