package store

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"strconv"
	"testing"
)

func sum(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

// entries builds a chunk of file's entries: "id" or "id=content" (the
// content defaults to the id).
func entries(file int, specs ...string) []RunEntry {
	out := make([]RunEntry, len(specs))
	for i, s := range specs {
		id, content, ok := bytes.Cut([]byte(s), []byte("="))
		if !ok {
			content = id
		}
		out[i] = RunEntry{ID: string(id), ContentHash: sum(string(content)), File: file}
	}
	return out
}

func beginRun(t *testing.T, st *Store, batch string) *EnqueueRun {
	t.Helper()
	r, err := st.BeginEnqueueRun(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func mustChunk(t *testing.T, f func() ([]Refused, error), want ...Refused) {
	t.Helper()
	got, err := f()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("refused %+v, want %+v", got, want)
	}
}

func storedHashes(t *testing.T, st *Store, batch string) map[string][]byte {
	t.Helper()
	rows, err := st.pool.Query(t.Context(), `SELECT prompt_id, content_sha256 FROM batch_prompts WHERE batch_id = $1`, batch)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string][]byte{}
	for rows.Next() {
		var id string
		var h []byte
		if err := rows.Scan(&id, &h); err != nil {
			t.Fatal(err)
		}
		got[id] = h
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// A run finds every repeat of an id, in the same chunk or chunks apart, in
// one input or across two, and names the input of the first occurrence; a
// re-run refuses the same repeats and adds nothing; an id the batch holds
// with another content is a conflict, and a later repeat of it a repeat.
func TestEnqueueRunRepeatsAndConflicts(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	first := func(r *EnqueueRun) {
		mustChunk(t, func() ([]Refused, error) { return r.Record(ctx, entries(0, "a", "b", "c", "b")) },
			Refused{Index: 3, Reason: RefuseRepeat, File: 0})
		mustChunk(t, func() ([]Refused, error) { return r.Record(ctx, entries(0, "d", "e")) })
		// The second input: a is file 0's (two chunks back), e twice here.
		mustChunk(t, func() ([]Refused, error) { return r.Record(ctx, entries(1, "f", "a", "e", "g", "g=other")) },
			Refused{Index: 1, Reason: RefuseRepeat, File: 0},
			Refused{Index: 2, Reason: RefuseRepeat, File: 0},
			Refused{Index: 4, Reason: RefuseRepeat, File: 1})
	}
	r := beginRun(t, st, "q")
	first(r)
	want := []string{"a", "b", "c", "d", "e", "f", "g"}
	check := func() {
		t.Helper()
		got := storedHashes(t, st, "q")
		if len(got) != len(want) {
			t.Fatalf("batch_prompts holds %d ids, want %d", len(got), len(want))
		}
		for _, id := range want {
			if !bytes.Equal(got[id], sum(id)) {
				t.Errorf("id %s: hash %x, want the first line's", id, got[id])
			}
		}
		if v, err := st.Verify(ctx, "q"); err != nil || v.Enqueued != int64(len(want)) || v.Total != int64(len(want)) {
			t.Fatalf("verify %+v, %v", v, err)
		}
	}
	check()
	r.Close()

	// A true re-run: the same refusals, nothing added.
	first(beginRun(t, st, "q"))
	check()

	// Another input in the same batch: b means another prompt (a conflict,
	// not recorded); b again in the run is a repeat; h is new.
	r = beginRun(t, st, "q")
	mustChunk(t, func() ([]Refused, error) { return r.Record(ctx, entries(0, "h", "b=changed")) },
		Refused{Index: 1, Reason: RefuseConflict, File: 0})
	mustChunk(t, func() ([]Refused, error) { return r.Record(ctx, entries(2, "b=changed", "c")) },
		Refused{Index: 0, Reason: RefuseRepeat, File: 0})
	want = append(want, "h")
	check()

	// An id recorded without a hash matches any content.
	if _, err := st.RecordEnqueued(ctx, "q", enq("nohash")); err != nil {
		t.Fatal(err)
	}
	mustChunk(t, func() ([]Refused, error) { return r.Record(ctx, entries(0, "nohash=anything")) })
}

// Chunks of new ids of one input are copied straight into batch_prompts; a
// later repeat of one of their ids is still a repeat naming that input (in
// a chunk of one input or of two), a re-run (another run, whose own first
// chunk was copied) takes them for the batch's, and the counts add up.
func TestEnqueueRunCopiedChunks(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	r := beginRun(t, st, "q")
	mustChunk(t, func() ([]Refused, error) { return r.Record(ctx, entries(1, "a", "b")) })
	mustChunk(t, func() ([]Refused, error) { return r.Record(ctx, entries(2, "c", "d")) })
	if r.copied != 2 {
		t.Fatalf("%d chunks copied, want 2", r.copied)
	}
	// Of one input: c (input 2's) and a (input 1's) again, e new.
	mustChunk(t, func() ([]Refused, error) { return r.Record(ctx, entries(3, "e", "c", "a=other")) },
		Refused{Index: 1, Reason: RefuseRepeat, File: 2},
		Refused{Index: 2, Reason: RefuseRepeat, File: 1})
	// Of two inputs (never copied): b (input 1's) and e (this run's
	// staged chunk), f new.
	mixed := append(entries(3, "f", "b"), entries(4, "e")...)
	mustChunk(t, func() ([]Refused, error) { return r.Record(ctx, mixed) },
		Refused{Index: 1, Reason: RefuseRepeat, File: 1},
		Refused{Index: 2, Reason: RefuseRepeat, File: 3})
	if r.copied != 2 {
		t.Fatalf("%d chunks copied, want 2", r.copied)
	}
	r.Close()
	verify := func(n int64) {
		t.Helper()
		if v, err := st.Verify(ctx, "q"); err != nil || v.Enqueued != n || v.Total != n {
			t.Fatalf("verify %+v, %v; want %d enqueued", v, err, n)
		}
	}
	verify(6)

	// A re-run that copies a chunk of its own first: the earlier run's ids
	// are the batch's (no refusal; a changed one is a conflict), not
	// repeats of this run's.
	r = beginRun(t, st, "q")
	mustChunk(t, func() ([]Refused, error) { return r.Record(ctx, entries(0, "g")) })
	mustChunk(t, func() ([]Refused, error) { return r.Record(ctx, entries(0, "a", "c=changed", "h", "g")) },
		Refused{Index: 1, Reason: RefuseConflict, File: 0},
		Refused{Index: 3, Reason: RefuseRepeat, File: 0})
	verify(8)
	got := storedHashes(t, st, "q")
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		if !bytes.Equal(got[id], sum(id)) {
			t.Errorf("id %s: hash %x, want the first line's", id, got[id])
		}
	}
}

// Check refuses what Record would, records nothing in the batch, and Reset
// forgets the run's ids.
func TestEnqueueRunCheck(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	r := beginRun(t, st, "q")
	mustChunk(t, func() ([]Refused, error) { return r.Record(ctx, entries(0, "a", "b")) })
	r.Close()

	r = beginRun(t, st, "q")
	check := func() {
		mustChunk(t, func() ([]Refused, error) { return r.Check(ctx, entries(0, "a", "b=other", "c")) },
			Refused{Index: 1, Reason: RefuseConflict, File: 0})
		mustChunk(t, func() ([]Refused, error) { return r.Check(ctx, entries(1, "c", "d")) },
			Refused{Index: 0, Reason: RefuseRepeat, File: 0})
	}
	check()
	if got := storedHashes(t, st, "q"); len(got) != 2 {
		t.Fatalf("Check recorded something: %d ids", len(got))
	}
	if err := r.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	check() // the same refusals: the first pass is forgotten
	if _, err := r.Record(ctx, entries(0, "x", "")); err == nil {
		t.Error("an empty id was accepted")
	}
	if _, err := r.Record(ctx, []RunEntry{{ID: "y", ContentHash: []byte("short")}}); err == nil {
		t.Error("a 5-byte content hash was accepted")
	}
}

// BenchmarkEnqueueRunRecord records chunks of 10,000 new ids, as enqueue
// does (ns/op is per chunk; ids/s is the rate).
func BenchmarkEnqueueRunRecord(b *testing.B) {
	st := setup(b)
	r, err := st.BeginEnqueueRun(b.Context(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	const chunk = 10_000
	es := make([]RunEntry, chunk)
	h := sum("content")
	n := 0
	for b.Loop() {
		for i := range es {
			es[i] = RunEntry{ID: strconv.Itoa(n), ContentHash: h}
			n++
		}
		if _, err := r.Record(b.Context(), es); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "ids/s")
}
