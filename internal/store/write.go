package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// Staging tables live in each connection's pg_temp schema, created once per
// connection (not per transaction, which would churn the system catalogs at
// every commit) and emptied at every commit. Write uses them only when its
// direct write met an existing row; RecordEnqueued uses pc_stage_enqueued. They hold no constraints, so
// COPY into them cannot fail on a duplicate.
const stageDDL = `
CREATE TEMP TABLE IF NOT EXISTS pc_stage_results (
    batch_id text, prompt_id text, prompt text, system text, metadata jsonb,
    tier text, word_count integer, token_count integer, complex_hits integer, moderate_hits integer,
    status text, model_used text, response text, finish_reason text,
    input_tokens integer, output_tokens integer, latency_ms double precision, error text,
    enqueued_at timestamptz, completed_at timestamptz, worker_id text,
    prompt_sha256 bytea, prompt_chars integer, response_chars integer, delivery integer,
    seq bigint, max_tokens integer, router_score double precision
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS pc_stage_log (
    batch_id text, prompt_id text, attempt integer, delivery integer, tier text, model text,
    outcome text, http_status integer, error text, input_tokens integer, output_tokens integer,
    cost_usd double precision, latency_ms double precision, estimated boolean,
    started_at timestamptz, worker_id text, provider_batch_id text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS pc_stage_enqueued (ord integer, prompt_id text, content_sha256 bytea) ON COMMIT DELETE ROWS;
`

const stageReadyKey = "promptcascade.store.stage"

var (
	stageResultsTable = pgx.Identifier{"pg_temp", "pc_stage_results"}
	stageLogTable     = pgx.Identifier{"pg_temp", "pc_stage_log"}
	stageEnqueued     = pgx.Identifier{"pg_temp", "pc_stage_enqueued"}

	stageResultsColumns = []string{
		"batch_id", "prompt_id", "prompt", "system", "metadata",
		"tier", "word_count", "token_count", "complex_hits", "moderate_hits",
		"status", "model_used", "response", "finish_reason",
		"input_tokens", "output_tokens", "latency_ms", "error",
		"enqueued_at", "completed_at", "worker_id",
		"prompt_sha256", "prompt_chars", "response_chars", "delivery",
		"seq", "max_tokens", "router_score",
	}
	stageLogColumns = []string{
		"batch_id", "prompt_id", "attempt", "delivery", "tier", "model",
		"outcome", "http_status", "error", "input_tokens", "output_tokens",
		"cost_usd", "latency_ms", "estimated", "started_at", "worker_id", "provider_batch_id",
	}
)

// acquireStaged takes a connection from the pool whose staging tables exist.
func (s *Store) acquireStaged(ctx context.Context) (*pgxpool.Conn, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire connection: %w", err)
	}
	data := conn.Conn().PgConn().CustomData()
	if data[stageReadyKey] == nil {
		if _, err := conn.Exec(ctx, stageDDL, pgx.QueryExecModeSimpleProtocol); err != nil {
			conn.Release()
			return nil, fmt.Errorf("create staging tables: %w", err)
		}
		data[stageReadyKey] = true
	}
	return conn, nil
}

// The attempts of every input are logged, including those of a delivery
// whose results row already existed (it lost a race with another worker, or
// the write is a retry): they were really paid for. request_log is idempotent
// on (batch_id, prompt_id, delivery, attempt, started_at), so retrying a Write
// whose COMMIT outcome was unknown does not log the same attempts twice.
//
// The cost of the rows really inserted is returned per batch (as exact
// numeric text); addSpentSQL adds it to batches.spent_usd in the same
// transaction, so that it stays sum(request_log.cost_usd) (budgets read it).
const insertLogSQL = `
WITH ins AS (
INSERT INTO request_log (batch_id, prompt_id, attempt, delivery, tier, model, outcome, http_status,
    error, input_tokens, output_tokens, cost_usd, latency_ms, estimated, started_at, worker_id, provider_batch_id)
SELECT batch_id, prompt_id, attempt, delivery, tier, model, outcome, http_status,
    error, input_tokens, output_tokens, cost_usd::numeric(18, 10), latency_ms, estimated, coalesce(started_at, now()), worker_id, provider_batch_id
FROM pg_temp.pc_stage_log
ORDER BY batch_id COLLATE "C", prompt_id COLLATE "C", delivery, attempt
ON CONFLICT DO NOTHING
RETURNING batch_id, cost_usd
)
SELECT batch_id, sum(cost_usd)::text FROM ins GROUP BY batch_id HAVING sum(cost_usd) <> 0 ORDER BY batch_id`

