package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// MissingAccount says where the missing prompts of a batch are: the ids
// enqueue recorded that have no results row.
type MissingAccount struct {
	Missing      int64 // recorded ids without a results row
	Queued       int64 // of those, ids among the queued ids
	HandedBack   int64 // of the rest, ids republished to the stream by the provider batch poller (after the stream was read)
	AtProvider   int64 // of the rest, ids waiting for or at a provider's batch API (provider_batch_items)
	Parked       int64 // of the rest, ids set aside while their batch is paused (batch_parked)
	Canceled     int64 // of the rest, ids of a canceled batch, or marked canceled
	DeadLettered int64 // of the rest, ids among the dead-lettered ids
	Lost         int64 // the rest: neither answered, queued, parked, canceled nor dead-lettered
	// LostSample holds up to VerifySampleSize lost ids, in id order.
	LostSample []string
}

// AccountMissing sorts the missing prompts of batchID into queued (their id
// is in queued, e.g. read from the stream), at a provider (waiting for a
// provider batch), parked (batch paused), canceled,
// dead-lettered (in deadLettered) and lost, from one consistent snapshot. An id in both lists counts as
// queued.
func (s *Store) AccountMissing(ctx context.Context, batchID string, queued, deadLettered []string) (MissingAccount, error) {
	b := clean(batchID)
	a := MissingAccount{LostSample: []string{}}
	cleanAll := func(ids []string) []string {
		out := make([]string, len(ids))
		for i, id := range ids {
			out[i] = clean(id)
		}
		return out
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return a, fmt.Errorf("store: account missing %q: begin: %w", batchID, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only

	// Both statements classify the missing ids the same way, on the same
	// snapshot: one counts, the other names the first lost ids.
	const missing = `
		WITH q AS (SELECT DISTINCT unnest($2::text[]) AS id),
		d AS (SELECT DISTINCT unnest($3::text[]) AS id),
		-- EXCEPT, not NOT EXISTS: with a LIMIT on fresh, unanalysed tables
		-- the planner may pick a quadratic nested-loop anti join.
		x AS (
			SELECT prompt_id FROM batch_prompts WHERE batch_id = $1
			EXCEPT SELECT prompt_id FROM results WHERE batch_id = $1
		),
		m AS (
			SELECT x.prompt_id,
				-- A prompt handed back to the stream by the provider batch
				-- poller after the stream was read is queued too.
				CASE WHEN EXISTS (SELECT 1 FROM q WHERE q.id = x.prompt_id) THEN 'q'
				     WHEN EXISTS (SELECT 1 FROM provider_batch_items i WHERE i.batch_id = $1 AND i.prompt_id = x.prompt_id
				                  AND i.state = 'handed_off') THEN 'h'
				     WHEN EXISTS (SELECT 1 FROM batch_parked k WHERE k.batch_id = $1 AND k.prompt_id = x.prompt_id) THEN 'p'
				     WHEN EXISTS (SELECT 1 FROM batches b WHERE b.batch_id = $1 AND b.state = 'canceled')
				       OR EXISTS (SELECT 1 FROM batch_prompts p WHERE p.batch_id = $1 AND p.prompt_id = x.prompt_id
				                  AND p.canceled_at IS NOT NULL) THEN 'c'
				     WHEN EXISTS (SELECT 1 FROM provider_batch_items i WHERE i.batch_id = $1 AND i.prompt_id = x.prompt_id
				                  AND i.state IN ('queued', 'submitted', 'handing_off')) THEN 'b'
				     WHEN EXISTS (SELECT 1 FROM d WHERE d.id = x.prompt_id) THEN 'd'
				     ELSE 'l' END AS k
			FROM x
		)`
	bt := &pgx.Batch{}
	q, d := cleanAll(queued), cleanAll(deadLettered)
	bt.Queue(missing+`
		SELECT count(*), count(*) FILTER (WHERE k = 'q'), count(*) FILTER (WHERE k = 'h'), count(*) FILTER (WHERE k = 'b'),
			count(*) FILTER (WHERE k = 'p'), count(*) FILTER (WHERE k = 'c'), count(*) FILTER (WHERE k = 'd'), count(*) FILTER (WHERE k = 'l')
		FROM m`, b, q, d).
		QueryRow(func(row pgx.Row) error {
			return row.Scan(&a.Missing, &a.Queued, &a.HandedBack, &a.AtProvider, &a.Parked, &a.Canceled, &a.DeadLettered, &a.Lost)
		})
	bt.Queue(missing+`
		SELECT prompt_id FROM m WHERE k = 'l' ORDER BY prompt_id LIMIT $4`, b, q, d, VerifySampleSize).
		Query(func(rows pgx.Rows) error {
			ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
			a.LostSample = append(a.LostSample, ids...)
			return err
		})
	if err := tx.SendBatch(ctx, bt).Close(); err != nil {
		return a, fmt.Errorf("store: account missing %q: %w", batchID, err)
	}
	return a, nil
}
