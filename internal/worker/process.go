package worker

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/promptcascade/promptcascade/internal/backoff"
	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/estimate"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/store"
)

// task is one delivery on its way through the worker.
type task struct {
	d      Delivery
	job    prompt.Job        // set when its work starts (process)
	result *prompt.Result    // set when the cascade finished (&res, mostly)
	final  bool              // result is stored as a results row (ack after commit)
	nakIn  time.Duration     // delay for a nak after commit of the attempts
	dead   *store.DeadLetter // set for poison messages (term after commit)

	// suspect is set when this worker may have lost the delivery to another
	// worker (its heartbeats stopped for longer than AckWait: the process
	// was paused or starved); before each further model call it checks that
	// the prompt is still unanswered.
	suspect atomic.Bool
	// answered: another worker committed the prompt while this delivery ran;
	// its attempts are logged, then the message is acked.
	answered bool
	// parked: the batch is paused; the job is kept in Postgres (with the
	// attempts made before the pause), then the message is acked.
	// canceled: the batch is canceled; attempts are logged, then acked.
	parked, canceled bool
	// holds are the budget holds taken before this delivery's calls
	// (released by the commit that logs them).
	holds []int64
	// slot: the task holds one of the worker's slots (its work started).
	slot bool
	// load counts the prompt in flight or waiting for its batch (load.go).
	load *batchLoad
	// key is set while the task is the delivery this worker works for its
	// prompt (trackWorking); followers are redeliveries of its message
	// that came meanwhile, settled with it. Both are guarded by hbMu.
	key       store.Key
	followers []*task
	// acked: the task was settled with an ack after its commit.
	acked bool
	// keyed: key is set (trackWorking).
	keyed bool
	// untracked: untrackAll stopped tracking it (settle does not again).
	untracked bool
	// res holds the result of a task that ran its cascade: result points
	// to it, so that a prompt's result is not an allocation of its own.
	res prompt.Result
	// beatAt is when the server last heard that this delivery is worked
	// (Unix nanoseconds): its last heartbeat, or when the fetch that
	// brought it was asked for; 0 when unknown (beaten at the next round).
	beatAt atomic.Int64
}

// process answers one prompt and hands it to the committer.
func (w *Worker) process(ctx context.Context, t *task, job prompt.Job) {
	if t.load != nil {
		t.load.begin() // delivered → in flight, until the work ends
		defer t.load.end()
	}
	cl, runner, err := w.forBatch(ctx, job.BatchID)
	if err != nil {
		// Another worker may have what these routes need.
		t.result = &prompt.Result{Job: job, Delivery: int(t.d.NumDelivered()), WorkerID: w.cfg.WorkerID}
		t.nakIn = routesRetry
		w.handOff(t)
		return
	}
	tier, sig := cl.Classify(job.Prompt)
	if job.Resume != nil && job.Resume.Tier.Valid() {
		// A later round after a provider batch: the tier of the first round.
		tier = job.Resume.Tier
	}
	sig.TokenCount = w.cfg.TokenCount(job.System) + w.cfg.TokenCount(job.Prompt)
	delivery := int(t.d.NumDelivered())
	if h := w.cfg.Hooks.BeforeCall; h != nil {
		h(int(w.committed.Load()))
	}
	t.job = job
	rctx := cascade.WithCallGate(ctx, w.callGate(t, sig.TokenCount))
	if t.load != nil {
		rctx = cascade.WithCapacityWait(rctx, t.load.wait)
	}
	out := runner.Run(rctx, job, tier, sig, delivery)
	t.res = out.Result
	r := &t.res
	r.BudgetHolds = t.holds
	r.Job, r.Tier, r.Signals, r.Delivery = job, tier, sig, delivery
	r.WorkerID = w.cfg.WorkerID
	r.CompletedAt = time.Now()
	t.result = r
	switch {
	case !out.Transient:
		t.final = true
	case errors.Is(out.Stopped, errAnsweredElsewhere):
		t.answered = true
	case errors.Is(out.Stopped, errBatchCanceled):
		t.canceled = true
	case errors.Is(out.Stopped, errBatchPaused):
		t.parked, r.Parked = true, true
		if w.cfg.Park != nil {
			w.parkInStream(ctx, t, job)
		}
	case ctx.Err() != nil:
		// Shutting down: hand it back at once, without counting it as a failure.
		t.nakIn = 0
	case delivery >= w.cfg.MaxDeliver:
		t.final = true
		r.Status = prompt.StatusFailed
		r.Error = fmt.Sprintf("gave up after %d deliveries; last: %s", delivery, lastErrors(r.Attempts))
		if r.ModelUsed == "" && len(r.Attempts) > 0 {
			r.ModelUsed = r.Attempts[len(r.Attempts)-1].Model
		}
	default:
		// Equal jitter: each redelivery spends one of MaxDeliver deliveries.
		t.nakIn = max(backoff.Policy{Base: w.cfg.NakBase, Max: w.cfg.NakMax}.DelayEqual(delivery), out.RetryAfter)
	}
	w.handOff(t)
}

