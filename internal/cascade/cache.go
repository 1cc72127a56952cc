package cascade

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"log/slog"
	"time"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// ResponseCache finds answers kept in the response cache (store.Store in
// production). Lookup returns, by key, the answers stored at or after
// since; a key without a fresh answer is absent.
type ResponseCache interface {
	LookupCache(ctx context.Context, keys [][]byte, since time.Time) (map[string]prompt.CachedAnswer, error)
}

type responseCacheKey struct{}

// WithResponseCache returns a context whose Runs look answers up in rc
// when the cascade's Settings.CacheTTL is set (one lookup per Run, for
// every model of the prompt's cascade). Without it, or with CacheTTL 0,
// nothing is looked up.
func WithResponseCache(ctx context.Context, rc ResponseCache) context.Context {
	return context.WithValue(ctx, responseCacheKey{}, rc)
}

// CacheKey is the response cache key of a call: the SHA-256 of the model
// ("provider/model"), the system prompt, the prompt text and the
// parameters sent to the provider (max_tokens), each length-prefixed so
// that no two different calls share a key. The per-call seed is left out:
// only the simulated provider reads it.
func CacheKey(model string, job prompt.Job) []byte {
	h := sha256.New()
	field := func(h hash.Hash, s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	h.Write([]byte("promptcascade.response_cache.v1"))
	field(h, model)
	field(h, job.System)
	field(h, job.Prompt)
	var mt [8]byte
	binary.BigEndian.PutUint64(mt[:], uint64(max(job.MaxTokens, 0)))
	h.Write(mt[:])
	return h.Sum(nil)
}

// lookupCache fetches, in one lookup, the cached answers of the models
// targets[start:] for this prompt when the cache is on; r.hits stays nil
// otherwise. A failed lookup is logged and the cascade calls its models.
func (r *run) lookupCache(targets []*target, start int) {
	c := r.c
	if c.cacheTTL <= 0 {
		return
	}
	rc, _ := r.ctx.Value(responseCacheKey{}).(ResponseCache)
	if rc == nil {
		return
	}
	job := r.out.Result.Job
	r.keys = make(map[*target][]byte, len(targets)-start)
	keys := make([][]byte, 0, len(targets)-start)
	for _, t := range targets[start:] {
		if t.pol.Batch {
			break // a batch-mode model ends this delivery's cascade
		}
		k := CacheKey(t.name, job)
		r.keys[t] = k
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return
	}
	hits, err := rc.LookupCache(r.ctx, keys, c.now().Add(-c.cacheTTL))
	if err != nil {
		c.log.LogAttrs(r.ctx, slog.LevelWarn, "response cache lookup failed; calling the models",
			slog.String("batch", job.BatchID), slog.String("id", job.ID), slog.String("err", err.Error()))
		return
	}
	r.hits = hits
}

// cacheHit answers the prompt from t's cached answer, if it has one that
// passes this cascade's quality gate and the Run's CallGate allows it: one
// attempt with outcome cache_hit, no call, $0. stop is true when the
// CallGate refused (r.out.Stopped is set): the Run ends without an answer.
func (r *run) cacheHit(t *target) (hit, stop bool) {
	if r.hits == nil {
		return false, false
	}
	ans, ok := r.hits[string(r.keys[t])]
	if !ok || ans.Model != t.name {
		return false, false
	}
	if ok, _ := r.c.gate.Check(r.promptWords, ans.Response); !ok {
		return false, false
	}
	if !r.allowed(Call{Model: t.name, Price: t.pol.Price, Cached: true}) {
		return false, true
	}
	r.n++
	r.record(prompt.Attempt{Attempt: r.n, Model: t.name, Outcome: prompt.OutcomeCacheHit, StartedAt: r.c.now()})
	r.keep(t, ans.Response, ans.FinishReason, ans.InputTokens, ans.OutputTokens)
	return true, false
}
