package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// EnqueueRun records one run of enqueue in a batch, a chunk of ids at a
// time, and finds the ids it must refuse: an id given twice in the run (in
// one file or across files, however far apart), and an id the batch already
// holds with another content. Postgres, not the caller's memory, keeps the
// ids of the run, on a connection of the run's own, so that memory on the
// caller's side stays bounded by the chunk size whatever the input size.
//
// A chunk is recorded one of two ways, each one transaction:
//
//   - New ids (the common case: a first run): the chunk, all of one input,
//     is copied straight into batch_prompts (one COPY, one statement that
//     counts it and notes the chunk's transaction in a temporary table of
//     the run's chunks). A COPY that meets an id batch_prompts holds already
//     (a re-run, a repeat, a conflict) fails on its unique key, is rolled
//     back, and the chunk is recorded the second way. A row of
//     batch_prompts was recorded this way by this run exactly when its xmin
//     and recorded_at are the transaction id and now() of one of the run's
//     chunks (the pair cannot match another transaction's, even after the
//     32-bit transaction ids wrap around). An UPDATE of the row meanwhile
//     (cascadectl cancel sets canceled_at) gives it another xmin: a later
//     repeat of that id in the run is then taken for an id of an earlier
//     run, accepted if its content is the same (JetStream drops the second
//     message as a duplicate) and a conflict if not, so it is never lost.
//   - Otherwise: COPY into a staging table, then one statement that records
//     the chunk's ids in a temporary table of the run's ids, inserts the new
//     ones into batch_prompts and returns the refusals, a repeat being an id
//     of that table or of a chunk recorded the first way.
//
// Chunks must be given in input order, one call at a time (it is not safe
// for concurrent use). Close ends the run.
type EnqueueRun struct {
	conn    *pgx.Conn
	batch   string
	created bool // the batches row exists
	copied  int  // chunks copied straight into batch_prompts (rows of pc_enqueue_copied)
}

// RunEntry is one good line of an enqueue run: its id, the hash of its
// content (queue.ContentHash; 32 bytes, or nil to match any content) and the
// index of the input that holds it (for the message of a repeat).
type RunEntry struct {
	ID          string
	ContentHash []byte
	File        int
}

// Refusal is why an entry of a chunk is not recorded or published.
type Refusal int

// The refusals of an enqueue run.
const (
	// RefuseRepeat: the id came earlier in the same run (First.File says
	// in which input).
	RefuseRepeat Refusal = iota + 1
	// RefuseConflict: the batch already holds the id with another content.
	RefuseConflict
)

// Refused is one refused entry of a chunk.
type Refused struct {
	Index  int // in the chunk
	Reason Refusal
	// File is, for RefuseRepeat, the input of the id's first occurrence in
	// the run.
	File int
}

// runStageDDL creates the run's staging table (emptied at every commit),
// the table of the ids of the chunks recorded through it, and the table of
// the chunks copied straight into batch_prompts (one row each: its
// transaction's id and now(), and its input).
const runStageDDL = `
CREATE TEMP TABLE pc_stage_run (ord integer, prompt_id text, content_sha256 bytea, file integer) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE pc_enqueue_run (prompt_id text PRIMARY KEY, file integer NOT NULL);
CREATE TEMP TABLE pc_enqueue_copied (xid xid NOT NULL, at timestamptz NOT NULL, file integer NOT NULL);
`

var stageRun = pgx.Identifier{"pg_temp", "pc_stage_run"}

