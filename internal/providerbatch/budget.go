package providerbatch

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/store"
)

// Reserver sets money aside before a call of a batch with a budget
// (*store.Store implements it).
type Reserver interface {
	Reserve(ctx context.Context, h store.Hold) (id int64, ok bool, err error)
}

// defaultOutputTokens is the answer length a reservation assumes for a
// prompt without max_tokens (the worker's estimate does the same).
const defaultOutputTokens = 150

// reserve takes a budget hold for every queued item of a running batch
// with a budget that has none yet: its estimated cost at the batch price.
// An item whose reservation is refused stays queued without a hold (the
// refusal paused its batch), so it is not submitted.
func (r *Runner) reserve(ctx context.Context, m *Model) error {
	rows, err := r.pool.Query(ctx, `SELECT i.batch_id, i.prompt_id, i.signals, coalesce((i.job->>'max_tokens')::int, 0)
		FROM provider_batch_items i JOIN batches b USING (batch_id)
		WHERE i.model = $1 AND i.state = 'queued' AND b.state = 'running' AND b.budget_usd IS NOT NULL AND i.budget_hold IS NULL
		ORDER BY i.queued_at LIMIT $2`, m.Name, m.Limits.MaxRequests)
	if err != nil {
		return fmt.Errorf("items to reserve: %w", err)
	}
	type want struct {
		batch, id string
		sig       prompt.Signals
		maxTokens int
	}
	wants, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (want, error) {
		var w want
		return w, row.Scan(&w.batch, &w.id, &w.sig, &w.maxTokens)
	})
	if err != nil {
		return fmt.Errorf("items to reserve: %w", err)
	}
	price := m.Price.Batch()
	for _, w := range wants {
		out := w.maxTokens
		if out <= 0 {
			out = defaultOutputTokens
		}
		est := price.Cost(pricing.Usage{InputTokens: w.sig.TokenCount, OutputTokens: out})
		id, ok, err := r.writer.Reserve(ctx, store.Hold{BatchID: w.batch, PromptID: w.id, WorkerID: r.cfg.WorkerID, AmountUSD: est})
		if err != nil {
			return err
		}
		if !ok {
			continue // the batch is paused now; its other items wait too
		}
		if _, err := r.pool.Exec(ctx, `UPDATE provider_batch_items SET budget_hold = $4
			WHERE batch_id = $1 AND prompt_id = $2 AND model = $3 AND state = 'queued'`, w.batch, w.id, m.Name, id); err != nil {
			return err
		}
	}
	return nil
}
