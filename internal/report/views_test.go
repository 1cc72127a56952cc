package report

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// rowsText runs sql and returns each row as its columns' text joined by
// " | ", so that exact numbers are compared as Postgres prints them.
func rowsText(t *testing.T, q Querier, sql string, args ...any) []string {
	t.Helper()
	rows, err := q.Query(t.Context(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (string, error) {
		vals, err := row.Values()
		if err != nil {
			return "", err
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				parts[i] = "NULL"
			} else {
				parts[i] = strings.TrimSpace(pgText(v))
			}
		}
		return strings.Join(parts, " | "), nil
	})
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func pgText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return strings.TrimSpace(strings.Trim(strings.ReplaceAll(strings.TrimSpace(toString(v)), "\n", " "), " "))
}

func wantRows(t *testing.T, name string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot:\n%s\nwant:\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestTierSummaryView(t *testing.T) {
	t.Parallel()
	st := fixture(t)
	got := rowsText(t, st.Pool(), `
		SELECT tier, prompts, round(share, 6)::text, succeeded, failed, cost_usd::text, round(cost_per_prompt_usd, 8)::text,
			p50_ms::text, p95_ms::text, p99_ms::text, cascaded, round(cascade_rate, 6)::text, quality_failed,
			round(quality_fail_rate, 6)::text
		FROM tier_summary WHERE batch_id = 'b1' ORDER BY prompts DESC, tier DESC`)
	wantRows(t, "tier_summary b1", got, []string{
		// simple: p1 0.0003, p2 0.0003+0.003, p3 0 + 0.0003 (p1's losing delivery and p8 are not results)
		"simple | 3 | 0.375000 | 3 | 0 | 0.0039000000 | 0.00130000 | 200 | 380 | 396 | 1 | 0.333333 | 1 | 0.333333",
		// moderate: p4 0.006, p5 0.06, p9 0.05; latencies 300, 1000, 800
		"moderate | 3 | 0.375000 | 3 | 0 | 0.1160000000 | 0.03866667 | 800 | 980 | 996 | 2 | 0.666667 | 0 | 0.000000",
		// complex: p6 0.11, p7 2 x 0.0304; only p6 succeeded (2000 ms)
		"complex | 2 | 0.250000 | 1 | 1 | 0.1708000000 | 0.08540000 | 2000 | 2000 | 2000 | 0 | 0.000000 | 1 | 0.500000",
	})
	got = rowsText(t, st.Pool(), `SELECT tier, prompts, share::text, cost_usd::text FROM tier_summary WHERE batch_id = 'b2'`)
	wantRows(t, "tier_summary b2", got, []string{"simple | 1 | 1.00000000000000000000 | 0.0000050000"})
}

func TestModelSummaryView(t *testing.T) {
	t.Parallel()
	st := fixture(t)
	got := rowsText(t, st.Pool(), `
		SELECT model, attempts, calls, ok, quality_failed, rate_limited, timeouts, errors, skipped,
			round(success_rate, 6)::text, p50_ms::text, p95_ms::text, p99_ms::text, input_tokens, output_tokens,
			cost_usd::text, wasted_usd::text
		FROM model_summary WHERE batch_id = 'b1' ORDER BY model`)
	wantRows(t, "model_summary b1", got, []string{
		// l1: p5, p9, p6 ok; p7 quality_failed twice (wasted 2 x 0.0304)
		"sim/l1 | 5 | 5 | 3 | 2 | 0 | 0 | 0 | 0 | 0.600000 | 2000 | 2500 | 2500 | 12000 | 4020 | 0.2808000000 | 0.0608000000",
		// m1: p2, p4 ok; p5 server error; p9 cooldown skip (not a call)
		"sim/m1 | 4 | 3 | 2 | 0 | 0 | 0 | 1 | 1 | 0.666667 | 250 | 295 | 299 | 3000 | 1500 | 0.0090000000 | 0.0000000000",
		// s1: p1 twice (delivery 2 lost the race: wasted), p2 quality_failed (wasted), p3 429 + ok, p8 429
		"sim/s1 | 6 | 6 | 3 | 1 | 2 | 0 | 0 | 0 | 0.500000 | 110 | 180 | 188 | 4000 | 2000 | 0.0012000000 | 0.0006000000",
	})
}

func TestMisroutingView(t *testing.T) {
	t.Parallel()
	st := fixture(t)
	got := rowsText(t, st.Pool(), `
		SELECT prompt_id, tier, kind, first_model, first_outcome, model_used, status, attempts, quality_fails,
			word_count, complex_hits, moderate_hits, cost_usd::text, prompt
		FROM misrouting WHERE batch_id = 'b1' ORDER BY prompt_id`)
	wantRows(t, "misrouting b1", got, []string{
		"p2 | simple | under_routed | sim/s1 | quality_failed | sim/m1 | succeeded | 2 | 1 | 8 | 0 | 0 | 0.0033000000 | prompt p2",
		"p4 | moderate | over_routed_candidate | sim/m1 | ok | sim/m1 | succeeded | 1 | 0 | 10 | 0 | 1 | 0.0060000000 | prompt p4",
	})
	if got := rowsText(t, st.Pool(), `SELECT prompt_id FROM misrouting WHERE batch_id = 'b2'`); len(got) != 0 {
		t.Errorf("misrouting b2 = %v, want none", got)
	}
}

func TestSavingsView(t *testing.T) {
	t.Parallel()
	st := fixture(t)
	got := rowsText(t, st.Pool(), `
		SELECT tier, prompts, input_tokens, output_tokens, paid_usd::text, first_model_usd::text,
			strongest_model, strongest_usd::text, saved_usd::text, round(saved_share, 6)::text,
			cheapest_model, cheapest_usd::text, premium_usd::text, round(premium_share, 6)::text
		FROM savings WHERE batch_id = 'b1' ORDER BY prompts DESC, tier DESC`)
	wantRows(t, "savings b1", got, []string{
		// 3000 in, 1500 out: l1 (30000+60000)/1e6, s1 (300+600)/1e6, first models all s1
		"simple | 3 | 3000 | 1500 | 0.0039000000 | 0.0009000000 | sim/l1 | 0.0900000000 | 0.0861000000 | 0.956667 | sim/s1 | 0.0009000000 | 0.0030000000 | 3.333333",
		// 5000 in, 3000 out: first models all m1 (p9's skip included)
		"moderate | 3 | 5000 | 3000 | 0.1160000000 | 0.0170000000 | sim/l1 | 0.1700000000 | 0.0540000000 | 0.317647 | sim/s1 | 0.0017000000 | 0.1143000000 | 67.235294",
		// p7 failed: no kept tokens, but paid for
		"complex | 2 | 3000 | 2000 | 0.1708000000 | 0.1100000000 | sim/l1 | 0.1100000000 | -0.0608000000 | -0.552727 | sim/s1 | 0.0011000000 | 0.1697000000 | 154.272727",
	})
	got = rowsText(t, st.Pool(), `SELECT tier, paid_usd::text, strongest_model, saved_usd FROM savings WHERE batch_id = 'b2'`)
	wantRows(t, "savings b2 (no prices)", got, []string{"simple | 0.0000050000 | NULL | NULL"})
}

func TestModelPricesRecordedOnce(t *testing.T) {
	t.Parallel()
	st := fixture(t)
	got := rowsText(t, st.Pool(), `SELECT batch_id, model, input_usd_per_mtok::text, output_usd_per_mtok::text,
		array_to_string(tiers, ','), worker_id FROM model_prices ORDER BY 1, 2`)
	wantRows(t, "model_prices", got, []string{
		"b1 | sim/l1 | 10.0000000000 | 40.0000000000 | moderate,complex | w1",
		"b1 | sim/m1 | 1.0000000000 | 4.0000000000 | simple,moderate | w1",
		"b1 | sim/s1 | 0.1000000000 | 0.4000000000 | simple | w1",
	})
}

func toString(v any) string { return fmt.Sprint(v) }