// BeginEnqueueRun starts a run of enqueue in batchID on a connection of its
// own. The first Record creates the batch if needed.
func (s *Store) BeginEnqueueRun(ctx context.Context, batchID string) (*EnqueueRun, error) {
	b := clean(batchID)
	if b == "" {
		return nil, errors.New("store: enqueue run: empty batch id")
	}
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("store: enqueue run %q: connect: %w", batchID, oneLine{err})
	}
	// Room for the run's ids before they spill (only settable before the
	// session's first temporary table; allocated as it fills). No JIT: the
	// planner's row estimates for temporary tables are guesses, and
	// compiling costs more than the statement saves.
	_, err = conn.Exec(ctx, `SET temp_buffers = '64MB'; SET jit = off`, pgx.QueryExecModeSimpleProtocol)
	if err == nil {
		_, err = conn.Exec(ctx, runStageDDL, pgx.QueryExecModeSimpleProtocol)
	}
	if err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("store: enqueue run %q: %w", batchID, err)
	}
	return &EnqueueRun{conn: conn, batch: b}, nil
}

// Close ends the run: its ids are forgotten (the connection closes).
func (r *EnqueueRun) Close() {
	_ = r.conn.Close(context.Background())
}

// Reset forgets the ids the run has seen (enqueue --strict checks every
// file, then records them in a second pass).
func (r *EnqueueRun) Reset(ctx context.Context) error {
	if _, err := r.conn.Exec(ctx, `TRUNCATE pg_temp.pc_enqueue_run, pg_temp.pc_enqueue_copied`); err != nil {
		return fmt.Errorf("store: enqueue run %q: reset: %w", r.batch, err)
	}
	r.copied = 0
	return nil
}

// The run's statements (of a chunk recorded through the staging table).
// firsts is each id's first entry in the chunk; copied the ids of firsts
// that a chunk of the run copied straight into batch_prompts, with its input
// (runNoCopied while there are none: it saves a probe per id); run_new the
// other ids the run had not seen in an earlier chunk (recorded in
// pc_enqueue_run by the same statement). A repeat is an entry that is not
// its id's first in the chunk, or whose id an earlier chunk had; a conflict
// is a first entry of an id new to the run that batch_prompts already holds
// with another hash. Lookups of single ids go through scalar subqueries or
// lateral probes, so that no plan ever scans the run's or the batch's ids as
// a whole (the temporary tables have no statistics).
const (
	runFirsts = `
WITH firsts AS (
	SELECT DISTINCT ON (prompt_id) ord, prompt_id, content_sha256 AS h, file
	FROM pg_temp.pc_stage_run ORDER BY prompt_id, ord
), copied AS MATERIALIZED (`
	runCopied = `
	SELECT f.prompt_id, c.file FROM firsts f
	JOIN LATERAL (SELECT p.xmin AS xid, p.recorded_at AS at FROM batch_prompts p
	              WHERE p.batch_id = $1 AND p.prompt_id = f.prompt_id) p ON true
	JOIN pg_temp.pc_enqueue_copied c ON c.xid = p.xid AND c.at = p.at`
	runNoCopied = `
	SELECT NULL::text AS prompt_id, NULL::integer AS file WHERE false`
	runNew = `
), run_new AS (
	INSERT INTO pg_temp.pc_enqueue_run (prompt_id, file)
	SELECT prompt_id, file FROM firsts f
	WHERE NOT EXISTS (SELECT 1 FROM copied c WHERE c.prompt_id = f.prompt_id)
	ORDER BY prompt_id
	ON CONFLICT (prompt_id) DO NOTHING
	RETURNING prompt_id
)`
	runRepeats = `
SELECT s.ord, 1 AS reason,
       coalesce((SELECT r.file FROM pg_temp.pc_enqueue_run r WHERE r.prompt_id = s.prompt_id), c.file, f.file) AS file
FROM pg_temp.pc_stage_run s JOIN firsts f USING (prompt_id) LEFT JOIN copied c USING (prompt_id)
WHERE s.ord <> f.ord OR NOT EXISTS (SELECT 1 FROM run_new n WHERE n.prompt_id = s.prompt_id)`
	// runConflicts probes batch_prompts for every id new to the run
	// (enqueue --strict's check pass).
	runConflicts = `
SELECT f.ord, 2, f.file FROM firsts f JOIN run_new n USING (prompt_id)
WHERE f.h IS NOT NULL
  AND (SELECT p.content_sha256 FROM batch_prompts p WHERE p.batch_id = $1 AND p.prompt_id = f.prompt_id) <> f.h
ORDER BY 1`
	// runConflictsNotInserted probes only the ids new to the run that ins
	// did not insert: the batch had them already (the statement sees
	// batch_prompts as it was before it). On a first run there are none.
	// The CTE is materialized so that the probe cannot be pushed below
	// the anti-join (it would probe every id).
	runConflictsNotInserted = `
SELECT k.ord, 2, k.file FROM known k
WHERE k.h IS NOT NULL
  AND (SELECT p.content_sha256 FROM batch_prompts p WHERE p.batch_id = $1 AND p.prompt_id = k.prompt_id) <> k.h
ORDER BY 1`

	// runRecord also inserts the ids new to the run into batch_prompts
	// (an id the batch holds already is left as it is) and counts those it
	// inserted in batches.enqueued.
	runRecord = runNew + `, ins AS (
	INSERT INTO batch_prompts (batch_id, prompt_id, content_sha256)
	SELECT $1::text, f.prompt_id, f.h FROM firsts f JOIN run_new n USING (prompt_id) ORDER BY f.prompt_id
	ON CONFLICT (batch_id, prompt_id) DO NOTHING
	RETURNING prompt_id
), counted AS (
	UPDATE batches
	SET enqueued = enqueued + c.n, total = GREATEST(total, enqueued + c.n), updated_at = now()
	FROM (SELECT count(*) AS n FROM ins) c WHERE batch_id = $1 AND c.n > 0
), known AS MATERIALIZED (
	SELECT f.ord, f.prompt_id, f.h, f.file FROM firsts f JOIN run_new n USING (prompt_id)
	WHERE NOT EXISTS (SELECT 1 FROM ins i WHERE i.prompt_id = f.prompt_id)
)` + runRepeats + "\nUNION ALL" + runConflictsNotInserted

	// runCheck records the chunk's ids in the run only.
	runCheck = runNew + runRepeats + "\nUNION ALL" + runConflicts

	// runCopiedSQL counts a chunk copied straight into batch_prompts and
	// notes its transaction (its rows' xmin and recorded_at) with its input.
	runCopiedSQL = `
WITH counted AS (
	UPDATE batches
	SET enqueued = enqueued + $2, total = GREATEST(total, enqueued + $2), updated_at = now()
	WHERE batch_id = $1
)
INSERT INTO pg_temp.pc_enqueue_copied (xid, at, file) VALUES (pg_current_xact_id()::xid, now(), $3)`
)