// addSpentSQL is the last statement of a Write before its COMMIT: every
// commit of a batch updates the same batches row, and a row lock is held
// until the transaction ends, so taking it last keeps concurrent commits of
// one batch (several committers, several workers) from waiting for each
// other's inserts; they wait only for each other's COMMIT. Rows in batch_id
// order, so that two commits of the same batches lock them in one order.
const addSpentSQL = `
UPDATE batches b SET spent_usd = b.spent_usd + s.cost::numeric
FROM (SELECT * FROM unnest($1::text[], $2::text[]) AS u(batch_id, cost) ORDER BY batch_id) s
WHERE b.batch_id = s.batch_id`

// The staged write computes results.cost_usd, attempts and usage_estimated
// from request_log (attemptsOfPromptSQL), this delivery's rows inserted just
// before included. Rows are inserted in key order (byte-wise, as the direct
// write sorts them) so that concurrent writers of overlapping keys wait for
// each other instead of deadlocking.
const insertResultsSQL = `
INSERT INTO results (batch_id, prompt_id, prompt, system, metadata, tier, word_count, token_count,
    complex_hits, moderate_hits, status, model_used, attempts, response, finish_reason,
    input_tokens, output_tokens, cost_usd, latency_ms, error, enqueued_at, completed_at, worker_id,
    prompt_sha256, prompt_chars, response_chars, usage_estimated, delivery, seq, max_tokens, router_score)
SELECT s.batch_id, s.prompt_id, s.prompt, s.system, s.metadata, s.tier, s.word_count, s.token_count,
    s.complex_hits, s.moderate_hits, s.status, s.model_used, l.n, s.response, s.finish_reason,
    s.input_tokens, s.output_tokens, l.cost, s.latency_ms, s.error, s.enqueued_at,
    coalesce(s.completed_at, now()), s.worker_id,
    s.prompt_sha256, s.prompt_chars, s.response_chars, l.estimated, s.delivery, s.seq, s.max_tokens, s.router_score
FROM pg_temp.pc_stage_results s
CROSS JOIN LATERAL (` + attemptsOfPromptSQL + `) l
ORDER BY s.batch_id COLLATE "C", s.prompt_id COLLATE "C"
ON CONFLICT (batch_id, prompt_id) DO NOTHING
RETURNING batch_id, prompt_id`

// Write stores a batch of finished deliveries in ONE transaction with a fixed
// number of round trips: for every r with r.Status != "" a results row
// (ON CONFLICT (batch_id, prompt_id) DO NOTHING), and for every r, final or
// transient (Status "": a nak'd delivery), its request_log rows. The rows are
// COPYed straight into results and request_log (the direct write, see
// write_fast.go); if one of them exists already (a lost race, a retry after
// an unknown commit outcome) that transaction is rolled back and a second one
// stores them through staging tables, skipping what exists.
//
// It returns, per input, whether its results row was newly inserted: false
// for transient inputs, for prompts whose row already existed, and for a
// second input of the same key in rs (the first one wins).
//
// results.cost_usd is the sum of request_log.cost_usd over every attempt of
// the prompt committed up to and including this transaction; attempts counts
// those rows; usage_estimated is true if any of them was estimated. Attempts
// logged later by a delivery that lost the race are in request_log only, so
// sum(request_log.cost_usd) - sum(results.cost_usd) is the money spent on
// duplicate work.
//
// An input is rejected (nothing is written) only for what cannot be a
// correct result: an empty batch or prompt id, an unknown status, a final
// result without a valid tier, a non-finite or negative cost, an attempt
// without a model or outcome.
//
// A succeeded input with a CacheKey (its answer came from a call while the
// response cache was on) keeps its answer in response_cache under that key,
// stored at its CompletedAt, in the same transaction (not with
// STORE_PROMPTS=false, which keeps no texts).
//
// A transient input with a Handoff (its cascade reached a batch-mode model)
// also records the prompt as a queued provider_batch_items row for that
// model, in the same transaction (ON CONFLICT DO NOTHING: a redelivered
// hand-off records nothing twice).
func (s *Store) Write(ctx context.Context, rs []prompt.Result) ([]bool, error) {
	return s.WriteTx(ctx, rs, nil)
}

