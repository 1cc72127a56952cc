package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// insertHandoffs records prompts handed off to a batch-mode model as queued
// provider_batch_items (internal/providerbatch takes them from there).
const insertHandoffsSQL = `
INSERT INTO provider_batch_items (batch_id, prompt_id, model, position, tier, job, signals, delivery, attempts_before, bytes)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::text[], $6::jsonb[], $7::jsonb[],
    $8::integer[], $9::integer[], $10::integer[])
ORDER BY 1, 2, 3
ON CONFLICT (batch_id, prompt_id, model) DO NOTHING`

// requestOverhead is the bytes a provider batch request line adds to the
// prompt's text (custom id, method, url, model, message roles, limits).
const requestOverhead = 256

func insertHandoffs(ctx context.Context, tx pgx.Tx, rs []prompt.Result, idx []int) error {
	n := len(idx)
	batch, id, model, tier := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	pos, delivery, before, size := make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
	jobs, sigs := make([]string, n), make([]string, n)
	for k, i := range idx {
		r := &rs[i]
		if !r.Tier.Valid() {
			return fmt.Errorf("store: write: input %d (batch %q, prompt %q): hand-off without a valid tier", i, r.Job.BatchID, r.Job.ID)
		}
		job := r.Job
		job.Resume = nil
		jb, err := json.Marshal(job)
		if err != nil {
			return fmt.Errorf("store: write: input %d: encode job: %w", i, err)
		}
		sb, _ := json.Marshal(r.Signals) // plain ints: always encodes
		key := cleanKey(Key{r.Job.BatchID, r.Job.ID})
		batch[k], id[k], model[k], tier[k] = key.BatchID, key.PromptID, clean(r.Handoff.Model), string(r.Tier)
		// The job's JSON (with its metadata, which is not sent) plus the
		// request line's envelope: never less than what the provider counts.
		pos[k], delivery[k], before[k], size[k] = int32(r.Handoff.Position), int32(r.Delivery), int32(attemptsSoFar(r)), int32(len(jb)+requestOverhead)
		jobs[k], sigs[k] = string(jb), string(sb)
	}
	if _, err := tx.Exec(ctx, insertHandoffsSQL, batch, id, model, pos, tier, jobs, sigs, delivery, before, size); err != nil {
		return fmt.Errorf("store: write: record %d hand-offs to provider batches: %w", n, err)
	}
	return nil
}

// attemptsSoFar is the number of the last attempt logged for r's prompt.
func attemptsSoFar(r *prompt.Result) int {
	if n := len(r.Attempts); n > 0 {
		return r.Attempts[n-1].Attempt
	}
	if r.Job.Resume != nil {
		return r.Job.Resume.Attempts
	}
	return 0
}
