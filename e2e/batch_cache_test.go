package e2e

import (
	"testing"
	"time"
)

// The response cache: a batch enqueued again with the same prompts and
// routes that have cache: {ttl: ...} is answered from Postgres: every
// prompt answered the first time costs $0 the second time and logs one
// cache_hit attempt; with routes without the cache the same prompts pay again.
func TestBatchResponseCache(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, 4*time.Minute)
	const n = 60
	extra := "    capability: 1\n    weak_rate: 0"
	cached := writeFile(t, "cached.yaml", oneModelRoutes("sim/cached", extra+"\ncache: {ttl: 30d}"))
	plain := writeFile(t, "plain.yaml", oneModelRoutes("sim/cached", extra))
	file := firstLines(t, b.root, n)
	conn := b.pg(t, ctx)
	spent := func(batch string) float64 {
		t.Helper()
		var usd float64
		if err := conn.QueryRow(ctx, `SELECT spent_usd::float8 FROM batches WHERE batch_id = $1`, batch).Scan(&usd); err != nil {
			t.Fatal(err)
		}
		return usd
	}

	b.runWant(t, ctx, 0, "enqueue", nil, "--batch", "first", "--routes", cached, "--quiet", file)
	b.work(t, ctx)
	b.checkBatch(t, ctx, "first", n)
	answered := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'first' AND status = 'succeeded'`)
	if answered < n/2 {
		t.Fatalf("only %d of %d answered the first time: the test needs answers to cache", answered, n)
	}
	if spent("first") <= 0 {
		t.Fatalf("the first batch spent %g, want > 0", spent("first"))
	}
	if rows := queryInt(t, ctx, conn, `SELECT count(*) FROM response_cache`); rows == 0 {
		t.Fatal("no answer kept in response_cache")
	}

	b.runWant(t, ctx, 0, "enqueue", nil, "--batch", "again", "--routes", cached, "--quiet", file)
	b.work(t, ctx)
	b.checkBatch(t, ctx, "again", n)
	// Every prompt answered the first time is answered from the cache: one
	// attempt, cache_hit, $0, the same text.
	if got := queryInt(t, ctx, conn, `SELECT count(*) FROM results a JOIN results f ON f.batch_id = 'first' AND f.prompt_id = a.prompt_id
		WHERE a.batch_id = 'again' AND f.status = 'succeeded' AND a.status = 'succeeded' AND a.cost_usd = 0 AND a.attempts = 1
		AND a.model_used = 'sim/cached' AND a.response IS NOT NULL AND a.response <> ''`); got != answered {
		t.Errorf("%d prompts of the second batch answered at $0 in one attempt, want the %d answered the first time", got, answered)
	}
	if got := queryInt(t, ctx, conn, `SELECT count(*) FROM request_log l JOIN results f ON f.batch_id = 'first' AND f.prompt_id = l.prompt_id
		WHERE l.batch_id = 'again' AND f.status = 'succeeded' AND l.outcome = 'cache_hit' AND l.cost_usd = 0`); got != answered {
		t.Errorf("%d cache_hit rows in request_log, want %d", got, answered)
	}
	if got := queryInt(t, ctx, conn, `SELECT count(*) FROM request_log l JOIN results f ON f.batch_id = 'first' AND f.prompt_id = l.prompt_id
		WHERE l.batch_id = 'again' AND f.status = 'succeeded' AND l.outcome <> 'cache_hit'`); got != 0 {
		t.Errorf("%d calls for prompts that were in the cache, want 0", got)
	}
	if answered == n && spent("again") != 0 {
		t.Errorf("the second batch spent %g, want 0", spent("again"))
	}
	if hits := queryInt(t, ctx, conn, `SELECT coalesce(sum(cache_hits), 0)::int FROM model_summary WHERE batch_id = 'again'`); hits != answered {
		t.Errorf("model_summary.cache_hits = %d, want %d", hits, answered)
	}
	if calls := queryInt(t, ctx, conn, `SELECT coalesce(sum(calls + errors), 0)::int FROM model_summary WHERE batch_id = 'again'`); answered == n && calls != 0 {
		t.Errorf("model_summary counts %d calls or errors for a batch answered from the cache", calls)
	}

	// Without the cache in its routes, the same prompts pay again.
	b.runWant(t, ctx, 0, "enqueue", nil, "--batch", "nocache", "--routes", plain, "--quiet", file)
	b.work(t, ctx)
	b.checkBatch(t, ctx, "nocache", n)
	if got := queryInt(t, ctx, conn, `SELECT count(*) FROM request_log WHERE batch_id = 'nocache' AND outcome = 'cache_hit'`); got != 0 {
		t.Errorf("%d cache hits with the cache off", got)
	}
	if got := queryInt(t, ctx, conn, `SELECT count(DISTINCT prompt_id) FROM request_log WHERE batch_id = 'nocache' AND cost_usd > 0`); got != n {
		t.Errorf("%d prompts paid for a call with the cache off, want %d", got, n)
	}
	if spent("nocache") <= 0 {
		t.Errorf("the batch without the cache spent %g, want > 0", spent("nocache"))
	}
}