// WriteTx is Write that also runs extra inside the transaction, after the
// rows are written and before the commit; an error from extra rolls
// everything back. The provider batch poller settles its items this way, in
// the transaction that stores their results.
func (s *Store) WriteTx(ctx context.Context, rs []prompt.Result, extra func(ctx context.Context, tx pgx.Tx) error) ([]bool, error) {
	w := &writeSet{rs: rs, first: make(map[Key]int, len(rs))}
	w.finals = make([]int, 0, len(rs)) // indexes into rs of the results rows to stage, first of each key
	for i := range rs {
		w.holds = append(w.holds, rs[i].BudgetHolds...)
		if err := validate(i, &rs[i]); err != nil {
			return nil, err
		}
		w.nlog += len(rs[i].Attempts)
		if rs[i].Status == "" {
			if rs[i].Handoff != nil {
				w.handoffs = append(w.handoffs, i)
			}
			if rs[i].Parked {
				if err := w.park.add(&rs[i]); err != nil {
					return nil, fmt.Errorf("store: write: input %d: %w", i, err)
				}
			}
			if len(rs[i].Attempts) > 0 {
				k := cleanKey(Key{rs[i].Job.BatchID, rs[i].Job.ID})
				w.unresolved[0], w.unresolved[1] = append(w.unresolved[0], k.BatchID), append(w.unresolved[1], k.PromptID)
			}
			continue
		}
		k := cleanKey(Key{rs[i].Job.BatchID, rs[i].Job.ID})
		if _, dup := w.first[k]; dup {
			continue
		}
		w.first[k] = i
		w.finals = append(w.finals, i)
	}
	if len(w.finals) == 0 && w.nlog == 0 && len(w.handoffs) == 0 && extra == nil && len(w.park.ids) == 0 && len(w.holds) == 0 {
		return make([]bool, len(rs)), nil
	}
	if plan, ok := newDirectPlan(rs, w.finals); ok && !s.stagedOnly {
		inserted, err := s.writeTx(ctx, w, plan, extra)
		if !errors.Is(err, errDirectConflict) {
			return inserted, err
		}
	}
	s.staged.Add(1)
	return s.writeTx(ctx, w, nil, extra)
}

// writeSet is what WriteTx makes of its inputs before any transaction.
type writeSet struct {
	rs         []prompt.Result
	finals     []int       // indexes into rs of the results rows, first of each key
	first      map[Key]int // cleaned key -> index into rs of its results row
	handoffs   []int
	nlog       int
	park       parkedRows
	holds      []int64
	unresolved [2][]string // batch and prompt ids of transient inputs with attempts
}

