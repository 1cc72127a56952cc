package store

import (
	"fmt"
	"testing"
)

// TestExistingProbesIndexAfterGrowth pins that Existing's plan follows the
// table: lookups made while results is empty (a worker's first fetches)
// must not leave a plan behind that scans the whole of results once it has
// grown (a cached generic plan would, where autovacuum never analyses it).
// Nor may a fetch's many keys (1,000 here, against 50,000 rows never
// analysed) make it one hash join over a sequential scan of results. One
// connection, so that every lookup runs where the first ones did; the
// backend's table statistics count the sequential scans of results.
func TestExistingProbesIndexAfterGrowth(t *testing.T) {
	t.Parallel()
	st := setup(t, WithMaxConns(1))
	ctx := t.Context()
	keys := make([]Key, 1000)
	for i := range keys {
		keys[i] = Key{"b", fmt.Sprint("k", i)}
	}
	for range 10 {
		if _, err := st.Existing(ctx, keys); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.pool.Exec(ctx, `INSERT INTO results (batch_id, prompt_id, tier, status, prompt_sha256)
		SELECT 'b', 'k' || i, 'simple', 'succeeded', '\x00' FROM generate_series(0, 199999, 2) i`); err != nil {
		t.Fatal(err)
	}
	seqScans := func() int64 {
		t.Helper()
		// Flush this backend's pending counts (Postgres 15+), then read them
		// in a new transaction.
		if _, err := st.pool.Exec(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := st.pool.QueryRow(ctx, `SELECT seq_scan FROM pg_stat_user_tables
			WHERE relid = 'results'::regclass`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := seqScans()
	got, err := st.Existing(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if after := seqScans(); after != before {
		t.Errorf("Existing on a grown results table scanned it sequentially (%d scans)", after-before)
	}
	if len(got) != len(keys)/2 {
		t.Errorf("Existing found %d of the %d keys stored", len(got), len(keys)/2)
	}
	for i, k := range keys {
		if got[k] != (i%2 == 0) {
			t.Errorf("Existing(%v) = %v", k, got[k])
		}
	}
}
