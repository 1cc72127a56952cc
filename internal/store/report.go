package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// BatchStatus is the progress of one batch.
type BatchStatus struct {
	BatchID   string
	Total     int64 // batches.total; 0 when the batch was never recorded
	Succeeded int64
	Failed    int64
	// CostUSD is what the answered prompts cost (sum of results.cost_usd).
	CostUSD float64
	// SpentUSD is all money spent so far (sum of request_log.cost_usd):
	// CostUSD plus transient deliveries of prompts still queued and duplicate
	// work of deliveries that lost a race.
	SpentUSD       float64
	CreatedAt      time.Time // zero when the batch was never recorded
	FirstCompleted time.Time // zero when nothing is done yet
	LastCompleted  time.Time

	State       BatchState // running, paused or canceled ("" when the batch was never recorded)
	BudgetUSD   *float64   // nil: no budget
	StateReason string
	Priority    string // high, normal or low ("" when the batch was never recorded)
	Parked      int64  // messages set aside while paused (batch_parked)
	// LastMinute counts results completed in the minute before Now (the
	// database's clock; completed_at is the worker's).
	LastMinute int64
	Now        time.Time
}

// Canceled is the number of prompts without a result in a canceled batch.
func (b BatchStatus) Canceled() int64 {
	if b.State != BatchCanceled {
		return 0
	}
	return max(b.Total-b.Done(), 0)
}

// Done is the number of prompts with a results row.
func (b BatchStatus) Done() int64 { return b.Succeeded + b.Failed }

// Queued is Total minus Done, never negative: prompts still queued, in
// flight or lost (Verify tells which), or paused (Parked of them); 0 for a
// canceled batch.
func (b BatchStatus) Queued() int64 {
	if b.State == BatchCanceled {
		return 0
	}
	return max(b.Total-b.Done(), 0)
}

// Status reports the progress of batchID, or of every batch (ordered by
// batch id) when batchID is "". A batch appears if it has a batches row,
// results or request_log rows; an unknown batch id gives an empty slice.
func (s *Store) Status(ctx context.Context, batchID string) ([]BatchStatus, error) {
	scope := batchScope(clean(batchID))
	rows, err := s.pool.Query(ctx, `
		WITH b AS (
			SELECT batch_id, total, created_at, state, coalesce(state_reason, '') AS reason, budget_usd::float8 AS budget, priority FROM batches WHERE `+scope+`
		), r AS (
			SELECT batch_id,
				count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
				count(*) FILTER (WHERE status = 'failed') AS failed,
				sum(cost_usd) AS cost, min(completed_at) AS first_at, max(completed_at) AS last_at,
				count(*) FILTER (WHERE completed_at > now() - interval '1 minute') AS recent
			FROM results WHERE `+scope+` GROUP BY batch_id
		), p AS (
			SELECT batch_id, count(*) AS parked FROM batch_parked WHERE `+scope+` GROUP BY batch_id
		), l AS (
			SELECT batch_id, sum(cost_usd) AS spent
			FROM request_log WHERE `+scope+` GROUP BY batch_id
		)
		SELECT coalesce(b.batch_id, r.batch_id, l.batch_id), coalesce(b.total, 0),
			coalesce(r.succeeded, 0), coalesce(r.failed, 0),
			coalesce(r.cost, 0)::float8, coalesce(l.spent, 0)::float8,
			b.created_at, r.first_at, r.last_at,
			coalesce(b.state, ''), coalesce(b.reason, ''), coalesce(p.parked, 0), coalesce(r.recent, 0), now(), b.budget, coalesce(b.priority, '')
		FROM b
		FULL JOIN r ON r.batch_id = b.batch_id
		FULL JOIN l ON l.batch_id = coalesce(b.batch_id, r.batch_id)
		LEFT JOIN p ON p.batch_id = coalesce(b.batch_id, r.batch_id, l.batch_id)
		ORDER BY 1`, clean(batchID))
	if err != nil {
		return nil, fmt.Errorf("store: status: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (BatchStatus, error) {
		var st BatchStatus
		var created, first, last *time.Time
		err := row.Scan(&st.BatchID, &st.Total, &st.Succeeded, &st.Failed, &st.CostUSD, &st.SpentUSD,
			&created, &first, &last, &st.State, &st.StateReason, &st.Parked, &st.LastMinute, &st.Now, &st.BudgetUSD, &st.Priority)
		st.CreatedAt, st.FirstCompleted, st.LastCompleted = deref(created), deref(first), deref(last)
		return st, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: status: %w", err)
	}
	return out, nil
}

// batchScope is the WHERE condition selecting batch $1, or every batch when
// batchID is "". Two distinct statements, so that a prepared plan for one
// batch always uses the batch_id index.
func batchScope(batchID string) string {
	if batchID == "" {
		return "$1::text = ''"
	}
	return "batch_id = $1"
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