// writeTx is one transaction of WriteTx: the direct write of plan, or with
// a nil plan the staged write. A direct write that meets an existing row
// returns errDirectConflict (wrapped) before running extra.
func (s *Store) writeTx(ctx context.Context, w *writeSet, plan *directPlan, extra func(ctx context.Context, tx pgx.Tx) error) ([]bool, error) {
	rs, finals := w.rs, w.finals
	inserted := make([]bool, len(rs))
	b := &pgx.Batch{}
	pricedIDs, pricesQueued, err := s.queuePrices(ctx, b, batchIDs(rs, finals), rs[0].WorkerID)
	if err != nil {
		return nil, err
	}

	var conn *pgxpool.Conn
	if plan != nil {
		// The direct write needs no staging tables: a new connection does
		// not create them (120-240 ms of DDL under load) unless it falls back.
		conn, err = s.pool.Acquire(ctx)
	} else {
		conn, err = s.acquireStaged(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("store: write: %w", err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: write: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit

	var spentIDs, spentUSD []string // per batch, what the new request_log rows cost
	if plan != nil {
		if len(plan.logs) > 0 {
			if err := s.copyDirect(ctx, tx, directLogTable, &directLogRows{rs: rs, p: plan}); err != nil {
				if isDirectConflict(err) {
					return nil, fmt.Errorf("%w: %w", errDirectConflict, err)
				}
				return nil, fmt.Errorf("store: write: copy %d attempts: %w", len(plan.logs), err)
			}
		}
		if len(plan.finals) > 0 {
			if err := s.copyDirect(ctx, tx, directResultsTable, &directResultRows{rs: rs, p: plan, storePrompts: s.storePrompts}); err != nil {
				if isDirectConflict(err) {
					return nil, fmt.Errorf("%w: %w", errDirectConflict, err)
				}
				return nil, fmt.Errorf("store: write: copy %d results: %w", len(plan.finals), err)
			}
			for _, i := range finals {
				inserted[i] = true
			}
			k := resolveKeys(rs, finals)
			b.Queue(resolveSQL, k[0], k[1])
		}
		spentIDs, spentUSD = plan.spentRows()
	} else {
		if w.nlog > 0 {
			if _, err := tx.CopyFrom(ctx, stageLogTable, stageLogColumns, newLogSource(rs)); err != nil {
				return nil, fmt.Errorf("store: write: copy %d attempts: %w", w.nlog, err)
			}
			b.Queue(insertLogSQL)
		}
		if len(finals) > 0 {
			src := &resultSource{rs: rs, idx: finals, storePrompts: s.storePrompts, i: -1}
			if _, err := tx.CopyFrom(ctx, stageResultsTable, stageResultsColumns, src); err != nil {
				return nil, fmt.Errorf("store: write: copy %d results: %w", len(finals), err)
			}
			b.Queue(insertResultsSQL)
		}
	}
	if len(w.unresolved[0]) > 0 {
		b.Queue(insertUnresolvedSQL, w.unresolved[0], w.unresolved[1])
	}
	var cache *cacheRows
	if s.storePrompts {
		// Without stored texts there is no answer to keep either.
		cache = newCacheRows(rs, finals)
	}
	if cache != nil {
		cache.queue(b)
	}
	if len(w.park.ids) > 0 {
		b.Queue(insertParkedSQL, w.park.batches, w.park.ids, w.park.seqs, w.park.payloads)
	}
	if len(w.holds) > 0 {
		// The calls are logged (and spent_usd counts them): their budget
		// holds are released in the same transaction.
		b.Queue(`DELETE FROM budget_holds WHERE id = ANY($1)`, w.holds)
	}
	br := tx.SendBatch(ctx, b)
	if pricesQueued {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, fmt.Errorf("store: write: insert model_prices: %w", err)
		}
	}
	if plan != nil {
		if len(plan.finals) > 0 {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return nil, fmt.Errorf("store: write: results of earlier attempts: %w", err)
			}
		}
	} else {
		if err := readStaged(br, w, inserted, &spentIDs, &spentUSD); err != nil {
			br.Close()
			return nil, err
		}
	}
	if len(w.unresolved[0]) > 0 {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, fmt.Errorf("store: write: record unresolved attempts: %w", err)
		}
	}
	if cache != nil {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, fmt.Errorf("store: write: response cache: %w", err)
		}
	}
	if len(w.park.ids) > 0 {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, fmt.Errorf("store: write: park %d message(s): %w", len(w.park.ids), err)
		}
	}
	if len(w.holds) > 0 {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, fmt.Errorf("store: write: release %d budget hold(s): %w", len(w.holds), err)
		}
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("store: write: %w", err)
	}
	if plan == nil && slices.Contains(inserted, true) {
		var ins []int
		for i, ok := range inserted {
			if ok {
				ins = append(ins, i)
			}
		}
		// The staged insert counted every earlier attempt already: this only
		// takes its prompts out of unresolved_attempts.
		k := resolveKeys(rs, ins)
		if _, err := tx.Exec(ctx, resolveSQL, k[0], k[1]); err != nil {
			return nil, fmt.Errorf("store: write: results of earlier attempts: %w", err)
		}
	}
	if len(w.handoffs) > 0 {
		if err := insertHandoffs(ctx, tx, rs, w.handoffs); err != nil {
			return nil, err
		}
	}
	if ls := s.shadowLabels(rs, inserted); len(ls) > 0 {
		if _, err := insertLabels(ctx, tx, ls); err != nil {
			return nil, fmt.Errorf("store: write: %w", err)
		}
	}
	if extra != nil {
		if err := extra(ctx, tx); err != nil {
			return nil, err
		}
	}
	if len(spentIDs) > 0 {
		if _, err := tx.Exec(ctx, addSpentSQL, spentIDs, spentUSD); err != nil {
			return nil, fmt.Errorf("store: write: add to batches.spent_usd: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("store: write: commit: %w", err)
	}
	s.markPriced(pricedIDs)
	return inserted, nil
}

// readStaged reads the staged inserts' results from br: the per-batch cost
// of the request_log rows inserted, and which results rows were.
func readStaged(br pgx.BatchResults, w *writeSet, inserted []bool, spentIDs, spentUSD *[]string) error {
	if w.nlog > 0 {
		rows, err := br.Query()
		if err == nil {
			var id, usd string
			_, err = pgx.ForEachRow(rows, []any{&id, &usd}, func() error {
				*spentIDs, *spentUSD = append(*spentIDs, id), append(*spentUSD, usd)
				return nil
			})
		}
		if err != nil {
			return fmt.Errorf("store: write: insert request_log: %w", err)
		}
	}
	if len(w.finals) > 0 {
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("store: write: insert results: %w", err)
		}
		var k Key
		for rows.Next() {
			if err := rows.Scan(&k.BatchID, &k.PromptID); err != nil {
				rows.Close()
				return fmt.Errorf("store: write: insert results: %w", err)
			}
			if i, ok := w.first[k]; ok {
				inserted[i] = true
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: write: insert results: %w", err)
		}
	}
	return nil
}

// resolveKeys are the cleaned keys of rs[idx] as resolveSQL takes them.
func resolveKeys(rs []prompt.Result, idx []int) [2][]string {
	var k [2][]string
	for _, i := range idx {
		c := cleanKey(Key{rs[i].Job.BatchID, rs[i].Job.ID})
		k[0], k[1] = append(k[0], c.BatchID), append(k[1], c.PromptID)
	}
	return k
}

// batchIDs returns the distinct cleaned batch ids of the final results
// rs[finals] (prices are recorded with a batch's first results rows).
func batchIDs(rs []prompt.Result, finals []int) []string {
	var ids []string
	for _, i := range finals {
		id := clean(rs[i].Job.BatchID)
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// A message parked twice (a redelivery) keeps its first copy; a prompt
// answered meanwhile is skipped by the worker that takes it after resume.
const insertParkedSQL = `
INSERT INTO batch_parked (batch_id, prompt_id, seq, payload)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[])
ON CONFLICT (batch_id, prompt_id) DO NOTHING`

// parkedRows are the batch_parked rows of one Write, as arrays.
type parkedRows struct {
	batches, ids []string
	seqs         []*int64
	payloads     [][]byte
}

// add stages r's row: the message body as enqueue publishes it, or, for a
// message kept in the stream (ParkedInStream), an empty payload: the id
// only, no text.
func (p *parkedRows) add(r *prompt.Result) error {
	payload := []byte{}
	if !r.ParkedInStream {
		var err error
		if payload, err = json.Marshal(r.Job); err != nil {
			return fmt.Errorf("park: %w", err)
		}
	}
	k := cleanKey(Key{r.Job.BatchID, r.Job.ID})
	var seq *int64
	if r.Job.Seq > 0 {
		seq = &r.Job.Seq
	}
	p.batches, p.ids = append(p.batches, k.BatchID), append(p.ids, k.PromptID)
	p.seqs, p.payloads = append(p.seqs, seq), append(p.payloads, payload)
	return nil
}

// shadowLabels are the labels rows of the shadow verdicts of newly inserted
// results (a delivery that lost the race keeps its verdict out, as it keeps
// its answer out).
func (s *Store) shadowLabels(rs []prompt.Result, inserted []bool) []Label {
	var ls []Label
	for i := range rs {
		sh := rs[i].Shadow
		if sh == nil || !inserted[i] {
			continue
		}
		r := &rs[i]
		l := Label{Source: LabelShadow, Dataset: r.Job.BatchID, ItemID: r.Job.ID, BatchID: r.Job.BatchID, PromptID: r.Job.ID,
			Model: sh.Model, Correct: sh.AsGood, Reference: sh.Reference, Judge: sh.Judge, sha: sha256.Sum256([]byte(r.Job.Prompt))}
		if s.storePrompts {
			l.Prompt = r.Job.Prompt
		}
		ls = append(ls, l)
	}
	return ls
}

// validate rejects what cannot be stored as a correct result, naming the
// input's index, key and field.
func validate(i int, r *prompt.Result) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("store: write: input %d (batch %q, prompt %q): %s",
			i, r.Job.BatchID, r.Job.ID, fmt.Sprintf(format, args...))
	}
	if clean(r.Job.BatchID) == "" {
		return bad("empty batch id")
	}
	if clean(r.Job.ID) == "" {
		return bad("empty prompt id")
	}
	switch r.Status {
	case "":
		if r.Tier != "" && !r.Tier.Valid() {
			return bad("unknown tier %q", r.Tier)
		}
	case prompt.StatusSucceeded, prompt.StatusFailed:
		if !r.Tier.Valid() {
			return bad("tier %q is not one of simple, moderate, complex", r.Tier)
		}
	default:
		return bad("unknown status %q (want succeeded, failed, or empty for a transient delivery)", r.Status)
	}
	if r.Latency < 0 {
		return bad("latency %v is negative", r.Latency)
	}
	if r.Job.MaxTokens < 0 || r.Job.MaxTokens > math.MaxInt32 {
		return bad("max_tokens %d is out of range", r.Job.MaxTokens)
	}
	if !fitInt32(r.Delivery, r.InputTokens, r.OutputTokens, r.Signals.WordCount, r.Signals.TokenCount,
		r.Signals.ComplexHits, r.Signals.ModerateHits) {
		return bad("delivery, token or signal count out of int32 range")
	}
	for j := range r.Attempts {
		a := &r.Attempts[j]
		if a.Model == "" {
			return bad("attempt %d: empty model", j)
		}
		if a.Outcome == "" {
			return bad("attempt %d: empty outcome", j)
		}
		if badNumber(a.CostUSD) {
			return bad("attempt %d: cost %v is not a finite number >= 0", j, a.CostUSD)
		}
		if a.CostUSD >= 1e8 {
			return bad("attempt %d: cost %v is out of range", j, a.CostUSD)
		}
		if a.Latency < 0 {
			return bad("attempt %d: latency %v is negative", j, a.Latency)
		}
		if !fitInt32(a.Attempt, a.HTTPStatus, a.InputTokens, a.OutputTokens) {
			return bad("attempt %d: attempt number, HTTP status or token count out of int32 range", j)
		}
	}
	return nil
}

// fitInt32 reports whether every value fits an integer column.
func fitInt32(vs ...int) bool {
	for _, v := range vs {
		if v < math.MinInt32 || v > math.MaxInt32 {
			return false
		}
	}
	return true
}

func badNumber(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) || f < 0 }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func nullInt64(n int64) any {
	if n <= 0 {
		return nil
	}
	return n
}

