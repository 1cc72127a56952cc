package providerbatch

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

// Item states (provider_batch_items.state).
const (
	StateQueued     = "queued"      // waiting for the model's next provider batch
	StateSubmitted  = "submitted"   // in a provider batch
	StateDone       = "done"        // settled: results row, or an item of the next batch-mode model, committed
	StateHandingOff = "handing_off" // to be republished for a synchronous model
	StateHandedOff  = "handed_off"  // republished; the workers have it
)

// plan is how one item is settled.
type plan struct {
	result  prompt.Result // written with the item's new state
	state   string
	outcome prompt.Outcome
	before  int    // attempts logged so far, for a requeued or handed-back item
	job     []byte // the job to keep (JSON), for a handed-back item
}

// judge decides what an item's result means: an answer that passes the
// gate is stored; anything else moves the prompt on to the next model of
// its tier (a batch-mode model: a new item in the same transaction; a
// synchronous one: republished with Resume), or, past the last model,
// tries the same model again for a transient outcome (up to MaxRounds
// batches), else stores a failure.
func (r *Runner) judge(m *Model, it item, res llm.BatchResult, pid string, now time.Time) plan {
	a := prompt.Attempt{Attempt: it.before + 1, Model: m.Name, StartedAt: it.submitted, ProviderBatch: pid}
	if !it.submitted.IsZero() {
		a.Latency = max(now.Sub(it.submitted), 0)
	}
	price := m.Price.Batch()
	switch res.State {
	case llm.ItemSucceeded:
		rp := res.Response
		a.InputTokens, a.OutputTokens, a.Estimated, a.HTTPStatus = rp.InputTokens, rp.OutputTokens, rp.UsageEstimated, rp.HTTPStatus
		a.CostUSD = price.Cost(pricing.Usage{InputTokens: rp.InputTokens, OutputTokens: rp.OutputTokens,
			CacheReadTokens: rp.CacheReadTokens, CacheWriteTokens: rp.CacheWriteTokens})
		if res.Err != nil {
			a.Outcome, a.Error = res.Err.Class, errText(res.Err)
		} else {
			a.Outcome, a.Error = r.cas.Gate(it.job.Prompt, rp.Text)
		}
	case llm.ItemErrored:
		e := res.Err
		if e == nil {
			e = &llm.Error{Class: llm.ClassServerError, Message: "errored without a reason"}
		}
		if e.Class == "" {
			e.Class = llm.ClassServerError
		}
		a.Outcome, a.HTTPStatus, a.Error = e.Class, e.HTTPStatus, errText(e)
	case llm.ItemCanceled:
		a.Outcome, a.Error = prompt.OutcomeBatchCanceled, "the provider batch was cancelled before this request ran"
	default:
		a.Outcome, a.Error = prompt.OutcomeBatchExpired, "the provider batch ended without running this request"
	}

	res0 := prompt.Result{Job: it.job, Tier: it.tier, Signals: it.sig, Delivery: it.delivery,
		WorkerID: r.cfg.WorkerID, CompletedAt: now, CostUSD: a.CostUSD}
	if it.hold != nil {
		res0.BudgetHolds = []int64{*it.hold}
	}
	if it.canceled {
		// Its batch was canceled while the provider batch ran: the attempt
		// is logged with what the provider billed, and nothing else is
		// written (no results row, no next model).
		if a.Outcome == prompt.OutcomeOK || res.State == llm.ItemSucceeded {
			a.Outcome, a.Error = prompt.OutcomeCanceled, "batch "+it.job.BatchID+" was canceled: the answer was not stored"
		}
		res0.Attempts = []prompt.Attempt{a}
		return plan{result: res0, outcome: prompt.OutcomeCanceled, state: StateDone}
	}
	res0.Attempts = []prompt.Attempt{a}
	p := plan{result: res0, outcome: a.Outcome, state: StateDone}
	if a.Outcome == prompt.OutcomeOK {
		rp := res.Response
		p.result.Status = prompt.StatusSucceeded
		p.result.ModelUsed, p.result.Response, p.result.FinishReason = m.Name, rp.Text, rp.FinishReason
		p.result.InputTokens, p.result.OutputTokens = rp.InputTokens, rp.OutputTokens
		p.result.Latency = max(now.Sub(it.queuedAt), 0)
		return p
	}
	next, batch, ok := r.cas.Step(it.tier, it.position+1)
	switch {
	case ok && batch:
		p.result.Handoff = &prompt.Handoff{Model: next, Position: it.position + 1}
	case ok:
		job := it.job
		job.Resume = &prompt.Resume{Tier: it.tier, Position: it.position + 1, Attempts: a.Attempt}
		b, _ := json.Marshal(job) // a job decoded from JSON encodes again
		p.state, p.job, p.before = StateHandingOff, b, a.Attempt
	case transient(a.Outcome) && it.rounds < r.cfg.MaxRounds:
		p.state, p.before = StateQueued, a.Attempt
	default:
		p.result.Status = prompt.StatusFailed
		p.result.ModelUsed = m.Name
		p.result.Error = m.Name + ": " + string(a.Outcome)
		p.result.Latency = max(now.Sub(it.queuedAt), 0)
	}
	return p
}

