package report

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promptcascade/promptcascade/internal/prompt"
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

func TestLabelMisroutingView(t *testing.T) {
	t.Parallel()
	st := fixture(t)
	if _, err := st.Pool().Exec(t.Context(), `
		INSERT INTO label_models VALUES ('gpt-4', 'sim/l1');
		INSERT INTO labels (source, dataset, item_id, prompt, prompt_sha256, model, correct)
		SELECT 'import', 'eval', id, 'prompt ' || id, sha256(convert_to('prompt ' || id, 'UTF8')), model, correct
		FROM (VALUES
			('p4', 'sim/s1', true),   -- moderate p4, answered by m1: s1 would have done
			('p4', 'sim/m1', true),
			('p1', 'sim/s1', false),  -- simple p1, answered by s1 wrongly: l1 (as gpt-4) was right
			('p1', 'gpt-4', true),
			('p6', 'gpt-4', true),    -- complex p6 on l1, s1 wrong: well routed
			('p6', 'sim/s1', false),
			('p3', 'sim/s1', true),   -- p3: right on s1, and conflicting labels for m1
			('p3', 'sim/m1', true),
			('q1', 'sim/s1', false),  -- b2 has no prices: no verdicts
			('q1', 'sim/m1', true)
		) v (id, model, correct);
		INSERT INTO labels (source, dataset, item_id, prompt, prompt_sha256, model, correct)
		VALUES ('import', 'other', 'x', 'prompt p3', sha256(convert_to('prompt p3', 'UTF8')), 'sim/m1', false)`); err != nil {
		t.Fatal(err)
	}
	got := rowsText(t, st.Pool(), `
		SELECT batch_id, prompt_id, tier, model_used, used_correct, kind, instead_model, instead_usd::text, cost_usd::text
		FROM label_misrouting ORDER BY batch_id, prompt_id`)
	wantRows(t, "label_misrouting", got, []string{
		// l1 for p1's 1000 in / 500 out: (10000 + 20000) / 1e6
		"b1 | p1 | simple | sim/s1 | false | under_routed | sim/l1 | 0.0300000000 | 0.0003000000",
		// s1 for p4's 2000 in / 1000 out: (200 + 400) / 1e6
		"b1 | p4 | moderate | sim/m1 | true | over_routed | sim/s1 | 0.0006000000 | 0.0060000000",
	})
	got = rowsText(t, st.Pool(), `SELECT prompt_sha256 = sha256('prompt p3'::bytea), model, correct FROM label_verdicts
		WHERE batch_id = 'b1' AND prompt_sha256 = sha256('prompt p3'::bytea) ORDER BY model`)
	wantRows(t, "label_verdicts p3", got, []string{"true | sim/m1 | false", "true | sim/s1 | true"})

	r, err := Load(t.Context(), st.Pool(), "b1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := r.Write(&b, "text"); err != nil {
		t.Fatal(err)
	}
	want := "misrouting against labels (simple under_routed 1, moderate over_routed 1) (label_misrouting)\n" +
		"prompt_id  tier      kind          model_used  used_correct  instead  instead_usd  cost_usd  prompt\n" +
		"p1         simple    under_routed  sim/s1      false         sim/l1      0.030000  0.000300  prompt p1\n" +
		"p4         moderate  over_routed   sim/m1      true          sim/s1      0.000600  0.006000  prompt p4\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("report text lacks\n%s\ngot:\n%s", want, b.String())
	}
}

// Shadow labelling's calls (outcome shadow) are not attempts of the
// prompt's cascade: a prompt answered first try and then shadowed is still a
// one-attempt, not-cascaded prompt, and the shadow models show no calls or
// errors, only their spend in shadow_usd.
func TestViewsSeparateShadowCalls(t *testing.T) {
	t.Parallel()
	st := fixture(t)
	ok := attempt{"sim/s1", prompt.OutcomeOK, 1000, 500, 100}
	above := attempt{"sim/m1", prompt.OutcomeShadow, 1000, 500, 200}
	judge := attempt{"sim/l1", prompt.OutcomeShadow, 1500, 5, 300}
	r := prompt.Result{
		Job:      prompt.Job{BatchID: "b3", ID: "s1", Prompt: "prompt s1", EnqueuedAt: t0},
		Tier:     prompt.TierSimple,
		Signals:  prompt.Signals{WordCount: 5, TokenCount: 10},
		Status:   prompt.StatusSucceeded,
		Delivery: 1, Latency: 100 * time.Millisecond, WorkerID: "w1",
		ModelUsed: "sim/s1", InputTokens: 1000, OutputTokens: 500,
		CompletedAt: t0.Add(time.Minute),
	}
	for i, a := range []attempt{ok, above, judge} {
		r.Attempts = append(r.Attempts, prompt.Attempt{
			Attempt: i + 1, Model: a.model, Outcome: a.outcome, InputTokens: a.in, OutputTokens: a.out,
			CostUSD: a.cost(), Latency: time.Duration(a.ms) * time.Millisecond, HTTPStatus: 200,
			StartedAt: t0.Add(time.Minute + time.Duration(i)*time.Millisecond),
		})
		r.CostUSD += a.cost()
	}
	if _, err := st.Write(t.Context(), []prompt.Result{r}); err != nil {
		t.Fatal(err)
	}
	got := rowsText(t, st.Pool(), `SELECT first_model, first_outcome, attempts, quality_fails, spent_usd::text
		FROM prompt_attempts WHERE batch_id = 'b3'`)
	// spent: 0.0003 (s1) + 0.003 (m1) + 0.0152 (l1: 1500 in at $10, 5 out at $40)
	wantRows(t, "prompt_attempts b3", got, []string{"sim/s1 | ok | 1 | 0 | 0.0185000000"})
	got = rowsText(t, st.Pool(), `SELECT model, attempts, calls, ok, errors, skipped, cost_usd::text, wasted_usd::text, shadow_usd::text
		FROM model_summary WHERE batch_id = 'b3' ORDER BY model`)
	wantRows(t, "model_summary b3", got, []string{
		"sim/l1 | 0 | 0 | 0 | 0 | 0 | 0.0152000000 | 0.0000000000 | 0.0152000000",
		"sim/m1 | 0 | 0 | 0 | 0 | 0 | 0.0030000000 | 0.0000000000 | 0.0030000000",
		"sim/s1 | 1 | 1 | 1 | 0 | 0 | 0.0003000000 | 0.0000000000 | 0.0000000000",
	})
	got = rowsText(t, st.Pool(), `SELECT tier, prompts, cascaded FROM tier_summary WHERE batch_id = 'b3'`)
	wantRows(t, "tier_summary b3", got, []string{"simple | 1 | 0"})
}