// parkInStream keeps parked task t's message in the stream (Config.Park)
// before its batch_parked row, which then holds only the id, is
// committed. When that fails the message is handed back instead: a later
// delivery parks it again (or runs it, once the batch is resumed).
func (w *Worker) parkInStream(ctx context.Context, t *task, job prompt.Job) {
	if err := w.cfg.Park(ctx, t.d, job); err != nil {
		w.log.Warn("cannot keep the paused batch's message in the stream; handing it back", "batch", job.BatchID, "id", job.ID, "err", err)
		t.parked, t.result.Parked = false, false
		t.nakIn = w.cfg.NakBase
		return
	}
	t.result.ParkedInStream = true
}

// lastErrors summarises the final attempt of each model.
func lastErrors(as []prompt.Attempt) string {
	last := map[string]prompt.Attempt{}
	var order []string
	for _, a := range as {
		if _, ok := last[a.Model]; !ok {
			order = append(order, a.Model)
		}
		last[a.Model] = a
	}
	s := ""
	for i, m := range order {
		if i > 0 {
			s += "; "
		}
		s += m + ": " + string(last[m].Outcome)
	}
	if s == "" {
		return "no attempt"
	}
	return s
}

// errAnsweredElsewhere stops a cascade whose prompt another worker answered.
var errAnsweredElsewhere = errors.New("answered by another worker")

// callGate is asked before each model call of t and before a cached
// answer is taken: its batch must be running, the call's estimated cost must fit the batch's budget (when it
// has one), and the prompt must still be unanswered. inputTokens is what
// the prompt sends (system + prompt).
// It reads the job from t (t.job), so that the one closure it allocates
// per prompt holds no copy of the job.
func (w *Worker) callGate(t *task, inputTokens int) cascade.CallGate {
	return func(ctx context.Context, call cascade.Call) error {
		budgeted, err := w.ctl.gate(ctx, t.job.BatchID)
		if err != nil {
			return err
		}
		if err := w.stillWanted(ctx, t); err != nil {
			return err
		}
		if budgeted && !call.Cached { // a cached answer costs $0: nothing to set aside
			return w.reserve(ctx, t, t.job, call, inputTokens)
		}
		return nil
	}
}

// reserve sets the call's estimated cost aside against its batch's budget
// (the prompt's tokens, and max_tokens or a typical answer, at the model's
// price). When the budget has no room the store pauses the batch and the
// prompt is set aside like any prompt of a paused batch.
func (w *Worker) reserve(ctx context.Context, t *task, job prompt.Job, call cascade.Call, inputTokens int) error {
	out := job.MaxTokens
	if out <= 0 {
		out = estimate.DefaultOutputTokens
	}
	est := call.Price.Cost(pricing.Usage{InputTokens: inputTokens, OutputTokens: out})
	id, ok, err := w.ctl.src.Reserve(ctx, store.Hold{BatchID: job.BatchID, PromptID: job.ID, WorkerID: w.cfg.WorkerID, AmountUSD: est})
	switch {
	case err != nil:
		return fmt.Errorf("reserving budget: %w", err) // transient: handed back
	case !ok:
		w.ctl.expire()
		return errBatchPaused
	}
	t.holds = append(t.holds, id)
	return nil
}

// stillWanted is part of t's CallGate: a delivery that may have been
// redelivered elsewhere (suspect, or its last heartbeat late now) checks
// that its prompt has no result before paying for another call. One lookup,
// only in that rare state; when the lookup fails the call goes ahead
// (at-least-once: an answer that loses the race is logged, never stored).
func (w *Worker) stillWanted(ctx context.Context, t *task) error {
	if !t.suspect.Load() && time.Since(time.Unix(0, t.beatAt.Load())) < w.cfg.AckWait*2/3 {
		return nil
	}
	t.suspect.Store(true)
	job := &t.job
	k := store.Key{BatchID: job.BatchID, PromptID: job.ID}
	existing, err := w.store.Existing(ctx, []store.Key{k})
	if err != nil {
		w.log.Warn("cannot check whether another worker answered; calling anyway", "batch", job.BatchID, "id", job.ID, "err", err)
		return nil
	}
	if existing[k] {
		return errAnsweredElsewhere
	}
	return nil
}