func nullInt(n int) any {
	if n == 0 {
		return nil
	}
	return n
}

// resultSource feeds the staged results rows to COPY.
type resultSource struct {
	rs           []prompt.Result
	idx          []int
	storePrompts bool
	i            int
	row          [28]any
}

func (s *resultSource) Next() bool { s.i++; return s.i < len(s.idx) }
func (s *resultSource) Err() error { return nil }

func (s *resultSource) Values() ([]any, error) {
	r := &s.rs[s.idx[s.i]]
	sum := sha256.Sum256([]byte(r.Job.Prompt))
	var text, system, response any
	if s.storePrompts {
		text, system, response = clean(r.Job.Prompt), nullText(r.Job.System), nullText(r.Response)
	}
	var score any
	if r.Signals.Scored {
		score = r.Signals.Score
	}
	s.row = [28]any{
		clean(r.Job.BatchID), clean(r.Job.ID), text, system, metadataValue(r.Job.Metadata),
		string(r.Tier), r.Signals.WordCount, r.Signals.TokenCount, r.Signals.ComplexHits, r.Signals.ModerateHits,
		string(r.Status), nullText(r.ModelUsed), response, nullText(r.FinishReason),
		r.InputTokens, r.OutputTokens, ms(r.Latency), nullText(r.Error),
		nullTime(r.Job.EnqueuedAt), nullTime(r.CompletedAt), nullText(r.WorkerID),
		sum[:], utf8.RuneCountInString(r.Job.Prompt), utf8.RuneCountInString(r.Response), r.Delivery,
		nullInt64(r.Job.Seq), nullInt(r.Job.MaxTokens), score,
	}
	return s.row[:], nil
}

