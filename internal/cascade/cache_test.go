package cascade

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

// memCache is an in-memory ResponseCache; the real one (store.Store) is
// tested against Postgres in internal/store and end to end in e2e.
type memCache struct {
	mu      sync.Mutex
	answers map[string]prompt.CachedAnswer
	lookups int
	since   time.Time
}

func (m *memCache) LookupCache(_ context.Context, keys [][]byte, since time.Time) (map[string]prompt.CachedAnswer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	m.since = since
	hits := map[string]prompt.CachedAnswer{}
	for _, k := range keys {
		if a, ok := m.answers[string(k)]; ok && !a.StoredAt.Before(since) {
			hits[string(k)] = a
		}
	}
	return hits, nil
}

// keep stores a result's answer as store.Write does.
func (m *memCache) keep(r prompt.Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.answers[string(r.CacheKey)] = prompt.CachedAnswer{Model: r.ModelUsed, Response: r.Response, FinishReason: r.FinishReason,
		InputTokens: r.InputTokens, OutputTokens: r.OutputTokens, StoredAt: r.CompletedAt}
}

func TestResponseCacheHitCostsNothing(t *testing.T) {
	t.Parallel()
	const ttl = 30 * 24 * time.Hour
	b := setup(t, map[string][]step{"a": {fail(llm.ClassBadRequest, 400, 0)}, "b": {ok(goodText)}},
		func(s *Settings) { s.CacheTTL = ttl })
	mc := &memCache{answers: map[string]prompt.CachedAnswer{}}
	ctx := WithResponseCache(context.Background(), mc)
	j := prompt.Job{BatchID: "b1", ID: "p1", Prompt: "What is the capital of France?", System: "be brief", MaxTokens: 200}

	first := b.c.Run(ctx, j, prompt.TierSimple, prompt.Signals{}, 1)
	checkAttempts(t, first.Result.Attempts, want{"fake/a", prompt.OutcomeBadRequest}, want{"fake/b", prompt.OutcomeOK})
	if !bytes.Equal(first.Result.CacheKey, CacheKey("fake/b", j)) {
		t.Fatalf("paid answer's CacheKey = %x, want the key of fake/b", first.Result.CacheKey)
	}
	if mc.lookups != 1 || !mc.since.Equal(b.clock.Now().Add(-ttl)) {
		t.Fatalf("lookups %d since %v, want 1 since now - ttl", mc.lookups, mc.since)
	}
	mc.keep(first.Result)

	// The same prompt again (another batch): fake/a has no cached answer
	// and is called; fake/b's answer comes from the cache at $0.
	j2 := j
	j2.BatchID = "b2"
	again := b.c.Run(ctx, j2, prompt.TierSimple, prompt.Signals{}, 1)
	r := again.Result
	checkAttempts(t, r.Attempts, want{"fake/a", prompt.OutcomeBadRequest}, want{"fake/b", prompt.OutcomeCacheHit})
	if r.Status != prompt.StatusSucceeded || r.ModelUsed != "fake/b" || r.Response != goodText || r.Attempts[1].CostUSD != 0 ||
		r.Attempts[1].InputTokens != 0 || r.CacheKey != nil || r.InputTokens != 100 || r.OutputTokens != 50 {
		t.Fatalf("cache hit result %+v", r)
	}
	if n := b.fake.count("b"); n != 1 {
		t.Fatalf("fake/b called %d times, want once", n)
	}

	// Another parameter (max_tokens), system prompt or model is another key.
	for _, other := range []prompt.Job{{Prompt: j.Prompt, System: j.System, MaxTokens: 100}, {Prompt: j.Prompt, MaxTokens: 200}} {
		if bytes.Equal(CacheKey("fake/b", other), CacheKey("fake/b", j)) {
			t.Errorf("job %+v shares the key of %+v", other, j)
		}
	}
	if bytes.Equal(CacheKey("fake/a", j), CacheKey("fake/b", j)) {
		t.Error("two models share a key")
	}

	// Past the ttl the answer is not used.
	b.clock.Advance(ttl + time.Second)
	late := b.c.Run(ctx, j2, prompt.TierSimple, prompt.Signals{}, 1)
	checkAttempts(t, late.Result.Attempts, want{"fake/a", prompt.OutcomeBadRequest}, want{"fake/b", prompt.OutcomeOK})
}

