package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// RetryFilter chooses the results rows of a batch that `cascadectl retry`
// replaces; empty fields match everything.
type RetryFilter struct {
	Status  string // succeeded or failed
	Tier    string
	Model   string // results.model_used
	Outcome string // some attempt of the prompt ended with this outcome
}

// ErrTextNotStored is returned (wrapped) by Supersede when a chosen prompt's
// text is not in Postgres (STORE_PROMPTS=false).
var ErrTextNotStored = errors.New("prompt text not stored")

// Retried is one prompt that Supersede took out of results.
type Retried struct {
	Job        prompt.Job
	Generation int // the new answer's generation (2 for the first retry)
}

// Supersede moves the results rows of batchID that match f to
// result_history (the whole row as JSON, with its generation) and returns
// the jobs to publish again: prompt, system, max_tokens, metadata and input
// position as they were enqueued. Nothing changes when a chosen row has no
// prompt text (ErrTextNotStored, with how many).
func (s *Store) Supersede(ctx context.Context, batchID string, f RetryFilter) ([]Retried, error) {
	b := clean(batchID)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: retry %q: begin: %w", batchID, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	const chosen = `
		SELECT r.* FROM results r
		WHERE r.batch_id = $1 AND ($2 = '' OR r.status = $2) AND ($3 = '' OR r.tier = $3)
		AND ($4 = '' OR r.model_used = $4)
		AND ($5 = '' OR EXISTS (SELECT 1 FROM request_log l WHERE l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id AND l.outcome = $5))`
	var noText int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM (`+chosen+`) c WHERE c.prompt IS NULL`,
		b, f.Status, f.Tier, f.Model, f.Outcome).Scan(&noText); err != nil {
		return nil, fmt.Errorf("store: retry %q: %w", batchID, err)
	}
	if noText > 0 {
		return nil, fmt.Errorf("store: retry %q: %d chosen prompt(s): %w", batchID, noText, ErrTextNotStored)
	}
	rows, err := tx.Query(ctx, `
		WITH c AS (`+chosen+` FOR UPDATE OF r),
		gen AS (
			SELECT c.prompt_id, coalesce((SELECT max(h.generation) FROM result_history h
				WHERE h.batch_id = c.batch_id AND h.prompt_id = c.prompt_id), 0) + 1 AS g
			FROM c
		), hist AS (
			INSERT INTO result_history (batch_id, prompt_id, generation, result)
			SELECT c.batch_id, c.prompt_id, gen.g, to_jsonb(c) FROM c JOIN gen USING (prompt_id)
		), del AS (
			DELETE FROM results r USING c WHERE r.batch_id = c.batch_id AND r.prompt_id = c.prompt_id
		), unresolved AS (
			-- The next answer's results row counts these attempts too (migration 061).
			INSERT INTO unresolved_attempts (batch_id, prompt_id)
			SELECT c.batch_id, c.prompt_id FROM c ORDER BY 1, 2 ON CONFLICT DO NOTHING
		)
		SELECT c.prompt_id, c.prompt, coalesce(c.system, ''), coalesce(c.max_tokens, 0), c.metadata,
			coalesce(c.seq, 0), c.enqueued_at, gen.g + 1
		FROM c JOIN gen USING (prompt_id) ORDER BY c.seq NULLS LAST, c.prompt_id`,
		b, f.Status, f.Tier, f.Model, f.Outcome)
	if err != nil {
		return nil, fmt.Errorf("store: retry %q: %w", batchID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Retried, error) {
		var r Retried
		var meta []byte
		var at *time.Time
		err := row.Scan(&r.Job.ID, &r.Job.Prompt, &r.Job.System, &r.Job.MaxTokens, &meta, &r.Job.Seq, &at, &r.Generation)
		r.Job.BatchID = b
		if len(meta) > 0 {
			r.Job.Metadata = json.RawMessage(meta)
		}
		if at != nil {
			r.Job.EnqueuedAt = *at
		}
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: retry %q: %w", batchID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("store: retry %q: commit: %w", batchID, err)
	}
	return out, nil
}
