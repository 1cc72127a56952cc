package store

import (
	"reflect"
	"testing"
	"time"
)

// Workers' load reports: summed per batch while fresh, replaced by the
// next report, deleted by an empty one; an expired report stops counting
// on its own, and one expired for a minute is deleted by any worker's
// next report.
func TestReportLoad(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	load := func(batch string) map[string]BatchLoadSum {
		t.Helper()
		got, err := st.LoadByBatch(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	report := func(worker string, ttl time.Duration, ls ...BatchLoad) {
		t.Helper()
		if err := st.ReportLoad(ctx, worker, ls, ttl); err != nil {
			t.Fatal(err)
		}
	}
	report("w1", time.Hour, BatchLoad{"a", 3, 5}, BatchLoad{"b", 1, 0})
	report("w2", time.Hour, BatchLoad{"a", 2, 10})
	want := map[string]BatchLoadSum{"a": {InFlight: 5, Waiting: 15, Workers: 2}, "b": {InFlight: 1, Workers: 1}}
	if got := load(""); !reflect.DeepEqual(got, want) {
		t.Fatalf("every batch: %+v, want %+v", got, want)
	}
	if got := load("b"); !reflect.DeepEqual(got, map[string]BatchLoadSum{"b": want["b"]}) {
		t.Fatalf("batch b: %+v", got)
	}

	// w1's next report replaces its rows: b is gone, a updated.
	report("w1", time.Hour, BatchLoad{"a", 1, 1})
	if got := load(""); !reflect.DeepEqual(got, map[string]BatchLoadSum{"a": {InFlight: 3, Waiting: 11, Workers: 2}}) {
		t.Fatalf("after w1's second report: %+v", got)
	}
	// An empty report (a clean exit) deletes w1's rows.
	report("w1", time.Hour)
	if got := load("a"); !reflect.DeepEqual(got, map[string]BatchLoadSum{"a": {InFlight: 2, Waiting: 10, Workers: 1}}) {
		t.Fatalf("after w1's exit: %+v", got)
	}

	// A killed worker's report stops counting once it expires.
	report("dead", time.Millisecond, BatchLoad{"a", 7, 7})
	for deadline := time.Now().Add(30 * time.Second); load("a")["a"].Workers != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("the expired report still counts: %+v", load("a"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Expired for over a minute: the next report of another worker deletes it.
	if _, err := st.Pool().Exec(ctx, `UPDATE worker_batch_load SET expires_at = now() - interval '61 seconds' WHERE worker_id = 'dead'`); err != nil {
		t.Fatal(err)
	}
	report("w2", time.Hour, BatchLoad{"a", 2, 9})
	var rows int
	if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM worker_batch_load`).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("%d rows (%v) after w2's report; want w2's only, the dead worker's pruned", rows, err)
	}
}
