package worker_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/worker"
	"github.com/promptcascade/promptcascade/internal/worker/workertest"
)

// cachingStore is an in-memory store whose response cache has an answer
// for every call it is asked about.
type cachingStore struct {
	*workertest.Store
	lookups atomic.Int64
}

func (s *cachingStore) LookupCache(_ context.Context, keys [][]byte, _ time.Time) (map[string]prompt.CachedAnswer, error) {
	s.lookups.Add(1)
	hits := make(map[string]prompt.CachedAnswer, len(keys))
	for _, k := range keys {
		hits[string(k)] = prompt.CachedAnswer{Model: "fake/a", FinishReason: "stop", InputTokens: 10, OutputTokens: 20,
			Response: "A cached answer that passes the quality gate because it has plenty of words in it, sixteen or more."}
	}
	return hits, nil
}

// writeCounter wraps a Store and overrides only Write, as a test's or a
// metrics wrapper would.
type writeCounter struct {
	worker.Store
	writes atomic.Int64
}

func (s *writeCounter) Write(ctx context.Context, rs []prompt.Result) ([]bool, error) {
	s.writes.Add(1)
	return s.Store.Write(ctx, rs)
}

// TestWrappedStoreKeepsTheResponseCache (issue 7's rule on optional
// abilities): the response cache is part of worker.Store, so a wrapper
// that overrides only Write still answers from it. (Found by type
// assertion, it vanished under such a wrapper and every prompt was paid
// for again.)
func TestWrappedStoreKeepsTheResponseCache(t *testing.T) {
	t.Parallel()
	provider := &fakeProvider{answer: goodAnswer}
	reg := llm.NewRegistry()
	reg.Register("fake", provider)
	cas, err := cascade.New(cascade.Settings{
		Tiers: map[prompt.Tier][]string{prompt.TierSimple: {"fake/a"}, prompt.TierModerate: {"fake/a"}, prompt.TierComplex: {"fake/a"}},
		Models: map[string]cascade.ModelPolicy{
			"fake/a": {Model: "fake/a", Timeout: 5 * time.Second, Price: pricing.Price{InputPerMTok: 1, OutputPerMTok: 2}},
		},
		CacheTTL: time.Hour,
	}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	src := workertest.NewSource()
	const n = 5
	for i := range n {
		if _, err := src.PublishJob(numberedJob("cached", i)); err != nil {
			t.Fatal(err)
		}
	}
	cache := &cachingStore{Store: workertest.NewStore()}
	st := &writeCounter{Store: cache}
	w := worker.New(worker.Config{WorkerID: "cache", Concurrency: 4, ExitWhenIdle: true, FetchMaxWait: 10 * time.Millisecond},
		src, st, classify.Default(), cas, testLog(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}

	results := cache.Results()
	if len(results) != n || st.writes.Load() == 0 {
		t.Fatalf("%d results in %d writes, want %d through the wrapper", len(results), st.writes.Load(), n)
	}
	for k, r := range results {
		if len(r.Attempts) != 1 || r.Attempts[0].Outcome != prompt.OutcomeCacheHit || r.CostUSD != 0 {
			t.Errorf("%s: attempts %+v, cost %v; want one cache_hit at $0", k.PromptID, r.Attempts, r.CostUSD)
		}
	}
	for i := range n {
		if c := provider.callsFor(fmt.Sprintf("What is %d plus %d?", i, i)); c != 0 {
			t.Errorf("prompt %d reached the model %d times; want its cached answer", i, c)
		}
	}
	if cache.lookups.Load() == 0 {
		t.Error("the response cache was never asked")
	}
}
