package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// BenchmarkPostgresScale measures the write path and the documented report
// queries with request_log at PC_SCALE_ROWS rows (10,000,000 for
// BENCHMARKS.md: `make bench-postgres`). Without PC_SCALE_ROWS it skips, so
// `make bench` stays quick; it is never part of `make test`. With
// PC_SCALE_REPORT set to a file, it writes its results there as the
// <!-- begin:postgres --> section (other sections are kept).
//
// The data: prompts in 1,000 batches spread over the last 12 months (13
// monthly partitions), one results row per prompt, one request_log row per
// attempt: every prompt's first attempt, and a second one for every fifth
// prompt, whose first attempt failed the quality gate.
func BenchmarkPostgresScale(b *testing.B) {
	rows, _ := strconv.Atoi(os.Getenv("PC_SCALE_ROWS"))
	if rows <= 0 {
		b.Skip("set PC_SCALE_ROWS (e.g. 10000000) to run; make bench-postgres does")
	}
	for range b.N {
		r := scaleRun(b, rows)
		b.ReportMetric(r.writeEmpty, "prompts/s-empty")
		b.ReportMetric(r.writeFull, "prompts/s-full")
		if out := os.Getenv("PC_SCALE_REPORT"); out != "" {
			if err := writeSection(out, "postgres", r.markdown()); err != nil {
				b.Fatal(err)
			}
		}
	}
}

type scaleResult struct {
	rows, prompts, batches int
	seed                   time.Duration
	tableMB, indexMB       float64
	writeEmpty, writeFull  float64 // prompts/s
	queries                []queryTiming
	dropMonth              time.Duration
	dropRows               int64
	pruneBatch             time.Duration
	pruneBatchRows         int64
	load, pg               string
}

type queryTiming struct {
	name   string
	median time.Duration
	rows   int
	plan   string
}

const scaleBatches = 1000

