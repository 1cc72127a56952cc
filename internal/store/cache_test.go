package store

import (
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// TestResponseCacheWriteAndLookup: Write keeps a succeeded answer that
// carries a CacheKey in the transaction of its results row; LookupCache
// finds it while it is younger than the ttl (since = now - ttl, the time
// injected), not after, and not for a failed result or another key.
func TestResponseCacheWriteAndLookup(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	keyA, keyB, keyF := []byte("key-a-0123456789012345678901234"), []byte("key-b-0123456789012345678901234"), []byte("key-f-0123456789012345678901234")

	a := res("b1", "p1", prompt.TierSimple, prompt.StatusSucceeded, 1, time.Second, att(1, "sim/small", prompt.OutcomeOK, 0.01, time.Second))
	a.CacheKey = keyA
	f := res("b1", "p2", prompt.TierSimple, prompt.StatusFailed, 1, time.Second, att(1, "sim/small", prompt.OutcomeBadRequest, 0, time.Second))
	f.CacheKey = keyF
	noKey := res("b1", "p3", prompt.TierSimple, prompt.StatusSucceeded, 1, time.Second, att(1, "sim/small", prompt.OutcomeOK, 0.01, time.Second))
	mustWrite(t, st, a, f, noKey)
	stored := a.CompletedAt // t0 + 1m

	hits, err := st.LookupCache(ctx, [][]byte{keyA, keyB, keyF}, stored.Add(-30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 1 {
		t.Fatalf("hits = %v, want keyA only", hits)
	}
	got := hits[string(keyA)]
	want := prompt.CachedAnswer{Model: "sim/small", Response: "answer to p1", FinishReason: "stop", InputTokens: 10, OutputTokens: 20}
	if got.Model != want.Model || got.Response != want.Response || got.FinishReason != want.FinishReason ||
		got.InputTokens != want.InputTokens || got.OutputTokens != want.OutputTokens || !got.StoredAt.Equal(stored) {
		t.Fatalf("hit = %+v, want %+v stored at %v", got, want, stored)
	}
	var n int
	if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM response_cache`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("response_cache rows = %d (%v), want 1 (only the succeeded answer with a key)", n, err)
	}

	// Past the ttl: the answer is older than now - ttl.
	hits, err = st.LookupCache(ctx, [][]byte{keyA}, stored.Add(time.Second))
	if err != nil || len(hits) != 0 {
		t.Fatalf("after the ttl: hits = %v (%v), want none", hits, err)
	}

	// A newer answer under the same key replaces it; an older one does not.
	newer := res("b2", "p1", prompt.TierSimple, prompt.StatusSucceeded, 1, time.Second, att(1, "sim/small", prompt.OutcomeOK, 0.01, time.Second))
	newer.CacheKey, newer.Response, newer.CompletedAt = keyA, "newer answer", stored.Add(time.Hour)
	older := res("b3", "p1", prompt.TierSimple, prompt.StatusSucceeded, 1, time.Second, att(1, "sim/small", prompt.OutcomeOK, 0.01, time.Second))
	older.CacheKey, older.Response, older.CompletedAt = keyA, "older answer", stored.Add(-time.Hour)
	mustWrite(t, st, newer)
	mustWrite(t, st, older)
	hits, err = st.LookupCache(ctx, [][]byte{keyA}, stored.Add(time.Second))
	if err != nil || hits[string(keyA)].Response != "newer answer" {
		t.Fatalf("hits = %v (%v), want the newer answer", hits, err)
	}
}

// TestResponseCacheNotKeptWithoutTexts: with STORE_PROMPTS=false no
// answer text is stored, in results or in the cache.
func TestResponseCacheNotKeptWithoutTexts(t *testing.T) {
	t.Parallel()
	st := setup(t, WithStorePrompts(false))
	a := res("b1", "p1", prompt.TierSimple, prompt.StatusSucceeded, 1, time.Second, att(1, "sim/small", prompt.OutcomeOK, 0.01, time.Second))
	a.CacheKey = []byte("key-a")
	mustWrite(t, st, a)
	hits, err := st.LookupCache(t.Context(), [][]byte{a.CacheKey}, t0.Add(-time.Hour))
	if err != nil || len(hits) != 0 {
		t.Fatalf("hits = %v (%v), want none", hits, err)
	}
}

// TestCacheHitInViews: a cache_hit attempt is an attempt of its prompt
// but neither a call, an error nor a skip of its model.
func TestCacheHitInViews(t *testing.T) {
	t.Parallel()
	st := setup(t)
	hit := att(1, "sim/small", prompt.OutcomeCacheHit, 0, 0)
	hit.InputTokens, hit.OutputTokens = 0, 0
	mustWrite(t, st,
		res("b1", "p1", prompt.TierSimple, prompt.StatusSucceeded, 1, time.Millisecond, hit),
		res("b1", "p2", prompt.TierSimple, prompt.StatusSucceeded, 1, time.Second, att(1, "sim/small", prompt.OutcomeOK, 0.01, time.Second)))
	var attempts, calls, ok, errs, skipped, hits int
	var cost float64
	err := st.pool.QueryRow(t.Context(), `SELECT attempts, calls, ok, errors, skipped, cache_hits, cost_usd::float8
		FROM model_summary WHERE batch_id = 'b1' AND model = 'sim/small'`).Scan(&attempts, &calls, &ok, &errs, &skipped, &hits, &cost)
	if err != nil {
		t.Fatal(err)
	}
	if attempts != 2 || calls != 1 || ok != 1 || errs != 0 || skipped != 0 || hits != 1 || cost != 0.01 {
		t.Fatalf("model_summary = attempts %d calls %d ok %d errors %d skipped %d cache_hits %d cost %g; want 2 1 1 0 0 1 0.01",
			attempts, calls, ok, errs, skipped, hits, cost)
	}
	var n int
	var spent float64
	if err := st.pool.QueryRow(t.Context(), `SELECT attempts, spent_usd::float8 FROM prompt_attempts WHERE batch_id = 'b1' AND prompt_id = 'p1'`).Scan(&n, &spent); err != nil {
		t.Fatal(err)
	}
	if n != 1 || spent != 0 {
		t.Fatalf("prompt_attempts of the hit: attempts %d spent %g, want 1 and 0", n, spent)
	}
}
