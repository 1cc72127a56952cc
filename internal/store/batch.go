package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// UpsertBatch creates the batches row if missing and raises its total to
// total if that is larger. It never lowers the total, so running enqueue
// again on the same input (after an interruption) is harmless. A batch filled
// from several inputs gets an exact total from RecordEnqueued, which counts
// distinct recorded ids.
func (s *Store) UpsertBatch(ctx context.Context, batchID string, total int) error {
	b := clean(batchID)
	if b == "" {
		return fmt.Errorf("store: upsert batch: empty batch id")
	}
	if total < 0 {
		return fmt.Errorf("store: upsert batch %q: total %d is negative", batchID, total)
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO batches (batch_id, total) VALUES ($1, $2)
		ON CONFLICT (batch_id) DO UPDATE
		SET total = GREATEST(batches.total, EXCLUDED.total), updated_at = now()`, b, int64(total))
	if err != nil {
		return fmt.Errorf("store: upsert batch %q: %w", batchID, err)
	}
	return nil
}

// Enqueued is one prompt id that enqueue publishes, with the hash of its
// content (queue.ContentHash; 32 bytes). A nil hash matches any content.
type Enqueued struct {
	ID          string
	ContentHash []byte
}

// RecordEnqueued records that entries are published to batchID
// (batch_prompts), creating the batch if needed, in one transaction with a
// fixed number of round trips (COPY into a staging table, then one query).
// An id already recorded with the same content (or an unknown one) is
// skipped, so calls may overlap and repeat; batches.enqueued counts distinct
// ids and batches.total is raised to at least that.
//
// An id already recorded in the batch with a different content hash, or
// given twice in entries with different hashes (the first one counts), is a
// conflict: it is not recorded, nothing stored changes, and its index in
// entries is returned (in ascending order) so that the caller rejects the
// line instead of publishing it. enqueue itself uses an EnqueueRun, which
// also finds ids repeated across calls.
func (s *Store) RecordEnqueued(ctx context.Context, batchID string, entries []Enqueued) ([]int, error) {
	return s.enqueued(ctx, batchID, entries, true)
}

// EnqueueConflicts returns what RecordEnqueued would return as conflicts
// for entries, without recording anything (enqueue --strict checks every
// file before it publishes).
func (s *Store) EnqueueConflicts(ctx context.Context, batchID string, entries []Enqueued) ([]int, error) {
	return s.enqueued(ctx, batchID, entries, false)
}

func (s *Store) enqueued(ctx context.Context, batchID string, entries []Enqueued, record bool) ([]int, error) {
	b := clean(batchID)
	if b == "" {
		return nil, fmt.Errorf("store: record enqueued: empty batch id")
	}
	for i, e := range entries {
		if clean(e.ID) == "" {
			return nil, fmt.Errorf("store: record enqueued: batch %q: id %d is empty", batchID, i)
		}
		if e.ContentHash != nil && len(e.ContentHash) != sha256.Size {
			return nil, fmt.Errorf("store: record enqueued: batch %q: id %q: content hash is %d bytes, want %d", batchID, e.ID, len(e.ContentHash), sha256.Size)
		}
	}
	conn, err := s.acquireStaged(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: record enqueued: %w", err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: record enqueued: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit

	if len(entries) > 0 {
		src := pgx.CopyFromSlice(len(entries), func(i int) ([]any, error) {
			return []any{int32(i), clean(entries[i].ID), entries[i].ContentHash}, nil
		})
		if _, err := tx.CopyFrom(ctx, stageEnqueued, []string{"ord", "prompt_id", "content_sha256"}, src); err != nil {
			return nil, fmt.Errorf("store: record enqueued: batch %q: copy %d ids: %w", batchID, len(entries), err)
		}
	}
	// ref is the content an id stands for: the recorded one, else the first
	// of this call. A conflict is a known hash other than ref. The recorded
	// one is looked up id by id (a scalar subquery): a join let the planner,
	// misled by the staging table's missing statistics, hash the batch's
	// every id at each call.
	const conflicts = `
		WITH st AS (
			SELECT s.ord, s.prompt_id, s.content_sha256 AS h,
			       coalesce((SELECT p.content_sha256 FROM batch_prompts p WHERE p.batch_id = $1 AND p.prompt_id = s.prompt_id),
			                first_value(s.content_sha256) OVER (PARTITION BY s.prompt_id ORDER BY s.ord)) AS ref
			FROM pg_temp.pc_stage_enqueued s
		)
		SELECT ord FROM st WHERE h IS NOT NULL AND ref IS NOT NULL AND h <> ref ORDER BY ord`
	var bad []int
	bt := &pgx.Batch{}
	bt.Queue(conflicts, b).Query(func(rows pgx.Rows) error {
		ords, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		for _, o := range ords {
			bad = append(bad, int(o))
		}
		return err
	})
	if record {
		bt.Queue(`INSERT INTO batches (batch_id) VALUES ($1) ON CONFLICT (batch_id) DO NOTHING`, b)
		// The first entry of each id is recorded; a later one of the same id
		// is either the same content or a conflict, and an id already
		// recorded is left as it is.
		bt.Queue(`
			WITH ins AS (
				INSERT INTO batch_prompts (batch_id, prompt_id, content_sha256)
				SELECT $1::text, prompt_id, content_sha256 FROM (
					SELECT DISTINCT ON (prompt_id) prompt_id, content_sha256
					FROM pg_temp.pc_stage_enqueued ORDER BY prompt_id, ord
				) f ORDER BY prompt_id
				ON CONFLICT (batch_id, prompt_id) DO NOTHING
				RETURNING 1
			), n AS (SELECT count(*) AS n FROM ins)
			UPDATE batches
			SET enqueued = enqueued + n.n, total = GREATEST(total, enqueued + n.n), updated_at = now()
			FROM n WHERE batch_id = $1`, b)
	}
	if err := tx.SendBatch(ctx, bt).Close(); err != nil {
		return nil, fmt.Errorf("store: record enqueued: batch %q: %w", batchID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("store: record enqueued: batch %q: commit: %w", batchID, err)
	}
	return bad, nil
}

// VerifySampleSize is how many ids Verify lists in each sample.
const VerifySampleSize = 20

// Verification reconciles one batch: what enqueue recorded (batch_prompts)
// against results and request_log.
type Verification struct {
	BatchID   string
	Total     int64 // batches.total (0 if the batch was never recorded)
	Enqueued  int64 // ids recorded by RecordEnqueued
	Succeeded int64
	Failed    int64
	// Missing counts enqueued ids without a results row: still queued, in
	// flight, or lost. The caller subtracts what the queue still holds.
	Missing int64
	// Unexpected counts results rows whose id was never recorded as enqueued.
	Unexpected int64
	// ExtraAttempts and ExtraCostUSD are the request_log rows (and their cost)
	// of answered prompts that are not part of results.attempts/cost_usd:
	// work done by deliveries that lost the race or arrived after the commit.
	ExtraAttempts int64
	ExtraCostUSD  float64
	// AnsweredTwice counts prompts with more than one ok attempt: an answer
	// was paid for more than once.
	AnsweredTwice int64
	// Up to VerifySampleSize ids of each kind, in id order.
	MissingSample    []string
	UnexpectedSample []string
}

// Done is the number of prompts with a results row.
func (v Verification) Done() int64 { return v.Succeeded + v.Failed }

// Verify reconciles batchID in one round trip (a consistent snapshot of the
// several queries it runs).
func (s *Store) Verify(ctx context.Context, batchID string) (Verification, error) {
	b := clean(batchID)
	v := Verification{BatchID: batchID, MissingSample: []string{}, UnexpectedSample: []string{}}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return v, fmt.Errorf("store: verify %q: begin: %w", batchID, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only

	bt := &pgx.Batch{}
	bt.Queue(`SELECT coalesce((SELECT total FROM batches WHERE batch_id = $1), 0),
		(SELECT count(*) FROM batch_prompts WHERE batch_id = $1)`, b).
		QueryRow(func(row pgx.Row) error { return row.Scan(&v.Total, &v.Enqueued) })
	bt.Queue(`SELECT count(*) FILTER (WHERE r.status = 'succeeded'), count(*) FILTER (WHERE r.status = 'failed'),
		coalesce(sum(l.n - r.attempts), 0), coalesce(sum(l.cost - r.cost_usd), 0)::float8
		FROM results r
		CROSS JOIN LATERAL (
			SELECT count(*) AS n, coalesce(sum(cost_usd), 0) AS cost FROM request_log
			WHERE batch_id = r.batch_id AND prompt_id = r.prompt_id
		) l
		WHERE r.batch_id = $1`, b).
		QueryRow(func(row pgx.Row) error {
			return row.Scan(&v.Succeeded, &v.Failed, &v.ExtraAttempts, &v.ExtraCostUSD)
		})
	bt.Queue(`SELECT count(*) FROM (
		SELECT 1 FROM request_log WHERE batch_id = $1 AND outcome = 'ok'
		GROUP BY prompt_id HAVING count(*) > 1) d`, b).
		QueryRow(func(row pgx.Row) error { return row.Scan(&v.AnsweredTwice) })
	bt.Queue(`SELECT count(*) FROM batch_prompts p WHERE p.batch_id = $1
		AND NOT EXISTS (SELECT 1 FROM results r WHERE r.batch_id = p.batch_id AND r.prompt_id = p.prompt_id)`, b).
		QueryRow(func(row pgx.Row) error { return row.Scan(&v.Missing) })
	bt.Queue(`SELECT count(*) FROM results r WHERE r.batch_id = $1
		AND NOT EXISTS (SELECT 1 FROM batch_prompts p WHERE p.batch_id = r.batch_id AND p.prompt_id = r.prompt_id)`, b).
		QueryRow(func(row pgx.Row) error { return row.Scan(&v.Unexpected) })
	// The samples use EXCEPT, not NOT EXISTS ... LIMIT: on tables autovacuum
	// has not analysed yet, the LIMIT tempts the planner into a nested-loop
	// anti join that is quadratic in the batch size.
	bt.Queue(`SELECT prompt_id FROM batch_prompts WHERE batch_id = $1
		EXCEPT SELECT prompt_id FROM results WHERE batch_id = $1
		ORDER BY 1 LIMIT $2`, b, VerifySampleSize).
		Query(func(rows pgx.Rows) error {
			ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
			v.MissingSample = append(v.MissingSample, ids...)
			return err
		})
	bt.Queue(`SELECT prompt_id FROM results WHERE batch_id = $1
		EXCEPT SELECT prompt_id FROM batch_prompts WHERE batch_id = $1
		ORDER BY 1 LIMIT $2`, b, VerifySampleSize).
		Query(func(rows pgx.Rows) error {
			ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
			v.UnexpectedSample = append(v.UnexpectedSample, ids...)
			return err
		})
	if err := tx.SendBatch(ctx, bt).Close(); err != nil {
		return v, fmt.Errorf("store: verify %q: %w", batchID, err)
	}
	return v, nil
}

// BatchExists reports whether batchID was ever recorded: a batches row, or
// results of a batch written before batches rows existed.
func (s *Store) BatchExists(ctx context.Context, batchID string) (bool, error) {
	b := clean(batchID)
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM batches WHERE batch_id = $1)
		OR EXISTS (SELECT 1 FROM results WHERE batch_id = $1)`, b).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("store: batch %q: %w", batchID, err)
	}
	return ok, nil
}

// SetBatchPriority records batchID's priority (high, normal or low),
// creating the batch if needed. Enqueue records it before publishing.
func (s *Store) SetBatchPriority(ctx context.Context, batchID, priority string) error {
	b := clean(batchID)
	if b == "" {
		return fmt.Errorf("store: set batch priority: empty batch id")
	}
	switch priority {
	case "high", "normal", "low":
	default:
		return fmt.Errorf("store: batch %q: priority %q: want high, normal or low", batchID, priority)
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO batches (batch_id, priority) VALUES ($1, $2)
		ON CONFLICT (batch_id) DO UPDATE SET priority = EXCLUDED.priority, updated_at = now()`, b, priority)
	if err != nil {
		return fmt.Errorf("store: batch %q: set priority: %w", batchID, err)
	}
	return nil
}

// BatchPriority returns batchID's priority; "normal" for a batch without a
// batches row.
func (s *Store) BatchPriority(ctx context.Context, batchID string) (string, error) {
	p := "normal"
	err := s.pool.QueryRow(ctx, `SELECT priority FROM batches WHERE batch_id = $1`, clean(batchID)).Scan(&p)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("store: batch %q: priority: %w", batchID, err)
	}
	return p, nil
}