func scaleRun(b *testing.B, rows int) scaleResult {
	ctx := context.Background()
	st := setup(b, WithMaxConns(4))
	res := scaleResult{rows: rows, batches: scaleBatches}
	res.load = loadAvg()
	if err := st.Pool().QueryRow(ctx, `SHOW server_version`).Scan(&res.pg); err != nil {
		b.Fatal(err)
	}

	// Write path on an empty database.
	res.writeEmpty = writeRate(b, st, "write-empty", 20)

	// Seed.
	start := time.Now()
	now := time.Now().UTC()
	from := monthStart(now).AddDate(0, -12, 0)
	if _, err := st.EnsurePartitions(ctx, from, 14); err != nil {
		b.Fatal(err)
	}
	prompts := rows * 5 / 6 // 1.2 attempts per prompt
	res.prompts = prompts
	perBatch := prompts / scaleBatches
	span := now.Sub(from).Seconds()
	const step = 500_000
	for lo := 0; lo < prompts; lo += step {
		hi := min(lo+step, prompts)
		// One statement per chunk for both tables.
		if _, err := st.Pool().Exec(ctx, `
			WITH g AS (
				SELECT k, 'b' || lpad((k / $3)::text, 4, '0') AS batch_id, 'p' || k AS prompt_id,
				       $4::timestamptz + make_interval(secs => $5 * k / $6::float8) AS t,
				       (ARRAY['simple', 'moderate', 'complex'])[k % 3 + 1] AS tier,
				       (ARRAY['sim/claude-haiku', 'sim/gpt-4o', 'sim/claude-sonnet'])[k % 3 + 1] AS model
				FROM generate_series($1::bigint, $2::bigint - 1) k),
			r AS (
				INSERT INTO results (batch_id, prompt_id, tier, word_count, token_count, status, model_used, attempts,
				    input_tokens, output_tokens, cost_usd, latency_ms, completed_at, prompt_sha256, delivery)
				SELECT batch_id, prompt_id, tier, 10 + k % 90, 15 + k % 120, 'succeeded',
				       CASE WHEN k % 5 = 0 THEN 'sim/claude-sonnet' ELSE model END, 1 + (k % 5 = 0)::int,
				       100, 200, (k % 1000) * 1e-7, 50 + k % 500, t + interval '1 second', '\x00'::bytea, 1
				FROM g)
			INSERT INTO request_log (batch_id, prompt_id, attempt, delivery, tier, model, outcome, http_status,
			    input_tokens, output_tokens, cost_usd, latency_ms, started_at, worker_id)
			SELECT batch_id, prompt_id, 1, 1, tier, model,
			       CASE WHEN k % 5 = 0 THEN 'quality_failed' WHEN k % 97 = 0 THEN 'rate_limited' ELSE 'ok' END,
			       CASE WHEN k % 97 = 0 AND k % 5 <> 0 THEN 429 ELSE 200 END,
			       100, 200, (k % 1000) * 1e-7, 50 + k % 500, t, 'w' || k % 16
			FROM g
			UNION ALL
			SELECT batch_id, prompt_id, 2, 1, tier, 'sim/claude-sonnet', 'ok', 200,
			       100, 200, (k % 1000) * 2e-7, 80 + k % 700, t + interval '100 milliseconds', 'w' || k % 16
			FROM g WHERE k % 5 = 0`,
			lo, hi, perBatch, from, span, prompts); err != nil {
			b.Fatalf("seed prompts %d-%d: %v", lo, hi, err)
		}
	}
	if _, err := st.Pool().Exec(ctx, `ANALYZE results; ANALYZE request_log`); err != nil {
		b.Fatal(err)
	}
	res.seed = time.Since(start)
	if err := st.Pool().QueryRow(ctx, `
		SELECT (SELECT sum(pg_table_size(c.oid)) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		        WHERE i.inhparent = 'request_log'::regclass) / 1048576.0,
		       (SELECT sum(pg_indexes_size(c.oid)) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		        WHERE i.inhparent = 'request_log'::regclass) / 1048576.0`).Scan(&res.tableMB, &res.indexMB); err != nil {
		b.Fatal(err)
	}
	var n int
	if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM request_log`).Scan(&n); err != nil || n < rows*99/100 {
		b.Fatalf("seeded %d request_log rows (%v), want about %d", n, err, rows)
	}

	// Write path with the table full.
	res.writeFull = writeRate(b, st, "write-full", 20)

	// Documented queries for one batch of the middle (and one over time).
	batch := fmt.Sprintf("b%04d", scaleBatches/2)
	// Every query but the last is for one batch: it must not read a
	// partition holding rows sequentially (timeQuery fails if it does).
	for _, q := range []struct{ name, sql string }{
		{"cost and cascade rate per tier (README)", `SELECT tier, count(*), round(avg((attempts > 1)::int) * 100, 1), sum(cost_usd), round(avg(latency_ms))
			FROM results WHERE batch_id = $1 GROUP BY tier ORDER BY tier`},
		{"likely misrouted (README)", `SELECT r.prompt_id, r.tier, r.word_count, r.complex_hits, r.model_used, left(r.prompt, 60)
			FROM results r WHERE r.batch_id = $1 AND r.tier <> 'complex'
			AND EXISTS (SELECT 1 FROM request_log l WHERE l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id
			            AND l.attempt = 1 AND l.outcome = 'quality_failed')
			ORDER BY r.word_count DESC LIMIT 20`},
		{"wasted money per model and outcome (README)", `SELECT model, outcome, count(*), sum(cost_usd) FROM request_log
			WHERE batch_id = $1 AND outcome <> 'ok' GROUP BY model, outcome ORDER BY 4 DESC`},
		{"cascadectl status BATCH (spent, attempts)", `SELECT count(*), coalesce(sum(cost_usd), 0) FROM request_log WHERE batch_id = $1`},
		{"tier_summary view", `SELECT * FROM tier_summary WHERE batch_id = $1`},
		{"model_summary view", `SELECT * FROM model_summary WHERE batch_id = $1`},
		{"misrouting view", `SELECT tier, kind, count(*) FROM misrouting WHERE batch_id = $1 GROUP BY 1, 2`},
		{"savings view", `SELECT * FROM savings WHERE batch_id = $1`},
		{"spend per model, last 7 days (all batches)", `SELECT model, count(*), sum(cost_usd) FROM request_log
			WHERE started_at >= now() - interval '7 days' AND $1::text IS NOT NULL GROUP BY model ORDER BY 3 DESC`},
	} {
		oneBatch := !strings.HasSuffix(q.name, "(all batches)")
		res.queries = append(res.queries, timeQuery(b, st, q.name, q.sql, batch, oneBatch))
	}

	// Retention: dropping the oldest month, and a batch's rows in chunks.
	ps, err := st.Partitions(ctx)
	if err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	rep, err := st.Prune(ctx, PruneOptions{Before: ps[0].To})
	if err != nil || len(rep.Dropped) != 1 {
		b.Fatalf("prune the oldest month: %+v, %v", rep, err)
	}
	res.dropMonth, res.dropRows = time.Since(start), rep.DroppedRows+rep.Deleted
	start = time.Now()
	rep, err = st.Prune(ctx, PruneOptions{Before: now.Add(time.Hour), BatchID: fmt.Sprintf("b%04d", scaleBatches/4)})
	if err != nil || rep.Deleted == 0 {
		b.Fatalf("prune one batch: %+v, %v", rep, err)
	}
	res.pruneBatch, res.pruneBatchRows = time.Since(start), rep.Deleted
	return res
}

// writeRate stores iters batches of 500 finished prompts (two attempts
// each: a quality failure, then an answer) with Write, as the worker's
// commit does, and returns prompts per second.
func writeRate(b *testing.B, st *Store, batch string, iters int) float64 {
	b.Helper()
	const per = 500
	now := time.Now().UTC()
	var elapsed time.Duration
	for it := range iters {
		rs := make([]prompt.Result, per)
		for i := range rs {
			id := fmt.Sprintf("%d-%d", it, i)
			a1 := att(1, "sim/claude-haiku", prompt.OutcomeQualityFailed, 0.0001, 40*time.Millisecond)
			a2 := att(2, "sim/claude-sonnet", prompt.OutcomeOK, 0.001, 60*time.Millisecond)
			a1.StartedAt, a2.StartedAt = now, now.Add(time.Second)
			rs[i] = res(batch, id, prompt.TierModerate, prompt.StatusSucceeded, 1, 100*time.Millisecond, a1, a2)
		}
		start := time.Now()
		if _, err := st.Write(context.Background(), rs); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	return float64(per*iters) / elapsed.Seconds()
}

// timeQuery runs q five times (after one warm-up) and keeps the median, the
// row count and how the plan reads request_log and results. For a
// one-batch query it fails when the plan reads a request_log partition or
// results sequentially and that table holds rows: "seq" in the summary is
// then only ever an empty partition.
func timeQuery(b *testing.B, st *Store, name, q, batch string, oneBatch bool) queryTiming {
	b.Helper()
	ctx := context.Background()
	qt := queryTiming{name: name}
	var ds []time.Duration
	for i := range 6 {
		start := time.Now()
		rows, err := st.Pool().Query(ctx, q, batch)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		if i > 0 {
			ds = append(ds, time.Since(start))
		}
		qt.rows = n
	}
	slices.Sort(ds)
	qt.median = ds[len(ds)/2]
	var plan []byte
	if err := st.Pool().QueryRow(ctx, `EXPLAIN (FORMAT JSON) `+q, batch).Scan(&plan); err != nil {
		b.Fatalf("%s: explain: %v", name, err)
	}
	qt.plan = planSummary(plan)
	if oneBatch {
		for _, rel := range seqScanned(plan) {
			var rows bool
			if err := st.Pool().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM ONLY `+pgx.Identifier{rel}.Sanitize()+`)`).Scan(&rows); err != nil {
				b.Fatalf("%s: %s: %v", name, rel, err)
			}
			if rows {
				b.Fatalf("%s reads %s, which holds rows, sequentially for one batch; plan:\n%s", name, rel, plan)
			}
		}
	}
	return qt
}

