package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// BatchState is batches.state: whether workers may spend on a batch.
type BatchState string

// Batch states.
const (
	BatchRunning  BatchState = "running"  // worked
	BatchPaused   BatchState = "paused"   // messages set aside (batch_parked), no model called
	BatchCanceled BatchState = "canceled" // messages dropped, unanswered prompts canceled
)

// ControlMaxAge is the contract between batch state changes and workers: a
// worker never starts a model call on a batch state read (BatchControls)
// longer ago than this. A command that changes a state and then waits
// ControlSettle knows that no worker starts a call under the old state.
const (
	ControlMaxAge = time.Second
	ControlSettle = ControlMaxAge + 500*time.Millisecond
)

// ErrUnknownBatch is returned (wrapped) for a batch id with no batches row.
var ErrUnknownBatch = errors.New("unknown batch")

// Control is one batch's state as the workers see it.
type Control struct {
	State    BatchState
	Reason   string // why it is not running (empty when running, or set by hand)
	Budgeted bool   // the batch has a budget: every call reserves its estimated cost first (Reserve)
	Routes   []byte // sha256 of the batch's own routes (Routes); nil: the worker's ROUTES_FILE
}

// BatchControls returns the state of every batch that is not running, has
// a budget or routes of its own, in one small query: what a worker needs to decide, before a
// model call, whether the call may go ahead (a batch absent from the map
// runs without a budget).
func (s *Store) BatchControls(ctx context.Context) (map[string]Control, error) {
	rows, err := s.pool.Query(ctx, `SELECT batch_id, state, coalesce(state_reason, ''), budget_usd IS NOT NULL, routes_sha256
		FROM batches WHERE state <> 'running' OR budget_usd IS NOT NULL OR routes_sha256 IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("store: batch states: %w", err)
	}
	defer rows.Close()
	out := map[string]Control{}
	for rows.Next() {
		var id string
		var c Control
		if err := rows.Scan(&id, &c.State, &c.Reason, &c.Budgeted, &c.Routes); err != nil {
			return nil, fmt.Errorf("store: batch states: %w", err)
		}
		out[id] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: batch states: %w", err)
	}
	return out, nil
}

// SetBatchState moves batchID to state with reason and returns the state it
// had. A canceled batch stays canceled (an error says so); setting the state
// it already has only updates the reason.
func (s *Store) SetBatchState(ctx context.Context, batchID string, state BatchState, reason string) (BatchState, error) {
	b := clean(batchID)
	var prev BatchState
	err := s.pool.QueryRow(ctx, `
		WITH old AS (SELECT state FROM batches WHERE batch_id = $1 FOR UPDATE)
		UPDATE batches SET state = CASE WHEN batches.state = 'canceled' THEN batches.state ELSE $2 END,
			state_reason = CASE WHEN batches.state = 'canceled' THEN batches.state_reason ELSE nullif($3, '') END,
			state_changed_at = CASE WHEN batches.state = $2 THEN batches.state_changed_at ELSE now() END,
			updated_at = now()
		FROM old WHERE batch_id = $1
		RETURNING old.state`, b, string(state), clean(reason)).Scan(&prev)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("store: batch %q: %w", batchID, ErrUnknownBatch)
	}
	if err != nil {
		return "", fmt.Errorf("store: set state of batch %q: %w", batchID, err)
	}
	if prev == BatchCanceled && state != BatchCanceled {
		return prev, fmt.Errorf("store: batch %q is canceled; it cannot be %s", batchID, state)
	}
	return prev, nil
}

// CancelBatch marks batchID canceled, marks its prompts without a result
// canceled (batch_prompts.canceled_at) and drops its parked messages, in one
// transaction. It returns how many prompts it marked.
func (s *Store) CancelBatch(ctx context.Context, batchID, reason string) (int64, error) {
	b := clean(batchID)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: cancel %q: begin: %w", batchID, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	tag, err := tx.Exec(ctx, `UPDATE batches SET state = 'canceled', state_reason = nullif($2, ''),
		state_changed_at = CASE WHEN state = 'canceled' THEN state_changed_at ELSE now() END, updated_at = now()
		WHERE batch_id = $1`, b, clean(reason))
	if err != nil {
		return 0, fmt.Errorf("store: cancel %q: %w", batchID, err)
	}
	if tag.RowsAffected() == 0 {
		return 0, fmt.Errorf("store: batch %q: %w", batchID, ErrUnknownBatch)
	}
	tag, err = tx.Exec(ctx, `UPDATE batch_prompts p SET canceled_at = now()
		WHERE p.batch_id = $1 AND p.canceled_at IS NULL
		AND NOT EXISTS (SELECT 1 FROM results r WHERE r.batch_id = p.batch_id AND r.prompt_id = p.prompt_id)`, b)
	if err != nil {
		return 0, fmt.Errorf("store: cancel %q: mark prompts: %w", batchID, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM batch_parked WHERE batch_id = $1`, b); err != nil {
		return 0, fmt.Errorf("store: cancel %q: drop parked messages: %w", batchID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("store: cancel %q: commit: %w", batchID, err)
	}
	return tag.RowsAffected(), nil
}

// Parked is a message a worker set aside because its batch was paused.
type Parked struct {
	PromptID string
	Payload  []byte
	ParkedAt time.Time
}

// ParkedMessages returns the first limit parked messages of batchID kept
// in Postgres, in input order then id. Those kept in the stream (an empty
// payload: prompt.Result.ParkedInStream) are not among them; see
// ParkedInStream.
func (s *Store) ParkedMessages(ctx context.Context, batchID string, limit int) ([]Parked, error) {
	rows, err := s.pool.Query(ctx, `SELECT prompt_id, payload, parked_at FROM batch_parked
		WHERE batch_id = $1 AND octet_length(payload) > 0 ORDER BY seq NULLS LAST, prompt_id LIMIT $2`, clean(batchID), limit)
	if err != nil {
		return nil, fmt.Errorf("store: parked messages of %q: %w", batchID, err)
	}
	ps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Parked, error) {
		var p Parked
		err := row.Scan(&p.PromptID, &p.Payload, &p.ParkedAt)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: parked messages of %q: %w", batchID, err)
	}
	return ps, nil
}

