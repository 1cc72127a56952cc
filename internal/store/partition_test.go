package store

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/pgtest"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/migrations"
)

// partitionOf returns the partition holding the request_log row of a prompt.
func partitionOf(t *testing.T, st *Store, promptID string) string {
	t.Helper()
	var name string
	if err := st.Pool().QueryRow(t.Context(),
		`SELECT tableoid::regclass::text FROM request_log WHERE prompt_id = $1`, promptID).Scan(&name); err != nil {
		t.Fatalf("partition of %s: %v", promptID, err)
	}
	return name
}

func partitionNames(t *testing.T, st *Store) []string {
	t.Helper()
	ps, err := st.Partitions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	return names
}

func monthName(t time.Time) string { return "request_log_" + t.UTC().Format("y2006m01") }

// A database created before partitioning keeps every request_log row (ids,
// values, the idempotency of a retried write) when 005 converts the table.
func TestMigratePartitionsExistingRequestLog(t *testing.T) {
	t.Parallel()
	st := open(t, pgtest.Schema(t))
	ctx := t.Context()
	ms, err := loadMigrations(migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.migrate(ctx, ms[:1]); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	old := now.AddDate(-3, 0, 0)
	lastMonth := monthStart(now).AddDate(0, -1, 3)
	if _, err := st.Pool().Exec(ctx, `
		INSERT INTO request_log (batch_id, prompt_id, attempt, delivery, model, outcome, cost_usd, started_at, created_at)
		VALUES ('b', 'p-null', 1, 1, 'sim/small', 'ok', 0.25, NULL, $1),
		       ('b', 'p-old', 1, 1, 'sim/small', 'ok', 0.5, $2, $2),
		       ('b', 'p-last', 1, 1, 'sim/small', 'ok', 1, $1, $1)`, lastMonth, old); err != nil {
		t.Fatal(err)
	}
	var maxID int64
	if err := st.Pool().QueryRow(ctx, `SELECT max(id) FROM request_log`).Scan(&maxID); err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate over existing rows: %v", err)
	}

	if n := count(t, st, `SELECT count(*) FROM request_log`); n != 3 {
		t.Fatalf("request_log has %d rows after 005, want the 3 it had", n)
	}
	if n := count(t, st, `SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'request_log'::regclass`); n != 1 {
		t.Fatal("request_log is not partitioned")
	}
	var cost float64
	if err := st.Pool().QueryRow(ctx, `SELECT sum(cost_usd)::float8 FROM request_log`).Scan(&cost); err != nil || cost != 1.75 {
		t.Fatalf("sum(cost_usd) = %v (%v), want 1.75", cost, err)
	}
	// A row without started_at takes its created_at, in last month's partition.
	if got := partitionOf(t, st, "p-null"); got != monthName(lastMonth) {
		t.Errorf("row without started_at in %s, want %s", got, monthName(lastMonth))
	}
	if got := partitionOf(t, st, "p-last"); got != monthName(lastMonth) {
		t.Errorf("last month's row in %s, want %s", got, monthName(lastMonth))
	}
	// Rows older than two years wait in the default partition.
	if got := partitionOf(t, st, "p-old"); got != "request_log_default" {
		t.Errorf("3-year-old row in %s, want request_log_default", got)
	}
	// This month and the next two exist.
	names := partitionNames(t, st)
	for i := 0; i <= 2; i++ {
		if m := monthName(monthStart(now).AddDate(0, i, 0)); !slices.Contains(names, m) {
			t.Errorf("partition %s missing; have %v", m, names)
		}
	}

	// New rows get new ids; a retried write adds nothing.
	r := res("b", "p-new", prompt.TierSimple, prompt.StatusSucceeded, 1, time.Second,
		att(1, "sim/small", prompt.OutcomeOK, 0.125, time.Second))
	mustWrite(t, st, r)
	mustWrite(t, st, r)
	var newID int64
	if err := st.Pool().QueryRow(ctx, `SELECT id FROM request_log WHERE prompt_id = 'p-new'`).Scan(&newID); err != nil {
		t.Fatalf("retried write: %v", err)
	}
	if newID <= maxID {
		t.Errorf("new row id %d, want above the copied ids (max %d)", newID, maxID)
	}
	if n := count(t, st, `SELECT attempts FROM results WHERE prompt_id = 'p-new'`); n != 1 {
		t.Errorf("results.attempts = %d after a retried write, want 1", n)
	}
}

// A month created after its rows arrived takes them out of the default
// partition; concurrent callers create each month once.
func TestEnsurePartitions(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Schema(t)
	st := open(t, dsn)
	ctx := t.Context()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	future := monthStart(time.Now()).AddDate(0, 6, 10)
	r := res("b", "p-future", prompt.TierSimple, prompt.StatusSucceeded, 1, time.Second,
		prompt.Attempt{Attempt: 1, Model: "sim/small", Outcome: prompt.OutcomeOK, StartedAt: future})
	mustWrite(t, st, r)
	if got := partitionOf(t, st, "p-future"); got != "request_log_default" {
		t.Fatalf("row 6 months ahead in %s, want request_log_default", got)
	}

	stores := []*Store{st, open(t, dsn), open(t, dsn)}
	created := make([]int, len(stores))
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() { created[i], errs[i] = s.EnsurePartitions(ctx, future, 1) })
	}
	wg.Wait()
	total := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
		total += created[i]
	}
	// Months 6 and 7 ahead did not exist (the migration made 0 to 2).
	if total != 2 {
		t.Errorf("created %d partitions in all (%v), want 2", total, created)
	}
	if got := partitionOf(t, st, "p-future"); got != monthName(future) {
		t.Errorf("row moved to %s, want %s", got, monthName(future))
	}
	if n := count(t, st, `SELECT count(*) FROM request_log`); n != 1 {
		t.Errorf("request_log has %d rows, want 1", n)
	}
	if n, err := st.EnsurePartitions(ctx, future, 1); err != nil || n != 0 {
		t.Errorf("again: created %d, %v; want 0", n, err)
	}
	if _, err := st.EnsurePartitions(ctx, future, -1); err == nil {
		t.Error("negative months ahead accepted")
	}
}

