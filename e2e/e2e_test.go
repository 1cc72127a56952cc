// Package e2e runs the built binaries end to end: enqueue → JetStream →
// two worker processes → Postgres, with an embedded nats-server and a fresh
// Postgres schema.
package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	// Every result has request_log rows for each attempt of its committing
	// delivery, numbered 1..attempts, and its cost is the sum of their costs.
	if mismatched := queryInt(t, ctx, conn, `
		SELECT count(*) FROM results r
		LEFT JOIN LATERAL (
			SELECT count(*) AS n, max(attempt) AS maxa, coalesce(sum(cost_usd), 0) AS cost
			FROM request_log l
			WHERE l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id AND l.delivery = r.delivery) l ON true
		WHERE r.batch_id = 'e2e' AND (l.n <> r.attempts OR l.maxa <> r.attempts OR l.n = 0)`); mismatched != 0 {
		t.Errorf("%d results do not match their request_log rows", mismatched)
	}
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
