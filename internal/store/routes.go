package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// SetBatchRoutes stores a routes file's bytes (content-addressed: the
// sha256 of yaml) and makes it batchID's routes, as a new version when it
// differs from the current one. It creates the batch if needed and returns
// the hash and the version.
func (s *Store) SetBatchRoutes(ctx context.Context, batchID, source string, yaml []byte) (sum [32]byte, version int, err error) {
	sum = sha256.Sum256(yaml)
	b := clean(batchID)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return sum, 0, fmt.Errorf("store: routes of %q: begin: %w", batchID, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	bt := &pgx.Batch{}
	bt.Queue(`INSERT INTO routes (sha256, yaml, source) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING`, sum[:], clean(string(yaml)), clean(source))
	bt.Queue(`INSERT INTO batches (batch_id) VALUES ($1) ON CONFLICT (batch_id) DO NOTHING`, b)
	bt.Queue(`SELECT 1 FROM batches WHERE batch_id = $1 FOR UPDATE`, b)
	bt.Queue(`INSERT INTO batch_routes (batch_id, version, routes_sha256)
		SELECT $1, coalesce(max(version), 0) + 1, $2 FROM batch_routes WHERE batch_id = $1
		HAVING (SELECT routes_sha256 FROM batches WHERE batch_id = $1) IS DISTINCT FROM $2`, b, sum[:])
	bt.Queue(`UPDATE batches SET routes_sha256 = $2, updated_at = now() WHERE batch_id = $1`, b, sum[:])
	bt.Queue(`SELECT coalesce(max(version), 0) FROM batch_routes WHERE batch_id = $1`, b).
		QueryRow(func(row pgx.Row) error { return row.Scan(&version) })
	if err := tx.SendBatch(ctx, bt).Close(); err != nil {
		return sum, 0, fmt.Errorf("store: routes of %q: %w", batchID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return sum, 0, fmt.Errorf("store: routes of %q: commit: %w", batchID, err)
	}
	return sum, version, nil
}

// ErrUnknownRoutes is returned (wrapped) for a routes hash with no row.
var ErrUnknownRoutes = errors.New("unknown routes")

// Routes returns the routes file stored under sum and the name it was read from.
func (s *Store) Routes(ctx context.Context, sum []byte) (yaml []byte, source string, err error) {
	var text string
	err = s.pool.QueryRow(ctx, `SELECT yaml, source FROM routes WHERE sha256 = $1`, sum).Scan(&text, &source)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", fmt.Errorf("store: routes %x: %w", sum, ErrUnknownRoutes)
	}
	if err != nil {
		return nil, "", fmt.Errorf("store: routes %x: %w", sum, err)
	}
	return []byte(text), source, nil
}

// NoteBatch records what workerID has to say about batchID (one note per
// batch and worker, replaced); an empty note removes workerID's note.
func (s *Store) NoteBatch(ctx context.Context, batchID, workerID, note string) error {
	var err error
	if note == "" {
		_, err = s.pool.Exec(ctx, `DELETE FROM batch_notes WHERE batch_id = $1 AND worker_id = $2`, clean(batchID), clean(workerID))
	} else {
		_, err = s.pool.Exec(ctx, `INSERT INTO batch_notes (batch_id, worker_id, note) VALUES ($1, $2, $3)
			ON CONFLICT (batch_id, worker_id) DO UPDATE SET note = EXCLUDED.note, noted_at = now()`,
			clean(batchID), clean(workerID), clean(note))
	}
	if err != nil {
		return fmt.Errorf("store: note on %q: %w", batchID, err)
	}
	return nil
}

// BatchNote is one worker's note on a batch.
type BatchNote struct {
	WorkerID, Note string
}

// BatchNotes returns the notes on batchID, by worker.
func (s *Store) BatchNotes(ctx context.Context, batchID string) ([]BatchNote, error) {
	rows, err := s.pool.Query(ctx, `SELECT worker_id, note FROM batch_notes WHERE batch_id = $1 ORDER BY worker_id`, clean(batchID))
	if err != nil {
		return nil, fmt.Errorf("store: notes on %q: %w", batchID, err)
	}
	ns, err := pgx.CollectRows(rows, pgx.RowToStructByPos[BatchNote])
	if err != nil {
		return nil, fmt.Errorf("store: notes on %q: %w", batchID, err)
	}
	return ns, nil
}
