package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promptcascade/promptcascade/internal/prompt"
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
}

// Done is the number of prompts with a results row.
func (b BatchStatus) Done() int64 { return b.Succeeded + b.Failed }

// Queued is Total minus Done, never negative: prompts still queued, in
// flight or lost (Verify tells which).
func (b BatchStatus) Queued() int64 { return max(b.Total-b.Done(), 0) }

// Status reports the progress of batchID, or of every batch (ordered by
// batch id) when batchID is "". A batch appears if it has a batches row,
// results or request_log rows; an unknown batch id gives an empty slice.
func (s *Store) Status(ctx context.Context, batchID string) ([]BatchStatus, error) {
	scope := batchScope(clean(batchID))
	rows, err := s.pool.Query(ctx, `
		WITH b AS (
			SELECT batch_id, total, created_at FROM batches WHERE `+scope+`
		), r AS (
			SELECT batch_id,
				count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
				count(*) FILTER (WHERE status = 'failed') AS failed,
				sum(cost_usd) AS cost, min(completed_at) AS first_at, max(completed_at) AS last_at
			FROM results WHERE `+scope+` GROUP BY batch_id
		), l AS (
			SELECT batch_id, sum(cost_usd) AS spent
			FROM request_log WHERE `+scope+` GROUP BY batch_id
		)
		SELECT coalesce(b.batch_id, r.batch_id, l.batch_id), coalesce(b.total, 0),
			coalesce(r.succeeded, 0), coalesce(r.failed, 0),
			coalesce(r.cost, 0)::float8, coalesce(l.spent, 0)::float8,
			b.created_at, r.first_at, r.last_at
		FROM b
		FULL JOIN r ON r.batch_id = b.batch_id
		FULL JOIN l ON l.batch_id = coalesce(b.batch_id, r.batch_id)
		ORDER BY 1`, clean(batchID))
	if err != nil {
		return nil, fmt.Errorf("store: status: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (BatchStatus, error) {
		var st BatchStatus
		var created, first, last *time.Time
		err := row.Scan(&st.BatchID, &st.Total, &st.Succeeded, &st.Failed, &st.CostUSD, &st.SpentUSD,
			&created, &first, &last)
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

// TierSummary is the per-tier report of the article's "things worth
// monitoring": traffic, models used, cascade rate, cost and latency.
type TierSummary struct {
	Tier      prompt.Tier
	Prompts   int64 // results rows
	Succeeded int64
	Failed    int64
	// Models maps each model to the number of answers of it that were kept.
	Models map[string]int64
	// Cascaded counts prompts with more than one attempt (over every delivery
	// up to the committing one); CascadeRate is Cascaded / Prompts.
	Cascaded    int64
	CascadeRate float64
	// Attempts counts request_log rows; QualityFailed those whose answer
	// failed the quality gate.
	Attempts      int64
	QualityFailed int64
	CostUSD       float64 // sum of results.cost_usd
	SpentUSD      float64 // sum of request_log.cost_usd (see BatchStatus.SpentUSD)
	// Latency of succeeded prompts (results.latency_ms): mean, median, 95th
	// percentile (continuous); 0 when none succeeded.
	AvgLatencyMS float64
	P50LatencyMS float64
	P95LatencyMS float64
}

// Summary reports per tier, cheapest tier first, for batchID or for every
// batch when batchID is "". Tiers with neither results nor attempts are left
// out.
func (s *Store) Summary(ctx context.Context, batchID string) ([]TierSummary, error) {
	b := clean(batchID)
	scope := batchScope(b)
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("store: summary: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only

	byTier := map[prompt.Tier]*TierSummary{}
	get := func(t string) *TierSummary {
		ts := byTier[prompt.Tier(t)]
		if ts == nil {
			ts = &TierSummary{Tier: prompt.Tier(t), Models: map[string]int64{}}
			byTier[ts.Tier] = ts
		}
		return ts
	}
	bt := &pgx.Batch{}
	bt.Queue(`
		SELECT tier, count(*),
			count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed'),
			count(*) FILTER (WHERE attempts > 1), coalesce(sum(cost_usd), 0)::float8,
			coalesce(avg(latency_ms) FILTER (WHERE status = 'succeeded'), 0),
			coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE status = 'succeeded'), 0),
			coalesce(percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE status = 'succeeded'), 0)
		FROM results WHERE `+scope+`
		GROUP BY tier`, b).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var tier string
				var t TierSummary
				if err := rows.Scan(&tier, &t.Prompts, &t.Succeeded, &t.Failed, &t.Cascaded, &t.CostUSD,
					&t.AvgLatencyMS, &t.P50LatencyMS, &t.P95LatencyMS); err != nil {
					return err
				}
				ts := get(tier)
				t.Tier, t.Models = ts.Tier, ts.Models
				*ts = t
			}
			return rows.Err()
		})
	bt.Queue(`
		SELECT tier, model_used, count(*) FROM results
		WHERE `+scope+` AND status = 'succeeded' AND model_used IS NOT NULL
		GROUP BY tier, model_used`, b).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var tier, model string
				var n int64
				if err := rows.Scan(&tier, &model, &n); err != nil {
					return err
				}
				get(tier).Models[model] = n
			}
			return rows.Err()
		})
	bt.Queue(`
		SELECT tier, count(*), count(*) FILTER (WHERE outcome = 'quality_failed'),
			coalesce(sum(cost_usd), 0)::float8
		FROM request_log WHERE `+scope+` AND tier IS NOT NULL
		GROUP BY tier`, b).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var tier string
				var attempts, qf int64
				var spent float64
				if err := rows.Scan(&tier, &attempts, &qf, &spent); err != nil {
					return err
				}
				ts := get(tier)
				ts.Attempts, ts.QualityFailed, ts.SpentUSD = attempts, qf, spent
			}
			return rows.Err()
		})
	if err := tx.SendBatch(ctx, bt).Close(); err != nil {
		return nil, fmt.Errorf("store: summary: %w", err)
	}
	out := make([]TierSummary, 0, len(byTier))
	for _, t := range prompt.Tiers {
		if ts := byTier[t]; ts != nil {
			if ts.Prompts > 0 {
				ts.CascadeRate = float64(ts.Cascaded) / float64(ts.Prompts)
			}
			out = append(out, *ts)
		}
	}
	return out, nil
}