// seqScanned lists the request_log partitions and results tables a plan
// reads with a Seq Scan.
func seqScanned(js []byte) []string {
	var plans []struct{ Plan map[string]any }
	if json.Unmarshal(js, &plans) != nil || len(plans) == 0 {
		return nil
	}
	var out []string
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		rel, _ := n["Relation Name"].(string)
		if n["Node Type"] == "Seq Scan" && (strings.HasPrefix(rel, "request_log") || rel == "results") {
			out = append(out, rel)
		}
		if subs, ok := n["Plans"].([]any); ok {
			for _, s := range subs {
				if m, ok := s.(map[string]any); ok {
					walk(m)
				}
			}
		}
	}
	walk(plans[0].Plan)
	return out
}

// planSummary lists how each table is read: "index", "index only",
// "bitmap" or "seq" (with the number of partitions read that way).
func planSummary(js []byte) string {
	var plans []struct{ Plan map[string]any }
	if json.Unmarshal(js, &plans) != nil || len(plans) == 0 {
		return "?"
	}
	counts := map[string]int{}
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		rel, _ := n["Relation Name"].(string)
		kind := ""
		switch n["Node Type"] {
		case "Seq Scan":
			kind = "seq"
		case "Index Scan":
			kind = "index"
		case "Index Only Scan":
			kind = "index only"
		case "Bitmap Heap Scan":
			kind = "bitmap"
		}
		if rel != "" && kind != "" {
			table := rel
			if strings.HasPrefix(rel, "request_log") {
				table = "request_log"
			}
			counts[table+": "+kind]++
		}
		if subs, ok := n["Plans"].([]any); ok {
			for _, s := range subs {
				if m, ok := s.(map[string]any); ok {
					walk(m)
				}
			}
		}
	}
	walk(plans[0].Plan)
	var parts []string
	for k, v := range counts {
		if strings.HasPrefix(k, "request_log") && v > 1 {
			k = fmt.Sprintf("%s (%d partitions)", k, v)
		}
		parts = append(parts, k)
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func (r scaleResult) markdown() string {
	var w strings.Builder
	fmt.Fprintf(&w, "## Postgres at scale (request_log partitioned by month)\n\n")
	fmt.Fprintf(&w, "`make bench-postgres` (BenchmarkPostgresScale in internal/store), %s, Postgres %s, %d cores, load average at the start %s (the machine is shared; times are upper bounds).\n\n",
		time.Now().UTC().Format("2006-01-02"), r.pg, runtime.NumCPU(), r.load)
	fmt.Fprintf(&w, "Data: %d request_log rows (%d prompts in %d batches over 12 months, 13 monthly partitions; a second attempt for every fifth prompt), one results row per prompt. Seeded in %s; request_log takes %.0f MB of tables and %.0f MB of indexes.\n\n",
		r.rows, r.prompts, r.batches, r.seed.Round(time.Second), r.tableMB, r.indexMB)
	fmt.Fprintf(&w, "| write path (store.Write, 500 prompts x 2 attempts per commit) | prompts/s |\n|---|---|\n")
	fmt.Fprintf(&w, "| empty database | %.0f |\n| request_log at %d rows | %.0f |\n\n", r.writeEmpty, r.rows, r.writeFull)
	fmt.Fprintf(&w, "| query (one batch of about %d prompts unless stated) | median of 5 | rows | plan |\n|---|---|---|---|\n", r.prompts/r.batches)
	for _, q := range r.queries {
		fmt.Fprintf(&w, "| %s | %s | %d | %s |\n", q.name, q.median.Round(10*time.Microsecond), q.rows, q.plan)
	}
	fmt.Fprintf(&w, "\n%s", scaleReading)
	fmt.Fprintf(&w, "\n| retention | time | rows |\n|---|---|---|\n")
	fmt.Fprintf(&w, "| `prune` of the oldest month (drops its partition) | %s | %d |\n", r.dropMonth.Round(time.Millisecond), r.dropRows)
	fmt.Fprintf(&w, "| `prune --batch B` (one batch, chunks of 10,000) | %s | %d |\n", r.pruneBatch.Round(time.Millisecond), r.pruneBatchRows)
	return w.String()
}

const scaleReading = `How to read it: a batch's rows can be in any month, so per-batch queries are not pruned to a
partition; they read the batch through the indexes of each month's partition ("index (N
partitions)"). "seq" on a few partitions is the planner reading empty ones (the months
created ahead and the default partition): for a one-batch query the benchmark fails if a
partition holding rows is read that way. Queries bounded in time read only the months they
cover. Dropping a month is a catalog operation whatever its size; a chunked delete costs
about what its rows cost to find and delete.
`

// writeSection replaces the text between <!-- begin:NAME --> and
// <!-- end:NAME --> in file (created if missing), or appends the section.
func writeSection(file, name, body string) error {
	begin, end := "<!-- begin:"+name+" -->", "<!-- end:"+name+" -->"
	old, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	if s == "" {
		s = "# Benchmarks\n\nEach section is written by its generator; see the Makefile.\n"
	}
	section := begin + "\n" + body + end
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i >= 0 && j > i {
		s = s[:i] + section + s[j+len(end):]
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n" + section + "\n"
	}
	return os.WriteFile(file, []byte(s), 0o644)
}