func transient(o prompt.Outcome) bool {
	return o == prompt.OutcomeBatchExpired || o == prompt.OutcomeBatchCanceled || o.Retryable()
}

// errText is an error's message for request_log.error: the provider's
// message (adapters have removed secrets), at most 200 bytes.
func errText(e *llm.Error) string {
	s := e.Message
	if s == "" {
		s = string(e.Class)
	}
	if e.RequestID != "" {
		s += " [request " + e.RequestID + "]"
	}
	if len(s) > 200 {
		cut := 199
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

const settleSQL = `
UPDATE provider_batch_items i SET
    state = u.state,
    outcome = u.outcome,
    attempts_before = CASE WHEN u.state IN ('queued', 'handing_off') THEN u.before ELSE i.attempts_before END,
    job = CASE WHEN u.state = 'done' THEN NULL WHEN u.job <> '' THEN u.job::jsonb ELSE i.job END,
    provider_batch = CASE WHEN u.state = 'queued' THEN NULL ELSE i.provider_batch END,
    custom_id = CASE WHEN u.state = 'queued' THEN NULL ELSE i.custom_id END,
    queued_at = CASE WHEN u.state = 'queued' THEN now() ELSE i.queued_at END,
    budget_hold = NULL, -- released by the same transaction
    updated_at = now()
FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::integer[], $8::text[]) AS u(batch_id, prompt_id, state, outcome, before, job)
WHERE i.batch_id = u.batch_id AND i.prompt_id = u.prompt_id AND i.model = $1
  AND i.provider_batch = $2 AND i.state = 'submitted'`

// commit writes the plans' results and attempts and the items' new states
// in one transaction. Every item must still be 'submitted' in this batch;
// otherwise nothing is written (another ingest settled them).
func (r *Runner) commit(ctx context.Context, m *Model, pb int64, plans []plan) error {
	n := len(plans)
	rs := make([]prompt.Result, n)
	bid, pid, st, out, jobs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	before := make([]int32, n)
	for i, p := range plans {
		rs[i] = p.result
		bid[i], pid[i], st[i], out[i], jobs[i] = p.result.Job.BatchID, p.result.Job.ID, p.state, string(p.outcome), string(p.job)
		before[i] = int32(p.before)
	}
	_, err := r.writer.WriteTx(ctx, rs, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, settleSQL, m.Name, pb, bid, pid, st, out, before, jobs)
		if err != nil {
			return fmt.Errorf("settle items: %w", err)
		}
		if int(tag.RowsAffected()) != n {
			return errLostRace
		}
		return nil
	})
	return err
}

// handBack republishes the items waiting in state 'handing_off' (their next
// model is synchronous) and marks each handed off once the stream has it.
// A crash in between republishes it again: the message id (batch/id plus
// the resume position) lets JetStream drop the repeat within its duplicate
// window, and a worker acks a prompt that already has a result without a
// call.
func (r *Runner) handBack(ctx context.Context, m *Model) error {
	// Not those of a canceled batch: the next step settles them.
	rows, err := r.pool.Query(ctx, `SELECT i.batch_id, i.prompt_id, i.job FROM provider_batch_items i LEFT JOIN batches b USING (batch_id)
		WHERE i.model = $1 AND i.state = 'handing_off' AND coalesce(b.state, 'running') <> 'canceled'
		ORDER BY i.updated_at LIMIT 2000`, m.Name)
	if err != nil {
		return err
	}
	type back struct {
		batch, id string
		job       prompt.Job
	}
	backs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (back, error) {
		var b back
		return b, row.Scan(&b.batch, &b.id, &b.job)
	})
	if err != nil {
		return err
	}
	if len(backs) > 0 && r.pub == nil {
		return fmt.Errorf("%d prompts wait to be handed back to the queue, but this runner has no publisher", len(backs))
	}
	for _, b := range backs {
		if err := r.pub.PublishJob(ctx, b.job); err != nil {
			return err
		}
		if _, err := r.pool.Exec(ctx, `UPDATE provider_batch_items SET state = 'handed_off', job = NULL, updated_at = now()
			WHERE batch_id = $1 AND prompt_id = $2 AND model = $3 AND state = 'handing_off'`, b.batch, b.id, m.Name); err != nil {
			return err
		}
	}
	return nil
}
