package report

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/promptcascade/promptcascade/internal/pgtest"
	"github.com/promptcascade/promptcascade/internal/store"
)

// TestViewsUseIndexes fills request_log with 200 batches (130,000 attempts
// over four partitions, the default one included), and checks that the plan of every view, asked for one batch, reads
// request_log and results through an index: no sequential scan of either
// table or of any partition holding rows (request_log is partitioned by
// month, migration 005).
func TestViewsUseIndexes(t *testing.T) {
	t.Parallel()
	st, err := store.Open(t.Context(), pgtest.Schema(t), store.WithMaxConns(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	db := st.Pool()
	for _, sql := range []string{
		`INSERT INTO results (batch_id, prompt_id, tier, status, model_used, cost_usd, latency_ms, prompt_sha256,
			input_tokens, output_tokens, word_count)
		 SELECT 'b' || (i % 200), 'p' || i, (ARRAY['simple','moderate','complex'])[1 + i % 3],
			CASE WHEN i % 17 = 0 THEN 'failed' ELSE 'succeeded' END, 'sim/m' || (i % 3), 0.001, i % 900, '\x00',
			100, 50, i % 40
		 FROM generate_series(1, 100000) i`,
		`INSERT INTO request_log (batch_id, prompt_id, attempt, delivery, tier, model, outcome, cost_usd, latency_ms, started_at)
		 SELECT 'b' || (i % 200), 'p' || i, 1, 1, (ARRAY['simple','moderate','complex'])[1 + i % 3], 'sim/m' || (i % 3),
			CASE WHEN i % 10 < 3 THEN 'quality_failed' ELSE 'ok' END, 0.0005, i % 900,
			date_trunc('month', now()) + (i / 200 % 4) * interval '1 month' + interval '1 day'
		 FROM generate_series(1, 100000) i`,
		`INSERT INTO request_log (batch_id, prompt_id, attempt, delivery, tier, model, outcome, cost_usd, latency_ms, started_at)
		 SELECT 'b' || (i % 200), 'p' || i, 2, 1, (ARRAY['simple','moderate','complex'])[1 + i % 3], 'sim/l',
			'ok', 0.0005, i % 900, date_trunc('month', now()) + (i / 200 % 4) * interval '1 month' + interval '1 day'
		 FROM generate_series(1, 100000) i WHERE i % 10 < 3`,
		`INSERT INTO model_prices (batch_id, model, input_usd_per_mtok, output_usd_per_mtok)
		 SELECT 'b' || b, m, 1, 2 FROM generate_series(0, 199) b, unnest(ARRAY['sim/m0','sim/m1','sim/m2','sim/l']) m`,
		`ANALYZE results`, `ANALYZE request_log`, `ANALYZE model_prices`,
	} {
		if _, err := db.Exec(t.Context(), sql); err != nil {
			t.Fatalf("%.60s: %v", sql, err)
		}
	}
	// Each batch's attempts are spread over this month, the next two (the
	// partitions migration 005 creates) and a month after them, which falls
	// in request_log_default: four partitions hold rows, the default one
	// among them.
	var parts int
	if err := db.QueryRow(t.Context(), `SELECT count(DISTINCT tableoid) FROM request_log WHERE batch_id = 'b7'`).Scan(&parts); err != nil {
		t.Fatal(err)
	}
	if parts != 4 {
		t.Fatalf("batch b7's attempts are in %d partitions, want 4", parts)
	}
	for _, view := range []string{"tier_summary", "model_summary", "misrouting", "savings", "prompt_attempts"} {
		var plan string
		if err := db.QueryRow(t.Context(), `EXPLAIN (FORMAT JSON) SELECT * FROM `+view+` WHERE batch_id = $1`, "b7").Scan(&plan); err != nil {
			t.Fatalf("explain %s: %v", view, err)
		}
		var nodes []map[string]any
		if err := json.Unmarshal([]byte(plan), &nodes); err != nil {
			t.Fatal(err)
		}
		scans := map[string]bool{}
		walkPlan(nodes[0]["Plan"].(map[string]any), func(n map[string]any) {
			rel, _ := n["Relation Name"].(string)
			if rel == "" {
				return
			}
			kind := n["Node Type"].(string)
			scans[rel+": "+kind] = true
			if kind == "Seq Scan" && (strings.HasPrefix(rel, "request_log") || strings.HasPrefix(rel, "results")) {
				// An empty partition (request_log_default, a month ahead) is
				// scanned at no cost; one holding rows must not be.
				var n int64
				if err := db.QueryRow(t.Context(), `SELECT count(*) FROM ONLY `+pgx.Identifier{rel}.Sanitize()).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n > 0 {
					t.Errorf("%s for one batch scans %s (%d rows) sequentially; plan:\n%s", view, rel, n, plan)
				}
			}
		})
		if !scans["request_log: Index Scan"] && !scans["request_log: Index Only Scan"] && !scans["request_log: Bitmap Heap Scan"] &&
			!hasPartitionIndexScan(scans) {
			t.Errorf("%s: no index scan of request_log found (scans %v): the test did not test anything", view, scans)
		}
	}
}

func hasPartitionIndexScan(scans map[string]bool) bool {
	for k := range scans {
		if strings.HasPrefix(k, "request_log_") && !strings.HasSuffix(k, "Seq Scan") {
			return true
		}
	}
	return false
}

func walkPlan(n map[string]any, f func(map[string]any)) {
	f(n)
	if kids, ok := n["Plans"].([]any); ok {
		for _, k := range kids {
			walkPlan(k.(map[string]any), f)
		}
	}
}