// logSource feeds every attempt of every input to COPY.
type logSource struct {
	rs   []prompt.Result
	i, j int
	row  [17]any
	key  Key // cleaned key of rs[i]
}

func newLogSource(rs []prompt.Result) *logSource { return &logSource{rs: rs, i: 0, j: -1} }

func (s *logSource) Next() bool {
	s.j++
	for s.i < len(s.rs) && s.j >= len(s.rs[s.i].Attempts) {
		s.i++
		s.j = 0
	}
	if s.i >= len(s.rs) {
		return false
	}
	if s.j == 0 {
		s.key = cleanKey(Key{s.rs[s.i].Job.BatchID, s.rs[s.i].Job.ID})
	}
	return true
}

func (s *logSource) Err() error { return nil }

func (s *logSource) Values() ([]any, error) {
	r := &s.rs[s.i]
	a := &r.Attempts[s.j]
	var tier any
	if r.Tier != "" {
		tier = string(r.Tier)
	}
	s.row = [17]any{
		s.key.BatchID, s.key.PromptID, a.Attempt, r.Delivery, tier, clean(a.Model),
		clean(string(a.Outcome)), nullInt(a.HTTPStatus), nullText(a.Error), a.InputTokens, a.OutputTokens,
		a.CostUSD, ms(a.Latency), a.Estimated, nullTime(a.StartedAt), nullText(r.WorkerID), nullText(a.ProviderBatch),
	}
	return s.row[:], nil
}

