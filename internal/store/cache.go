package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// LookupCache returns the response cache's answers under keys stored at or
// after since, by key (string of the key's bytes); one round trip.
func (s *Store) LookupCache(ctx context.Context, keys [][]byte, since time.Time) (map[string]prompt.CachedAnswer, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, model, response, coalesce(finish_reason, ''), input_tokens, output_tokens, stored_at
		FROM response_cache WHERE key = ANY($1) AND stored_at >= $2`, keys, since)
	if err != nil {
		return nil, fmt.Errorf("store: response cache lookup: %w", err)
	}
	hits := make(map[string]prompt.CachedAnswer)
	var key []byte
	var a prompt.CachedAnswer
	_, err = pgx.ForEachRow(rows, []any{&key, &a.Model, &a.Response, &a.FinishReason, &a.InputTokens, &a.OutputTokens, &a.StoredAt}, func() error {
		hits[string(key)] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: response cache lookup: %w", err)
	}
	return hits, nil
}

// The answers are upserted in key order (so that concurrent writers wait
// for each other instead of deadlocking); a newer answer replaces an older one.
const upsertCacheSQL = `
INSERT INTO response_cache (key, model, response, finish_reason, input_tokens, output_tokens, stored_at)
SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::integer[], $6::integer[], $7::timestamptz[])
ON CONFLICT (key) DO UPDATE SET model = excluded.model, response = excluded.response,
    finish_reason = excluded.finish_reason, input_tokens = excluded.input_tokens,
    output_tokens = excluded.output_tokens, stored_at = excluded.stored_at
WHERE response_cache.stored_at < excluded.stored_at`

// cacheRows are the response cache rows of one Write: the succeeded
// results of rs[finals] that carry a CacheKey, one per key, in key order.
type cacheRows struct {
	keys                      [][]byte
	models, responses, finish []string
	inputs, outputs           []int32
	at                        []time.Time
}

func newCacheRows(rs []prompt.Result, finals []int) *cacheRows {
	var idx []int
	for _, i := range finals {
		if r := &rs[i]; r.Status == prompt.StatusSucceeded && len(r.CacheKey) > 0 {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	slices.SortStableFunc(idx, func(a, b int) int { return bytes.Compare(rs[a].CacheKey, rs[b].CacheKey) })
	c := &cacheRows{}
	for _, i := range idx {
		r := &rs[i]
		if n := len(c.keys); n > 0 && bytes.Equal(c.keys[n-1], r.CacheKey) {
			continue // one row per key and statement
		}
		at := r.CompletedAt
		if at.IsZero() {
			at = time.Now()
		}
		c.keys = append(c.keys, r.CacheKey)
		c.models = append(c.models, clean(r.ModelUsed))
		c.responses = append(c.responses, clean(r.Response))
		c.finish = append(c.finish, clean(r.FinishReason))
		c.inputs = append(c.inputs, int32(r.InputTokens))    //nolint:gosec // validated by fitInt32
		c.outputs = append(c.outputs, int32(r.OutputTokens)) //nolint:gosec // validated by fitInt32
		c.at = append(c.at, at)
	}
	return c
}

func (c *cacheRows) queue(b *pgx.Batch) {
	b.Queue(upsertCacheSQL, c.keys, c.models, c.responses, c.finish, c.inputs, c.outputs, c.at)
}
