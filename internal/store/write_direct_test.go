package store

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// TestCostUnitsAsPostgres: the direct write's costs are Postgres' own cast
// of the float8 to numeric(18, 10), digit for digit.
func TestCostUnitsAsPostgres(t *testing.T) {
	t.Parallel()
	st := setup(t)
	fs := []float64{0, 1e-11, 4.9999999999e-11, 5e-11, 5.0000000001e-11, 1.5e-10, 2.5e-10, 0.1 + 0.2,
		math.Ldexp(1, -22), 0.00012345, 0.00012345678905, 1.23456789012345e-4, 99999999.9999999, 12345678.123456789,
		0.000000000149999, 3, 0.3333333333333333}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		fs = append(fs, math.Pow(10, rng.Float64()*19-12)) // 1e-12 .. 1e7
	}
	var want []string
	if err := st.Pool().QueryRow(t.Context(), `SELECT array_agg(f::numeric(18, 10)::text ORDER BY i) FROM unnest($1::float8[]) WITH ORDINALITY AS u(f, i)`, fs).Scan(&want); err != nil {
		t.Fatal(err)
	}
	for i, f := range fs {
		u, ok := costUnits(f)
		if !ok || costText(u) != want[i] {
			t.Errorf("costUnits(%v) = %s (%v), Postgres says %s", f, costText(u), ok, want[i])
		}
	}
	for _, f := range []float64{1e8, 1.5e8, math.Inf(1), math.NaN(), -1e-9} {
		if u, ok := costUnits(f); ok {
			t.Errorf("costUnits(%v) = %s, want not storable", f, costText(u))
		}
	}
}