// runSQL is the statement of a chunk recorded through the staging table.
func (r *EnqueueRun) runSQL(record bool) string {
	copied := runNoCopied
	if r.copied > 0 {
		copied = runCopied
	}
	if record {
		return runFirsts + copied + runRecord
	}
	return runFirsts + copied + runCheck
}

// Record records a chunk: its ids join the run's, and those new to the
// batch are inserted into batch_prompts (and counted in batches.enqueued;
// batches.total is raised to at least that), all in one transaction. An id
// the batch already holds with the same content (a re-run) is left as it
// is and not refused. It returns the refused entries in index order: those
// are not recorded, and the caller reports their lines instead of
// publishing them.
func (r *EnqueueRun) Record(ctx context.Context, entries []RunEntry) ([]Refused, error) {
	if err := r.valid(entries); err != nil || len(entries) == 0 {
		return nil, err
	}
	if oneFile(entries) {
		ok, err := r.copyNew(ctx, entries)
		if err != nil || ok {
			return nil, err
		}
	}
	return r.chunk(ctx, entries, true)
}

func oneFile(entries []RunEntry) bool {
	for i := range entries {
		if entries[i].File != entries[0].File {
			return false
		}
	}
	return true
}

// copyNew copies a chunk of one input straight into batch_prompts, in one
// transaction, and reports whether it could: false (nothing recorded) when
// an id of the chunk is in batch_prompts already or twice in the chunk.
func (r *EnqueueRun) copyNew(ctx context.Context, entries []RunEntry) (bool, error) {
	tx, err := r.conn.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("store: enqueue run %q: begin: %w", r.batch, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if !r.created {
		if _, err := tx.Exec(ctx, `INSERT INTO batches (batch_id) VALUES ($1) ON CONFLICT (batch_id) DO NOTHING`, r.batch); err != nil {
			return false, fmt.Errorf("store: enqueue run %q: %w", r.batch, err)
		}
	}
	src := pgx.CopyFromSlice(len(entries), func(i int) ([]any, error) {
		e := &entries[i]
		return []any{r.batch, clean(e.ID), e.ContentHash}, nil
	})
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"batch_prompts"}, []string{"batch_id", "prompt_id", "content_sha256"}, src); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation: not all new
			return false, nil
		}
		return false, fmt.Errorf("store: enqueue run %q: copy %d ids: %w", r.batch, len(entries), err)
	}
	if _, err := tx.Exec(ctx, runCopiedSQL, r.batch, len(entries), int32(entries[0].File)); err != nil {
		return false, fmt.Errorf("store: enqueue run %q: %w", r.batch, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("store: enqueue run %q: commit: %w", r.batch, err)
	}
	r.created = true
	r.copied++
	return true, nil
}

