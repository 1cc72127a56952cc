package providerbatch

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/promptcascade/promptcascade/internal/llm"
)

// Cancelling a batch (cascadectl cancel) reaches the provider batches in
// three ways:
//   - its items still queued (or about to be handed back) are settled as
//     canceled without a call: settleCanceledSQL, at every step;
//   - its items in an intent that was not sent yet are taken out of it
//     before it is sent (pruneCanceled); an intent left empty is not sent;
//   - a submitted provider batch whose waiting items all belong to canceled
//     batches is cancelled at the provider (CancelAbandoned). Items of a
//     canceled batch in a provider batch shared with running batches stay
//     there; when it ends, their answers are not stored (judge), and what
//     the provider billed for them is logged in request_log.

// settleCanceledSQL settles the queued and handing-off items of model ($1)
// whose batch is canceled, and releases their budget holds.
const settleCanceledSQL = `
WITH c AS (
	SELECT i.batch_id, i.prompt_id, i.budget_hold FROM provider_batch_items i JOIN batches b USING (batch_id)
	WHERE b.state = 'canceled' AND i.model = $1 AND i.state IN ('queued', 'handing_off')
	FOR UPDATE OF i
), u AS (
	UPDATE provider_batch_items i SET state = 'done', outcome = 'canceled', job = NULL, budget_hold = NULL, updated_at = now()
	FROM c WHERE i.batch_id = c.batch_id AND i.prompt_id = c.prompt_id AND i.model = $1
)
DELETE FROM budget_holds WHERE id IN (SELECT budget_hold FROM c WHERE budget_hold IS NOT NULL)`

// pruneCanceled takes the items of canceled batches out of intent id
// before it is sent, in one transaction, and reports how many items are
// left. An intent left empty is marked canceled (and never sent).
func (r *Runner) pruneCanceled(ctx context.Context, m *Model, id int64) (int, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	var pruned int
	if err := tx.QueryRow(ctx, `
		WITH c AS (
			SELECT i.batch_id, i.prompt_id, i.budget_hold FROM provider_batch_items i JOIN batches b USING (batch_id)
			WHERE i.provider_batch = $1 AND i.state = 'submitted' AND b.state = 'canceled'
			FOR UPDATE OF i
		), u AS (
			UPDATE provider_batch_items i SET state = 'done', outcome = 'canceled', job = NULL, budget_hold = NULL, updated_at = now()
			FROM c WHERE i.batch_id = c.batch_id AND i.prompt_id = c.prompt_id AND i.model = $2
			RETURNING 1
		), h AS (
			DELETE FROM budget_holds WHERE id IN (SELECT budget_hold FROM c WHERE budget_hold IS NOT NULL)
		)
		SELECT count(*) FROM u`, id, m.Name).Scan(&pruned); err != nil {
		return 0, fmt.Errorf("prune canceled items of intent %d: %w", id, err)
	}
	var left int
	var size int64
	if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(sum(bytes), 0) FROM provider_batch_items
		WHERE provider_batch = $1 AND state = 'submitted'`, id).Scan(&left, &size); err != nil {
		return 0, err
	}
	if pruned > 0 {
		var err error
		if left == 0 {
			_, err = tx.Exec(ctx, `UPDATE provider_batches SET state = 'canceled', ended_at = now(), done_at = now(),
				error = 'not sent: every prompt in it belongs to a canceled batch' WHERE id = $1 AND state = 'submitting'`, id)
		} else {
			_, err = tx.Exec(ctx, `UPDATE provider_batches SET items = $2, bytes = $3 WHERE id = $1 AND state = 'submitting'`, id, left, size)
		}
		if err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	if pruned > 0 {
		r.log.Info("provider batch: prompts of canceled batches taken out before sending", "model", m.Name, "intent", id, "canceled", pruned, "left", left)
	}
	return left, nil
}

// abandonedSQL selects model's ($1) submitted provider batches whose
// cancel was not requested yet and whose waiting items all belong to
// canceled batches.
const abandonedSQL = `
SELECT pb.id, pb.provider_batch_id FROM provider_batches pb
WHERE pb.model = $1 AND pb.state = 'submitted' AND pb.cancel_requested_at IS NULL AND pb.provider_batch_id IS NOT NULL
  AND EXISTS (SELECT 1 FROM provider_batch_items i WHERE i.provider_batch = pb.id AND i.state = 'submitted')
  AND NOT EXISTS (SELECT 1 FROM provider_batch_items i LEFT JOIN batches b USING (batch_id)
                  WHERE i.provider_batch = pb.id AND i.state = 'submitted' AND coalesce(b.state, 'running') <> 'canceled')
ORDER BY pb.id`

// Canceled is a provider batch CancelAbandoned asked the provider to cancel.
type Canceled struct {
	ID              int64  // provider_batches.id
	ProviderBatchID string // the provider's id
	Err             error  // the provider's refusal (recorded; not asked again), or nil
}

// CancelAbandoned asks c, model's batch client, to cancel each submitted
// provider batch of model whose waiting items all belong to canceled
// batches, and records each call the provider answered
// (cancel_requested_at; cancel_error for a refusal, which is not retried).
// A call that fails in a way worth retrying (network, 5xx, rate limit) is
// left for the next caller and ends the round with its error. The workers'
// pollers call it at every step, cascadectl cancel once at once; a
// provider batch both reach is cancelled twice, which the providers answer
// alike.
func CancelAbandoned(ctx context.Context, pool *pgxpool.Pool, model string, c Client, log *slog.Logger) ([]Canceled, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rows, err := pool.Query(ctx, abandonedSQL, model)
	if err != nil {
		return nil, fmt.Errorf("providerbatch: abandoned batches of %s: %w", model, err)
	}
	todo, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Canceled, error) {
		var x Canceled
		return x, row.Scan(&x.ID, &x.ProviderBatchID)
	})
	if err != nil {
		return nil, fmt.Errorf("providerbatch: abandoned batches of %s: %w", model, err)
	}
	var done []Canceled
	for _, x := range todo {
		err := c.CancelBatch(ctx, x.ProviderBatchID)
		if err != nil && llm.ClassOf(err).Retryable() {
			return done, fmt.Errorf("providerbatch: cancel %s (%s): %w", x.ProviderBatchID, model, err)
		}
		var reason *string
		if err != nil {
			s := llm.AsError(err).Error()
			reason = &s
			x.Err = err
			log.Warn("provider batch: the provider refused to cancel a batch of canceled prompts", "model", model, "provider_batch", x.ProviderBatchID, "err", err)
		} else {
			log.Info("provider batch: cancelled at the provider; all its prompts belong to canceled batches", "model", model, "provider_batch", x.ProviderBatchID)
		}
		if _, err := pool.Exec(ctx, `UPDATE provider_batches SET cancel_requested_at = coalesce(cancel_requested_at, now()),
			cancel_error = left($2, 500) WHERE id = $1`, x.ID, reason); err != nil {
			return done, fmt.Errorf("providerbatch: record the cancel of %s: %w", x.ProviderBatchID, err)
		}
		done = append(done, x)
	}
	return done, nil
}
