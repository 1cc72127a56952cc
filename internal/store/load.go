package store

import (
	"context"
	"fmt"
	"time"
)

// BatchLoad is what one worker holds of one batch: prompts being worked (in
// a model call or in the cascade) and prompts waiting (for a model's
// capacity, or delivered and not started).
type BatchLoad struct {
	BatchID  string
	InFlight int
	Waiting  int
}

// BatchLoadSum is a batch's load summed over the workers whose reports
// are fresh, and how many they are.
type BatchLoadSum struct {
	InFlight, Waiting, Workers int
}

// ReportLoad replaces workerID's rows of worker_batch_load with loads (a
// batch not in loads loses its row; nil deletes them all, as on a clean
// exit). The rows count for ttl from now on the database's clock. The same
// statement deletes other workers' rows expired for a minute (workers that
// were killed), so the table keeps only live workers' rows.
func (s *Store) ReportLoad(ctx context.Context, workerID string, loads []BatchLoad, ttl time.Duration) error {
	batches := make([]string, len(loads))
	inFlight := make([]int32, len(loads))
	waiting := make([]int32, len(loads))
	for i, l := range loads {
		batches[i], inFlight[i], waiting[i] = clean(l.BatchID), int32(l.InFlight), int32(l.Waiting)
	}
	_, err := s.pool.Exec(ctx, `
		WITH gone AS (
			DELETE FROM worker_batch_load
			WHERE (worker_id = $1 AND batch_id <> ALL($2::text[]))
			   OR (worker_id <> $1 AND expires_at < now() - interval '1 minute')
		)
		INSERT INTO worker_batch_load (worker_id, batch_id, in_flight, waiting, updated_at, expires_at)
		SELECT $1, b, f, w, now(), now() + $5 * interval '1 millisecond'
		FROM unnest($2::text[], $3::int[], $4::int[]) AS t(b, f, w)
		ON CONFLICT (worker_id, batch_id) DO UPDATE SET in_flight = excluded.in_flight, waiting = excluded.waiting,
			updated_at = excluded.updated_at, expires_at = excluded.expires_at`,
		clean(workerID), batches, inFlight, waiting, ttl.Milliseconds())
	if err != nil {
		return fmt.Errorf("store: reporting worker load: %w", err)
	}
	return nil
}

// LoadByBatch sums the fresh worker_batch_load rows of batch batchID (""
// for every batch), keyed by batch. Expired rows (a killed worker's) are
// left out.
func (s *Store) LoadByBatch(ctx context.Context, batchID string) (map[string]BatchLoadSum, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT batch_id, sum(in_flight)::int, sum(waiting)::int, count(*)::int
		FROM worker_batch_load WHERE `+batchScope(clean(batchID))+` AND expires_at > now()
		GROUP BY batch_id`, clean(batchID))
	if err != nil {
		return nil, fmt.Errorf("store: worker load: %w", err)
	}
	defer rows.Close()
	out := map[string]BatchLoadSum{}
	for rows.Next() {
		var id string
		var l BatchLoadSum
		if err := rows.Scan(&id, &l.InFlight, &l.Waiting, &l.Workers); err != nil {
			return nil, fmt.Errorf("store: worker load: %w", err)
		}
		out[id] = l
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: worker load: %w", err)
	}
	return out, nil
}