// Check is Record without touching the batch: the ids join the run's (so
// that a later chunk's repeats are found), and the refusals are those Record
// would give. enqueue --strict checks every input with it first.
func (r *EnqueueRun) Check(ctx context.Context, entries []RunEntry) ([]Refused, error) {
	if err := r.valid(entries); err != nil || len(entries) == 0 {
		return nil, err
	}
	return r.chunk(ctx, entries, false)
}

func (r *EnqueueRun) valid(entries []RunEntry) error {
	for i, e := range entries {
		if clean(e.ID) == "" {
			return fmt.Errorf("store: enqueue run %q: id %d is empty", r.batch, i)
		}
		if e.ContentHash != nil && len(e.ContentHash) != sha256.Size {
			return fmt.Errorf("store: enqueue run %q: id %q: content hash is %d bytes, want %d", r.batch, e.ID, len(e.ContentHash), sha256.Size)
		}
	}
	return nil
}

// chunk records a chunk through the staging table (Record's second way, and
// Check).
func (r *EnqueueRun) chunk(ctx context.Context, entries []RunEntry, record bool) ([]Refused, error) {
	tx, err := r.conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: enqueue run %q: begin: %w", r.batch, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if record && !r.created {
		if _, err := tx.Exec(ctx, `INSERT INTO batches (batch_id) VALUES ($1) ON CONFLICT (batch_id) DO NOTHING`, r.batch); err != nil {
			return nil, fmt.Errorf("store: enqueue run %q: %w", r.batch, err)
		}
	}
	src := pgx.CopyFromSlice(len(entries), func(i int) ([]any, error) {
		e := &entries[i]
		return []any{int32(i), clean(e.ID), e.ContentHash, int32(e.File)}, nil
	})
	if _, err := tx.CopyFrom(ctx, stageRun, []string{"ord", "prompt_id", "content_sha256", "file"}, src); err != nil {
		return nil, fmt.Errorf("store: enqueue run %q: copy %d ids: %w", r.batch, len(entries), err)
	}
	rows, err := tx.Query(ctx, r.runSQL(record), r.batch)
	if err != nil {
		return nil, fmt.Errorf("store: enqueue run %q: %w", r.batch, err)
	}
	var out []Refused
	var ord, reason, file int32
	_, err = pgx.ForEachRow(rows, []any{&ord, &reason, &file}, func() error {
		out = append(out, Refused{Index: int(ord), Reason: Refusal(reason), File: int(file)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: enqueue run %q: %w", r.batch, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("store: enqueue run %q: commit: %w", r.batch, err)
	}
	r.created = r.created || record
	return out, nil
}
