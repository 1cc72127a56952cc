package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// request_log is partitioned by month of started_at (migration 005). Months
// are created ahead by EnsurePartitions; a row of a month that does not exist
// yet waits in request_log_default and moves when its month is created.

// DefaultPartitionsAhead is how many months after the current one
// EnsurePartitions creates when asked for no number: a worker that restarts
// less than once in that time still never writes to the default partition.
const DefaultPartitionsAhead = 2

// Partition is one partition of request_log.
type Partition struct {
	Name string
	// From and To bound its started_at values, [From, To); both zero for
	// the default partition, which holds rows of months not created yet.
	From, To time.Time
	Default  bool
	// EstimatedRows is Postgres' estimate (pg_class.reltuples, refreshed by
	// ANALYZE and autovacuum); -1 before the first ANALYZE.
	EstimatedRows int64
}

// EnsurePartitions creates the monthly partitions of request_log from the
// month of now through ahead months after it that do not exist yet, and
// returns how many it created. Several processes calling it at once are
// safe; a call that finds every month present takes no lock on request_log.
func (s *Store) EnsurePartitions(ctx context.Context, now time.Time, ahead int) (int, error) {
	if ahead < 0 || ahead > 120 {
		return 0, fmt.Errorf("store: partitions ahead = %d: want 0 to 120 months", ahead)
	}
	from := monthStart(now)
	to := from.AddDate(0, ahead+1, 0)
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT request_log_ensure_partitions($1, $2)`, from, to).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: create request_log partitions %s to %s: %w",
			from.Format("2006-01"), to.AddDate(0, -1, 0).Format("2006-01"), err)
	}
	return n, nil
}

func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// Partitions lists request_log's partitions, months in order, the default
// partition last.
func (s *Store) Partitions(ctx context.Context) ([]Partition, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT c.relname,
		       (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz,
		       (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz,
		       c.reltuples::bigint
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'request_log'::regclass
		ORDER BY 2 NULLS LAST, 1`)
	if err != nil {
		return nil, fmt.Errorf("store: list request_log partitions: %w", err)
	}
	var ps []Partition
	for rows.Next() {
		var p Partition
		var from, to *time.Time
		if err := rows.Scan(&p.Name, &from, &to, &p.EstimatedRows); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: list request_log partitions: %w", err)
		}
		if from == nil || to == nil {
			p.Default = true
		} else {
			p.From, p.To = from.UTC(), to.UTC()
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list request_log partitions: %w", err)
	}
	return ps, nil
}

// PruneOptions says which request_log rows Prune removes: those that started
// before Before, of batch BatchID only when it is set.
type PruneOptions struct {
	Before  time.Time
	BatchID string
	// Chunk is the most rows one DELETE transaction removes (default
	// 10,000), so that a large prune never holds long locks or bloats one
	// transaction.
	Chunk int
	// DryRun counts instead of removing.
	DryRun bool
}

// PruneReport says what Prune removed (or, with DryRun, would remove).
type PruneReport struct {
	// Dropped are the whole partitions dropped: every row in them was older
	// than Before (only without BatchID).
	Dropped []DroppedPartition
	// DroppedRows counts the rows of the dropped partitions.
	DroppedRows int64
	// Deleted counts the rows deleted one chunk at a time, in Chunks
	// transactions.
	Deleted int64
	Chunks  int
}

// DroppedPartition is a partition Prune dropped, with the rows it held.
type DroppedPartition struct {
	Partition
	Rows int64
}

// DefaultPruneChunk is PruneOptions.Chunk when unset.
const DefaultPruneChunk = 10_000

