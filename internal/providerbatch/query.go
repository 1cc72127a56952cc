package providerbatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The read side, for the worker's idle check and cascadectl.

// Waiting counts prompts that wait outside the queue for a provider batch
// (queued, submitted, or about to be handed back).
func Waiting(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var n int
	// Queued prompts of a paused or canceled batch do not count (they go
	// out only when it runs again), unless money is held for them.
	err := pool.QueryRow(ctx, `SELECT count(*) FROM provider_batch_items i LEFT JOIN batches b USING (batch_id)
		WHERE i.state IN ('submitted', 'handing_off') OR (i.state = 'queued' AND `+eligible+`)`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("providerbatch: count waiting items: %w", err)
	}
	return n, nil
}

// Batch is a provider_batches row with its items' counts.
type Batch struct {
	ID              int64      `json:"id"`
	Model           string     `json:"model"`
	Label           string     `json:"label"`
	State           string     `json:"state"`
	ProviderBatchID string     `json:"provider_batch_id,omitempty"`
	ProviderStatus  string     `json:"provider_status,omitempty"`
	Items           int        `json:"items"`
	Bytes           int64      `json:"bytes"`
	Waiting         int        `json:"waiting"` // items still submitted
	Error           string     `json:"error,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	SubmittedAt     *time.Time `json:"submitted_at,omitempty"`
	DoneAt          *time.Time `json:"done_at,omitempty"`
	CostUSD         float64    `json:"cost_usd"` // request_log rows of this provider batch
	// CancelRequestedAt is when the provider was asked to cancel it
	// (cascadectl cancel or batches cancel); CancelError its refusal.
	CancelRequestedAt *time.Time `json:"cancel_requested_at,omitempty"`
	CancelError       string     `json:"cancel_error,omitempty"`
}

const batchCols = `b.id, b.model, b.label, b.state, coalesce(b.provider_batch_id, ''), coalesce(b.provider_status, ''),
	b.items, b.bytes, (SELECT count(*) FROM provider_batch_items i WHERE i.provider_batch = b.id AND i.state = 'submitted'),
	coalesce(b.error, ''), b.created_at, b.submitted_at, b.done_at,
	coalesce((SELECT sum(l.cost_usd) FROM request_log l WHERE l.provider_batch_id = b.provider_batch_id), 0)::float8,
	b.cancel_requested_at, coalesce(b.cancel_error, '')`

func scanBatch(row pgx.CollectableRow) (Batch, error) {
	var b Batch
	err := row.Scan(&b.ID, &b.Model, &b.Label, &b.State, &b.ProviderBatchID, &b.ProviderStatus, &b.Items, &b.Bytes,
		&b.Waiting, &b.Error, &b.CreatedAt, &b.SubmittedAt, &b.DoneAt, &b.CostUSD, &b.CancelRequestedAt, &b.CancelError)
	return b, err
}

// List returns the provider batches, newest first; all = false leaves out
// those done more than a day ago.
func List(ctx context.Context, pool *pgxpool.Pool, limit int, all bool) ([]Batch, error) {
	rows, err := pool.Query(ctx, `SELECT `+batchCols+` FROM provider_batches b
		WHERE $2 OR b.done_at IS NULL OR b.done_at > now() - interval '1 day'
		ORDER BY b.id DESC LIMIT $1`, limit, all)
	if err != nil {
		return nil, fmt.Errorf("providerbatch: list: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanBatch)
	if err != nil {
		return nil, fmt.Errorf("providerbatch: list: %w", err)
	}
	return out, nil
}

// ErrNoBatch is returned by Show for an id or label that names no batch.
var ErrNoBatch = errors.New("no such provider batch")

// Show returns one provider batch by our id, its label or the provider's id.
func Show(ctx context.Context, pool *pgxpool.Pool, ref string) (Batch, error) {
	rows, err := pool.Query(ctx, `SELECT `+batchCols+` FROM provider_batches b
		WHERE b.id::text = $1 OR b.label = $1 OR b.provider_batch_id = $1`, ref)
	if err != nil {
		return Batch{}, fmt.Errorf("providerbatch: show %s: %w", ref, err)
	}
	out, err := pgx.CollectRows(rows, scanBatch)
	if err != nil {
		return Batch{}, fmt.Errorf("providerbatch: show %s: %w", ref, err)
	}
	if len(out) == 0 {
		return Batch{}, fmt.Errorf("%w: %q", ErrNoBatch, ref)
	}
	return out[0], nil
}

// ItemCounts counts one provider batch's items by state and outcome.
func ItemCounts(ctx context.Context, pool *pgxpool.Pool, id int64) (map[string]int, error) {
	rows, err := pool.Query(ctx, `SELECT state || coalesce(' (' || outcome || ')', ''), count(*) FROM provider_batch_items
		WHERE provider_batch = $1 GROUP BY 1 ORDER BY 1`, id)
	if err != nil {
		return nil, fmt.Errorf("providerbatch: items of %d: %w", id, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

// WaitingByBatch counts, per prompt batch and model, the prompts that wait
// at or for a provider batch (cascadectl status).
func WaitingByBatch(ctx context.Context, pool *pgxpool.Pool) (map[string]map[string]int, error) {
	rows, err := pool.Query(ctx, `SELECT batch_id, model, count(*) FROM provider_batch_items
		WHERE state IN ('queued', 'submitted', 'handing_off') GROUP BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("providerbatch: waiting items: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]int{}
	for rows.Next() {
		var b, m string
		var n int
		if err := rows.Scan(&b, &m, &n); err != nil {
			return nil, err
		}
		if out[b] == nil {
			out[b] = map[string]int{}
		}
		out[b][m] = n
	}
	return out, rows.Err()
}

// BatchWait is where the prompts of one prompt batch stand with the
// provider batches (cascadectl cancel reports it).
type BatchWait struct {
	Items     int // items of the batch, in any state
	Waiting   int // queued, submitted or handing off
	Submitted int // of those, at a provider
	// Shared counts the submitted ones in a provider batch with waiting
	// items of other batches.
	Shared int
	// Cancelled lists the provider ids of the provider batches with items
	// of the batch whose cancel was requested and not refused.
	Cancelled []string
}

// BatchItems reports where the prompts of batchID stand with the provider
// batches.
func BatchItems(ctx context.Context, pool *pgxpool.Pool, batchID string) (BatchWait, error) {
	var w BatchWait
	err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE i.state IN ('queued', 'submitted', 'handing_off')),
			count(*) FILTER (WHERE i.state = 'submitted'),
			count(*) FILTER (WHERE i.state = 'submitted' AND EXISTS (SELECT 1 FROM provider_batch_items o
				WHERE o.provider_batch = i.provider_batch AND o.state = 'submitted' AND o.batch_id <> $1)),
			coalesce((SELECT array_agg(DISTINCT pb.provider_batch_id ORDER BY pb.provider_batch_id) FROM provider_batches pb
				WHERE pb.cancel_requested_at IS NOT NULL AND pb.cancel_error IS NULL
				AND EXISTS (SELECT 1 FROM provider_batch_items x WHERE x.provider_batch = pb.id AND x.batch_id = $1)), '{}')
		FROM provider_batch_items i WHERE i.batch_id = $1`, batchID).Scan(&w.Items, &w.Waiting, &w.Submitted, &w.Shared, &w.Cancelled)
	if err != nil {
		return w, fmt.Errorf("providerbatch: items of batch %s: %w", batchID, err)
	}
	return w, nil
}
