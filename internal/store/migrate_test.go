package store

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promptcascade/promptcascade/internal/pgtest"
	"github.com/promptcascade/promptcascade/migrations"
)

func TestMigrateTwiceIsNoop(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	var before time.Time
	if err := st.Pool().QueryRow(ctx, `SELECT applied_at FROM schema_migrations WHERE version = '001_init'`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	vs, err := st.Versions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := loadMigrations(migrations.FS)
	if len(vs) != len(want) || vs[0] != "001_init" {
		t.Fatalf("versions = %v, want one per embedded file starting with 001_init", vs)
	}
	var after time.Time
	if err := st.Pool().QueryRow(ctx, `SELECT applied_at FROM schema_migrations WHERE version = '001_init'`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if !after.Equal(before) {
		t.Errorf("001_init re-applied: applied_at %v then %v", before, after)
	}
	// Everything lives in the test's schema, nothing in public.
	for _, table := range []string{"batches", "batch_prompts", "results", "request_log", "dead_letters", "schema_migrations"} {
		n := count(t, st, `SELECT count(*) FROM pg_tables WHERE tablename = $1 AND schemaname = current_schema()`, table)
		if n != 1 {
			t.Errorf("table %s not in the test schema", table)
		}
	}
}

func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Schema(t)
	stores := make([]*Store, 5)
	for i := range stores {
		stores[i] = open(t, dsn, WithMaxConns(1))
	}
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, st := range stores {
		wg.Go(func() { errs[i] = st.Migrate(t.Context()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrate %d: %v", i, err)
		}
	}
	if n := count(t, stores[0], `SELECT count(*) FROM schema_migrations WHERE version = '001_init'`); n != 1 {
		t.Errorf("001_init recorded %d times", n)
	}
}

func TestMigrateRefusesChangedFile(t *testing.T) {
	t.Parallel()
	st := open(t, pgtest.Schema(t))
	ctx := t.Context()
	v1 := fstest.MapFS{"001_a.sql": {Data: []byte(`CREATE TABLE a (x int);`)}}
	ms, err := loadMigrations(v1)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.migrate(ctx, ms); err != nil {
		t.Fatal(err)
	}
	v2 := fstest.MapFS{
		"001_a.sql": {Data: []byte(`CREATE TABLE a (x bigint);`)},
		"002_b.sql": {Data: []byte(`CREATE TABLE b (x int);`)},
	}
	ms, _ = loadMigrations(v2)
	err = st.migrate(ctx, ms)
	if err == nil || !strings.Contains(err.Error(), "001_a was changed") {
		t.Fatalf("migrate with a changed file: err = %v, want it to name 001_a", err)
	}
	if n := count(t, st, `SELECT count(*) FROM pg_tables WHERE tablename = 'b' AND schemaname = current_schema()`); n != 0 {
		t.Error("002_b applied although 001_a was refused")
	}
	// A failing migration leaves nothing behind.
	bad := fstest.MapFS{"001_a.sql": v1["001_a.sql"], "002_c.sql": {Data: []byte(`CREATE TABLE c (x int); SELECT no_such_function();`)}}
	ms, _ = loadMigrations(bad)
	if err := st.migrate(ctx, ms); err == nil || !strings.Contains(err.Error(), "apply 002_c") {
		t.Fatalf("failing migration: err = %v", err)
	}
	vs, _ := st.Versions(ctx)
	if !slices.Equal(vs, []string{"001_a"}) {
		t.Errorf("versions after a failed migration = %v", vs)
	}
}

func TestMigrationNames(t *testing.T) {
	t.Parallel()
	if _, err := loadMigrations(fstest.MapFS{"1_init.sql": {}}); err == nil || !strings.Contains(err.Error(), `"1_init.sql"`) {
		t.Errorf("bad name accepted or not named: %v", err)
	}
	ms, err := loadMigrations(fstest.MapFS{"010_b.sql": {}, "002_a.sql": {}})
	if err != nil || ms[0].version != "002_a" || ms[1].version != "010_b" {
		t.Errorf("order: %v %v", ms, err)
	}
}

func TestMigrateMissingSchema(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Schema(t)
	dsn = strings.Replace(dsn, "search_path=pgt_", "search_path=nope_", 1)
	st := open(t, dsn)
	err := st.Migrate(t.Context())
	if err == nil || !strings.Contains(err.Error(), "search_path") {
		t.Fatalf("migrate without an existing schema: err = %v, want a message about search_path", err)
	}
}

// TestWriteTablesIndexes pins the indexes every stored prompt maintains
// (migration 062 dropped two that no query needs, 076 request_log's
// surrogate key): an index added to results or request_log costs each
// commit of every worker, so adding one is a decision this test makes
// visible.
func TestWriteTablesIndexes(t *testing.T) {
	t.Parallel()
	st := setup(t)
	for table, want := range map[string][]string{
		"results":     {"results_batch_seq_idx", "results_pkey"},
		"request_log": {"request_log_attempt_key", "request_log_batch_failures_idx", "request_log_failures_idx", "request_log_started_at_brin"},
	} {
		rows, err := st.Pool().Query(t.Context(), `SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
			WHERE i.indrelid = $1::regclass ORDER BY 1`, table)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s has indexes %v, want %v", table, got, want)
		}
	}
}