// Prune removes the request_log rows that started before o.Before. Without
// a batch, partitions whose whole month is older are dropped (no row is read
// or rewritten) and the older rows of the remaining partitions are deleted
// in chunks; with a batch, that batch's rows are deleted in chunks. It
// touches nothing but request_log: results rows keep their cost and attempt
// counts, while sums over request_log (spent money, extra spend) lose the
// pruned rows.
//
// Prune stops at the first error; what it removed until then is in the
// report, and running it again continues.
func (s *Store) Prune(ctx context.Context, o PruneOptions) (PruneReport, error) {
	var rep PruneReport
	if o.Before.IsZero() {
		return rep, errors.New("store: prune: no cut-off time")
	}
	if o.Chunk <= 0 {
		o.Chunk = DefaultPruneChunk
	}
	if o.BatchID == "" {
		ps, err := s.Partitions(ctx)
		if err != nil {
			return rep, err
		}
		for _, p := range ps {
			if p.Default || p.To.After(o.Before) {
				continue
			}
			n, err := s.dropPartition(ctx, p, o.DryRun)
			if err != nil {
				return rep, err
			}
			rep.Dropped = append(rep.Dropped, DroppedPartition{p, n})
			rep.DroppedRows += n
		}
	}
	where := `started_at < $1`
	args := []any{o.Before}
	if o.BatchID != "" {
		where += ` AND batch_id = $2`
		args = append(args, o.BatchID)
	}
	if o.DryRun {
		var n int64
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM request_log WHERE `+where, args...).Scan(&n); err != nil {
			return rep, fmt.Errorf("store: prune: count request_log rows: %w", err)
		}
		rep.Deleted = n - rep.DroppedRows
		return rep, nil
	}
	// Chunks are deleted one partition at a time, by ctid (a ctid names a
	// row within one table only): the inner query finds up to Chunk rows by
	// the started_at or batch index, the delete goes straight to them. Each
	// chunk is its own transaction.
	schema, err := s.requestLogSchema(ctx)
	if err != nil {
		return rep, err
	}
	ps, err := s.Partitions(ctx)
	if err != nil {
		return rep, err
	}
	for _, p := range ps {
		if !p.Default && !p.From.Before(o.Before) {
			continue // nothing in it started before the cut-off
		}
		table := pgx.Identifier{schema, p.Name}.Sanitize()
		del := `DELETE FROM ` + table + ` WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM ` + table + ` WHERE ` + where + ` LIMIT ` + fmt.Sprint(o.Chunk) + `))`
		for {
			tag, err := s.pool.Exec(ctx, del, args...)
			if err != nil {
				return rep, fmt.Errorf("store: prune: delete rows older than %s from %s (after %d deleted): %w",
					o.Before.UTC().Format(time.RFC3339), p.Name, rep.Deleted, err)
			}
			if tag.RowsAffected() == 0 {
				break
			}
			rep.Deleted += tag.RowsAffected()
			rep.Chunks++
		}
	}
	return rep, nil
}

// requestLogSchema is the schema request_log is in (the first of the
// search_path that has it).
func (s *Store) requestLogSchema(ctx context.Context) (string, error) {
	var schema string
	if err := s.pool.QueryRow(ctx, `SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = 'request_log'::regclass`).Scan(&schema); err != nil {
		return "", fmt.Errorf("store: schema of request_log: %w", err)
	}
	return schema, nil
}

// dropPartition counts a partition's rows and drops it in one transaction.
// Dropping a partition locks request_log for a moment; lock_timeout keeps a
// long report query from making the workers' inserts queue behind the drop.
func (s *Store) dropPartition(ctx context.Context, p Partition, dryRun bool) (int64, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: prune: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	schema, err := s.requestLogSchema(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: prune: %w", err)
	}
	table := pgx.Identifier{schema, p.Name}.Sanitize()
	var n int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: prune: count %s: %w", p.Name, err)
	}
	if dryRun {
		return n, nil
	}
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '10s'`); err != nil {
		return 0, fmt.Errorf("store: prune: %w", err)
	}
	if _, err := tx.Exec(ctx, `DROP TABLE `+table); err != nil {
		return 0, fmt.Errorf("store: prune: drop %s: %w", p.Name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("store: prune: drop %s: commit: %w", p.Name, err)
	}
	return n, nil
}