// ParkedInStream counts batchID's parked prompts whose message is kept in
// the stream (queue.ParkedSubject), with only their id in batch_parked.
// Rows of prompts answered meanwhile (a parked copy republished by a
// resume that ran while its worker was still committing the row) are
// dropped first: nothing of theirs waits any more.
func (s *Store) ParkedInStream(ctx context.Context, batchID string) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `
		WITH answered AS (
			DELETE FROM batch_parked p WHERE p.batch_id = $1 AND octet_length(p.payload) = 0
				AND EXISTS (SELECT 1 FROM results r WHERE r.batch_id = p.batch_id AND r.prompt_id = p.prompt_id)
			RETURNING p.prompt_id
		)
		SELECT count(*) FROM batch_parked WHERE batch_id = $1 AND octet_length(payload) = 0
			AND prompt_id NOT IN (SELECT prompt_id FROM answered)`,
		clean(batchID)).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: parked messages of %q: %w", batchID, err)
	}
	return n, nil
}

// Unpark deletes the parked messages of batchID with the given prompt ids
// (once they are back on the queue).
func (s *Store) Unpark(ctx context.Context, batchID string, ids []string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM batch_parked WHERE batch_id = $1 AND prompt_id = ANY($2)`, clean(batchID), ids); err != nil {
		return fmt.Errorf("store: unpark %d message(s) of %q: %w", len(ids), batchID, err)
	}
	return nil
}

// HoldExpiry is how long a budget hold counts: longer than any call runs
// (a model's timeout times its retries), so only the holds of a worker that
// died before its commit expire.
const HoldExpiry = 15 * time.Minute

// Hold is a request to set money aside before a model call.
type Hold struct {
	BatchID, PromptID, WorkerID string
	AmountUSD                   float64 // the call's estimated cost
}

// Reserve sets h.AmountUSD aside for a call of h.BatchID when the batch's
// spend (spent_usd: every logged call) plus what is already held for calls
// not yet logged plus h.AmountUSD stays within its budget, and returns the
// hold's id (release it with the Result that logs the call, BudgetHolds).
// Otherwise it returns ok false and pauses the batch, saying why in its
// state_reason, in the same statement. A batch without a budget always gets
// a hold. Reservations of one batch are serialized on its batches row.
func (s *Store) Reserve(ctx context.Context, h Hold) (id int64, ok bool, err error) {
	if badNumber(h.AmountUSD) {
		return 0, false, fmt.Errorf("store: reserve for %q: amount %v is not a finite number >= 0", h.BatchID, h.AmountUSD)
	}
	var hid *int64
	err = s.pool.QueryRow(ctx, `
		WITH b AS (
			SELECT budget_usd, spent_usd FROM batches WHERE batch_id = $1 FOR UPDATE
		), h AS (
			SELECT coalesce(sum(amount_usd), 0) AS held FROM budget_holds
			WHERE batch_id = $1 AND created_at > now() - $5::interval
		), ins AS (
			INSERT INTO budget_holds (batch_id, prompt_id, worker_id, amount_usd)
			SELECT $1, $2, nullif($3, ''), $4::numeric(18, 10) FROM b, h
			WHERE b.budget_usd IS NULL OR b.spent_usd + h.held + $4::numeric(18, 10) <= b.budget_usd
			RETURNING id
		), pause AS (
			UPDATE batches SET state = 'paused', state_changed_at = now(), updated_at = now(),
				state_reason = format('budget $%s reached: $%s spent, $%s held for calls in flight; raise it with cascadectl budget %s AMOUNT',
					round(b.budget_usd, 6), round(b.spent_usd, 6), round(h.held, 6), $1::text)
			FROM b, h
			WHERE batches.batch_id = $1 AND batches.state = 'running' AND NOT EXISTS (SELECT 1 FROM ins)
			RETURNING 1
		)
		SELECT (SELECT id FROM ins) FROM b, h LEFT JOIN (SELECT count(*) FROM pause) p ON true`,
		clean(h.BatchID), clean(h.PromptID), clean(h.WorkerID), h.AmountUSD, HoldExpiry.String()).Scan(&hid)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, fmt.Errorf("store: reserve: batch %q: %w", h.BatchID, ErrUnknownBatch)
	}
	if err != nil {
		return 0, false, fmt.Errorf("store: reserve for %q: %w", h.BatchID, err)
	}
	if hid == nil {
		return 0, false, nil
	}
	return *hid, true, nil
}

// Budget is a batch's cap and what counts against it.
type Budget struct {
	BudgetUSD *float64 // nil: none
	SpentUSD  float64  // every logged call
	HeldUSD   float64  // set aside for calls not yet logged
	State     BatchState
	Reason    string
}

// SetBudget sets batchID's budget (nil removes it) and returns the budget
// as it then stands. A batch the budget had paused runs again when the new
// budget leaves room (spent + held below it); the caller then republishes
// its parked messages (resumed is true).
func (s *Store) SetBudget(ctx context.Context, batchID string, usd *float64) (b Budget, resumed bool, err error) {
	if usd != nil && badNumber(*usd) {
		return b, false, fmt.Errorf("store: budget of %q: %v is not a finite number >= 0", batchID, *usd)
	}
	id := clean(batchID)
	var old BatchState
	err = s.pool.QueryRow(ctx, `
		WITH b AS (
			SELECT batch_id FROM batches WHERE batch_id = $1 FOR UPDATE
		), h AS (
			SELECT coalesce(sum(amount_usd), 0) AS held FROM budget_holds
			WHERE batch_id = $1 AND created_at > now() - $3::interval
		), upd AS (
			UPDATE batches SET budget_usd = $2::numeric(18, 10), updated_at = now(),
				state = CASE WHEN state = 'paused' AND state_reason LIKE 'budget %'
					AND ($2 IS NULL OR spent_usd + h.held < $2::numeric(18, 10)) THEN 'running' ELSE state END,
				state_reason = CASE WHEN state = 'paused' AND state_reason LIKE 'budget %'
					AND ($2 IS NULL OR spent_usd + h.held < $2::numeric(18, 10)) THEN NULL ELSE state_reason END,
				state_changed_at = CASE WHEN state = 'paused' AND state_reason LIKE 'budget %'
					AND ($2 IS NULL OR spent_usd + h.held < $2::numeric(18, 10)) THEN now() ELSE state_changed_at END
			FROM b, h WHERE batches.batch_id = b.batch_id
			RETURNING budget_usd::float8, spent_usd::float8, h.held::float8, state, coalesce(state_reason, ''),
				(SELECT state FROM batches o WHERE o.batch_id = $1) AS old_state
		)
		SELECT * FROM upd`, id, usd, HoldExpiry.String()).Scan(&b.BudgetUSD, &b.SpentUSD, &b.HeldUSD, &b.State, &b.Reason, &old)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, false, fmt.Errorf("store: batch %q: %w", batchID, ErrUnknownBatch)
	}
	if err != nil {
		return b, false, fmt.Errorf("store: budget of %q: %w", batchID, err)
	}
	return b, old == BatchPaused && b.State == BatchRunning, nil
}

// ParseUSD reads a budget amount in USD ("25.00", "$25"), as enqueue
// --budget and cascadectl budget take it.
func ParseUSD(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimPrefix(s, "$"), 64)
	if err != nil || badNumber(v) {
		return 0, fmt.Errorf("%q: want an amount in USD like 25.00", s)
	}
	return v, nil
}