// TestWriteDirectAsStaged writes the same deliveries through the direct
// write and through the staged write (on two schemas): every row is the same.
func TestWriteDirectAsStaged(t *testing.T) {
	t.Parallel()
	direct, staged := setup(t), setup(t)
	staged.stagedOnly = true
	est := att(2, medium, prompt.OutcomeOK, 0.0004, 20*time.Millisecond)
	est.Estimated = true
	writes := [][]prompt.Result{
		{ // a transient delivery, stored later
			res("b", "later", prompt.TierModerate, "", 1, 0,
				att(1, medium, prompt.OutcomeRateLimited, 0, time.Millisecond),
				att(2, large, prompt.OutcomeTimeout, 0.00012345678905, time.Second)),
			res("b2", "x", prompt.TierSimple, prompt.StatusSucceeded, 1, time.Millisecond, att(1, small, prompt.OutcomeOK, 0.1+0.2, 0)),
		},
		{
			res("b", "later", prompt.TierModerate, prompt.StatusSucceeded, 2, 30*time.Millisecond,
				att(1, medium, prompt.OutcomeQualityFailed, 1.0/3, 10*time.Millisecond), est,
				att(3, "sim/judge", prompt.OutcomeShadow, 0.002, time.Millisecond)),
			res("b", "failed", prompt.TierComplex, prompt.StatusFailed, 1, 0,
				att(1, large, prompt.OutcomeServerError, 0, time.Millisecond)),
			// A transient and a final delivery of one prompt in one call,
			// and a second final one: all attempts count for the first.
			res("b", "both", prompt.TierSimple, "", 1, 0, att(1, small, prompt.OutcomeTimeout, 0.00007, time.Second)),
			res("b", "both", prompt.TierSimple, prompt.StatusSucceeded, 2, 0, att(1, small, prompt.OutcomeOK, 0.00011, 0)),
			res("b", "both", prompt.TierSimple, prompt.StatusSucceeded, 3, 0, att(1, medium, prompt.OutcomeOK, 0.00013, 0)),
			// A transient delivery of a prompt stored already.
			res("b2", "x", prompt.TierSimple, "", 2, 0, att(1, small, prompt.OutcomeTimeout, 0.5, 0)),
		},
	}
	for _, st := range []*Store{direct, staged} {
		for _, b := range []string{"b", "b2"} {
			if err := st.UpsertBatch(t.Context(), b, 3); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, w := range writes {
		d, s := mustWrite(t, direct, w...), mustWrite(t, staged, w...)
		if !slices.Equal(d, s) {
			t.Errorf("write %d: direct inserted %v, staged %v", i, d, s)
		}
	}
	if n := direct.staged.Load(); n != 0 {
		t.Errorf("the direct store made %d staged writes, want 0", n)
	}
	dump := func(st *Store, sql string) string {
		t.Helper()
		var s string
		if err := st.Pool().QueryRow(t.Context(), `SELECT coalesce(string_agg(j, E'\n' ORDER BY j), '') FROM (`+sql+`) q(j)`).Scan(&s); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return s
	}
	for _, q := range []string{
		`SELECT (to_jsonb(r) - 'completed_at')::text FROM results r`,
		`SELECT (to_jsonb(l) - 'id' - 'created_at')::text FROM request_log l`,
		`SELECT batch_id || ' ' || spent_usd FROM batches`,
		`SELECT batch_id || ' ' || prompt_id FROM unresolved_attempts`,
	} {
		if d, s := dump(direct, q), dump(staged, q); d != s {
			t.Errorf("%s:\ndirect:\n%s\nstaged:\n%s", q, d, s)
		}
	}
	r, _, err := direct.Result(t.Context(), Key{"b", "later"})
	if err != nil || r.Attempts != 4 || !approx(r.CostUSD, 0.00012345678905+1.0/3+0.0004+0.002) || !r.UsageEstimated {
		t.Errorf("results row of a prompt with an earlier delivery: %+v (%v); want 4 attempts (the shadow call not counted), every cost, estimated", r, err)
	}
	r, _, _ = direct.Result(t.Context(), Key{"b", "both"})
	if r.Attempts != 3 || !approx(r.CostUSD, 0.00031) || r.Delivery != 2 {
		t.Errorf("results row of a prompt written thrice in one call: %d attempts, %v USD, delivery %d; want 3, 0.00031, 2", r.Attempts, r.CostUSD, r.Delivery)
	}
	if n := count(t, direct, `SELECT count(*) FROM unresolved_attempts`); n != 0 {
		t.Errorf("%d unresolved_attempts rows left, want 0 (every prompt with attempts is stored)", n)
	}
}

// TestWriteDirectConflictFallsBack: a write that meets an existing row (a
// retry after an unknown commit outcome, a lost race) is stored by the
// staged write: nothing twice, no paid attempt lost, spent_usd exact.
func TestWriteDirectConflictFallsBack(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	if err := st.UpsertBatch(ctx, "b", 3); err != nil {
		t.Fatal(err)
	}
	first := []prompt.Result{
		res("b", "p1", prompt.TierSimple, prompt.StatusSucceeded, 1, 0, att(1, small, prompt.OutcomeOK, 0.001, 0)),
		res("b", "p2", prompt.TierSimple, prompt.StatusSucceeded, 1, 0, att(1, small, prompt.OutcomeOK, 0.002, 0)),
	}
	if got := mustWrite(t, st, first...); !slices.Equal(got, []bool{true, true}) {
		t.Fatalf("first write = %v", got)
	}
	// The same rows again (a retried commit), with a new prompt and a second
	// delivery of p2 that lost its race.
	again := append(slices.Clone(first),
		res("b", "p3", prompt.TierSimple, prompt.StatusSucceeded, 1, 0, att(1, small, prompt.OutcomeOK, 0.004, 0)),
		res("b", "p2", prompt.TierSimple, prompt.StatusSucceeded, 2, 0, att(1, medium, prompt.OutcomeOK, 0.008, 0)))
	if got := mustWrite(t, st, again...); !slices.Equal(got, []bool{false, false, true, false}) {
		t.Fatalf("second write = %v, want [false false true false]", got)
	}
	if n := st.staged.Load(); n != 1 {
		t.Errorf("%d staged writes, want 1 (the second)", n)
	}
	var spent, logged string
	if err := st.Pool().QueryRow(ctx, `SELECT (SELECT spent_usd::text FROM batches), (SELECT sum(cost_usd)::text FROM request_log)`).Scan(&spent, &logged); err != nil {
		t.Fatal(err)
	}
	if spent != "0.0150000000" || logged != spent {
		t.Errorf("spent_usd %s, sum(request_log.cost_usd) %s; want both 0.0150000000", spent, logged)
	}
	if n := count(t, st, `SELECT count(*) FROM results`); n != 3 {
		t.Errorf("%d results rows, want 3", n)
	}
}

// TestSupersededPromptCountsEveryGeneration: after retry takes a results
// row out, the next answer's row counts the calls of both generations.
func TestSupersededPromptCountsEveryGeneration(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	if err := st.UpsertBatch(ctx, "b", 1); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, st, res("b", "p", prompt.TierSimple, prompt.StatusFailed, 1, 0, att(1, small, prompt.OutcomeServerError, 0.001, 0)))
	if out, err := st.Supersede(ctx, "b", RetryFilter{Status: "failed"}); err != nil || len(out) != 1 {
		t.Fatalf("supersede: %v %v", out, err)
	}
	next := res("b", "p", prompt.TierSimple, prompt.StatusSucceeded, 1, 0, att(1, medium, prompt.OutcomeOK, 0.002, 0))
	next.Attempts[0].StartedAt = t0.Add(time.Hour)
	if got := mustWrite(t, st, next); !got[0] {
		t.Fatal("the second generation was not stored")
	}
	r, _, err := st.Result(ctx, Key{"b", "p"})
	if err != nil || r.Attempts != 2 || !approx(r.CostUSD, 0.003) {
		t.Errorf("second generation: %d attempts, %v USD (%v); want 2, 0.003", r.Attempts, r.CostUSD, err)
	}
	if n := st.staged.Load(); n != 0 {
		t.Errorf("%d staged writes, want 0", n)
	}
}

// BenchmarkWriteStaged is BenchmarkWriteWorker through the staged write,
// for comparison.
func BenchmarkWriteStaged(b *testing.B) {
	st := setup(b)
	st.stagedOnly = true
	batch := workerBatch()
	benchWrites(b, st, batch, len(batch))
}

// TestDirectWriteCreatesNoStagingTables: a connection that only made direct
// writes has no temporary tables (creating them took 120-240 ms under load
// in every new connection); the first fallback creates them.
func TestDirectWriteCreatesNoStagingTables(t *testing.T) {
	t.Parallel()
	st := setup(t, WithMaxConns(1))
	ctx := t.Context()
	r := res("b", "p", prompt.TierSimple, prompt.StatusSucceeded, 1, 0, att(1, small, prompt.OutcomeOK, 0.001, 0))
	temp := func() bool {
		t.Helper()
		var ok bool
		if err := st.Pool().QueryRow(ctx, `SELECT to_regclass('pg_temp.pc_stage_results') IS NOT NULL`).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	mustWrite(t, st, r)
	if temp() {
		t.Error("a direct write created the staging tables")
	}
	mustWrite(t, st, r) // exists: the staged write
	if !temp() {
		t.Error("the staged write ran without its staging tables")
	}
}