// A cached answer that this cascade's quality gate rejects is not used;
// with the cache off nothing is looked up and no key is set.
func TestResponseCacheGateAndOff(t *testing.T) {
	t.Parallel()
	j := prompt.Job{BatchID: "b1", ID: "p1", Prompt: "What is the capital of France?"}
	b := setup(t, map[string][]step{"a": {ok(goodText)}}, func(s *Settings) { s.CacheTTL = time.Hour })
	mc := &memCache{answers: map[string]prompt.CachedAnswer{
		string(CacheKey("fake/a", j)): {Model: "fake/a", Response: "   ", StoredAt: b.clock.Now()},
	}}
	out := b.c.Run(WithResponseCache(context.Background(), mc), j, prompt.TierSimple, prompt.Signals{}, 1)
	checkAttempts(t, out.Result.Attempts, want{"fake/a", prompt.OutcomeOK})

	off := setup(t, map[string][]step{"a": {ok(goodText)}}, nil)
	mc.lookups = 0
	out = off.c.Run(WithResponseCache(context.Background(), mc), j, prompt.TierSimple, prompt.Signals{}, 1)
	checkAttempts(t, out.Result.Attempts, want{"fake/a", prompt.OutcomeOK})
	if mc.lookups != 0 || out.Result.CacheKey != nil {
		t.Errorf("cache off: %d lookups, key %x", mc.lookups, out.Result.CacheKey)
	}
}

// A cached answer passes the Run's CallGate as a call does (asked with
// Cached set): a batch canceled or paused while the prompt was in flight
// gets no answer from the cache either.
func TestResponseCacheHitAsksTheCallGate(t *testing.T) {
	t.Parallel()
	j := prompt.Job{BatchID: "b1", ID: "p1", Prompt: "What is the capital of France?"}
	b := setup(t, map[string][]step{"a": {ok(goodText)}}, func(s *Settings) { s.CacheTTL = time.Hour })
	mc := &memCache{answers: map[string]prompt.CachedAnswer{
		string(CacheKey("fake/a", j)): {Model: "fake/a", Response: goodText, StoredAt: b.clock.Now()},
	}}
	paused := errors.New("batch paused")
	var asked []Call
	gate := func(refuse error) CallGate {
		return func(_ context.Context, c Call) error {
			asked = append(asked, c)
			return refuse
		}
	}
	ctx := WithResponseCache(WithCallGate(context.Background(), gate(paused)), mc)
	out := b.c.Run(ctx, j, prompt.TierSimple, prompt.Signals{}, 1)
	if !out.Transient || !errors.Is(out.Stopped, paused) || out.Result.Status != "" || out.Result.Response != "" {
		t.Fatalf("refused cache hit: outcome %+v, want transient and stopped by the gate", out)
	}
	if len(out.Result.Attempts) != 0 || b.fake.count("a") != 0 {
		t.Fatalf("refused cache hit: attempts %+v, calls %d; want none", out.Result.Attempts, b.fake.count("a"))
	}
	if len(asked) != 1 || !asked[0].Cached || asked[0].Model != "fake/a" {
		t.Fatalf("gate asked %+v, want once about fake/a with Cached", asked)
	}

	// A gate that allows it: the cached answer, no call.
	asked = nil
	ctx = WithResponseCache(WithCallGate(context.Background(), gate(nil)), mc)
	out = b.c.Run(ctx, j, prompt.TierSimple, prompt.Signals{}, 1)
	checkAttempts(t, out.Result.Attempts, want{"fake/a", prompt.OutcomeCacheHit})
	if out.Result.Status != prompt.StatusSucceeded || len(asked) != 1 || !asked[0].Cached {
		t.Fatalf("allowed cache hit: status %q, gate asked %+v", out.Result.Status, asked)
	}
}