// metadataValue returns metadata as storable jsonb, or nil for none. JSON
// that Postgres' jsonb could reject (a \u0000 or lone-surrogate escape,
// invalid UTF-8) is decoded and re-encoded by Go, which drops NUL characters
// from strings and replaces invalid characters with U+FFFD; text that is not
// JSON at all is stored as a JSON string of its cleaned text.
func metadataValue(m json.RawMessage) any {
	if b := metadataJSON(m); b != nil {
		return b
	}
	return nil
}

// metadataJSON is metadataValue as JSON text, nil for none.
func metadataJSON(m json.RawMessage) []byte {
	if len(m) == 0 || string(m) == "null" {
		return nil
	}
	if !bytes.Contains(m, []byte(`\u`)) && utf8.Valid(m) && json.Valid(m) {
		return []byte(m)
	}
	dec := json.NewDecoder(bytes.NewReader(m))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return jsonString(clean(string(m)))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(stripNUL(v)); err != nil {
		return jsonString(clean(string(m)))
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

func jsonString(s string) []byte {
	b, _ := json.Marshal(s) // a string always encodes
	return b
}

func stripNUL(v any) any {
	switch x := v.(type) {
	case string:
		return clean(x)
	case []any:
		for i := range x {
			x[i] = stripNUL(x[i])
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[clean(k)] = stripNUL(e)
		}
		return out
	default:
		return v
	}
}