// Prune drops whole months older than the cut-off, deletes older rows of the
// month it falls in (and of the default partition) chunk by chunk, and with a
// batch deletes that batch's rows only.
func TestPrune(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	base := monthStart(time.Now()).AddDate(0, -5, 0) // five months ago
	if _, err := st.EnsurePartitions(ctx, base, 5); err != nil {
		t.Fatal(err)
	}
	// Per month m = 0..4 after base, on day 1 and day 20: 5 rows of batch a
	// and 1 of batch b; plus 3 very old rows in the default partition.
	if _, err := st.Pool().Exec(ctx, `
		INSERT INTO request_log (batch_id, prompt_id, attempt, delivery, model, outcome, cost_usd, started_at)
		SELECT CASE WHEN i % 6 = 0 THEN 'b' ELSE 'a' END, 'p' || m || '-' || d || '-' || i, 1, 1, 'sim/small', 'ok', 0.01,
		       $1::timestamptz + make_interval(months => m, days => d - 1)
		FROM generate_series(0, 4) m, unnest(ARRAY[1, 20]) d, generate_series(1, 6) i
		UNION ALL
		SELECT 'a', 'ancient' || i, 1, 1, 'sim/small', 'ok', 0.01, $1::timestamptz - interval '10 years'
		FROM generate_series(1, 3) i`, base); err != nil {
		t.Fatal(err)
	}
	total := count(t, st, `SELECT count(*) FROM request_log`)
	if total != 63 {
		t.Fatalf("seeded %d rows, want 63", total)
	}
	// Cut-off on day 10 of month 2: months 0 and 1 go whole (24 rows), then
	// day 1 of month 2 (6 rows) and the 3 ancient rows are deleted.
	cut := base.AddDate(0, 2, 9)
	dry, err := st.Prune(ctx, PruneOptions{Before: cut, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(dry.Dropped) != 2 || dry.DroppedRows != 24 || dry.Deleted != 9 {
		t.Fatalf("dry run: %d partitions (%d rows), %d deleted; want 2 (24), 9", len(dry.Dropped), dry.DroppedRows, dry.Deleted)
	}
	if n := count(t, st, `SELECT count(*) FROM request_log`); n != total {
		t.Fatalf("dry run removed rows: %d left of %d", n, total)
	}

	// Batch b only: its rows of months 0 and 1 and of day 1 of month 2 (5),
	// in chunks of 2.
	rep, err := st.Prune(ctx, PruneOptions{Before: cut, BatchID: "b", Chunk: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Dropped) != 0 || rep.Deleted != 5 || rep.Chunks != 3 {
		t.Fatalf("batch prune: %+v; want no partition dropped, 5 rows in 3 chunks", rep)
	}
	if n := count(t, st, `SELECT count(*) FROM request_log WHERE batch_id = 'b' AND started_at < $1`, cut); n != 0 {
		t.Fatalf("%d rows of batch b older than the cut-off left", n)
	}
	if n := count(t, st, `SELECT count(*) FROM request_log WHERE batch_id = 'a'`); n != 53 {
		t.Fatalf("batch prune touched batch a: %d rows left, want 53", n)
	}

	rep, err = st.Prune(ctx, PruneOptions{Before: cut, Chunk: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Dropped) != 2 || rep.Dropped[0].Name != monthName(base) || rep.Dropped[1].Name != monthName(base.AddDate(0, 1, 0)) {
		t.Fatalf("dropped %+v, want months %s and %s", rep.Dropped, monthName(base), monthName(base.AddDate(0, 1, 0)))
	}
	// Months 0 and 1 had 24 rows less batch b's 4; month 2's day 1 has 5 of
	// batch a left (chunks of 4 and 1), the default partition 3 ancient rows
	// (one chunk): 8 rows in 3 chunks.
	if rep.DroppedRows != 20 || rep.Deleted != 8 || rep.Chunks != 3 {
		t.Fatalf("prune: %+v; want 20 dropped rows, 8 deleted in 3 chunks", rep)
	}
	if n := count(t, st, `SELECT count(*) FROM request_log WHERE started_at < $1`, cut); n != 0 {
		t.Fatalf("%d rows older than the cut-off left", n)
	}
	if n := count(t, st, `SELECT count(*) FROM request_log`); n != 63-5-20-8 {
		t.Fatalf("%d rows left, want %d", n, 63-5-20-8)
	}
	names := partitionNames(t, st)
	if slices.Contains(names, monthName(base)) || !slices.Contains(names, monthName(cut)) || !slices.Contains(names, "request_log_default") {
		t.Fatalf("partitions after prune: %v", names)
	}
	if _, err := st.Prune(ctx, PruneOptions{}); err == nil {
		t.Error("prune without a cut-off accepted")
	}
}
