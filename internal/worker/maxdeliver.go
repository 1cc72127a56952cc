package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/store"
)

// Exhausted is a message the server stopped delivering after MaxDeliver
// deliveries (queue.Exhausted).
type Exhausted = queue.Exhausted

// ExhaustedSource is the part of a Source that finds exhausted messages and
// removes them once settled. Without it such a prompt would stay in the
// stream unanswered and unreported until cascadectl verify lists it as
// missing.
type ExhaustedSource interface {
	// WatchExhausted subscribes to the server's reports of newly exhausted
	// messages and calls notify (from another goroutine) for each; the
	// returned function unsubscribes.
	WatchExhausted(notify func()) (stop func(), err error)
	// Exhausted returns up to limit exhausted messages still in the stream.
	Exhausted(ctx context.Context, limit int) ([]Exhausted, error)
	// RemoveExhausted deletes a settled exhausted message from the stream.
	RemoveExhausted(ctx context.Context, seq uint64) error
}

// exhaustedLoop settles exhausted messages as the server reports them, and
// every SweepInterval in case a report was missed (advisories are not
// stored: one sent while no worker listened is lost).
func (w *Worker) exhaustedLoop(ctx context.Context, es ExhaustedSource, stop <-chan struct{}) {
	wake := make(chan struct{}, 1)
	unsubscribe, err := es.WatchExhausted(func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	if err != nil {
		w.log.Warn("cannot watch for exhausted messages; relying on the periodic scan", "err", err, "every", w.cfg.SweepInterval)
	} else {
		defer unsubscribe()
	}
	tick := time.NewTicker(w.cfg.SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-wake:
		case <-tick.C:
		}
		if _, err := w.sweep(ctx, es); err != nil && ctx.Err() == nil {
			w.log.Warn("settling exhausted messages failed; will retry", "err", err)
		}
	}
}

// sweep settles every exhausted message it can find and returns how many.
// Sweeps are serialised within the worker; across workers they are
// idempotent (the result is inserted once, the second removal is a no-op).
func (w *Worker) sweep(ctx context.Context, es ExhaustedSource) (int, error) {
	w.sweeps.Lock()
	defer w.sweeps.Unlock()
	total := 0
	for {
		found, err := es.Exhausted(ctx, w.cfg.CommitBatch)
		if len(found) > 0 {
			n, serr := w.settleExhausted(ctx, es, found)
			total += n
			if serr != nil {
				return total, serr
			}
		}
		if err != nil {
			return total, fmt.Errorf("finding exhausted messages: %w", err)
		}
		if len(found) < w.cfg.CommitBatch {
			return total, nil
		}
	}
}

// settleExhausted stores a failed result for each exhausted prompt that has
// none (a dead letter for an undecodable message), in one write, then
// removes the messages from the stream. The failed row's attempts and cost
// cover the request_log rows that earlier deliveries committed: its history.
func (w *Worker) settleExhausted(ctx context.Context, es ExhaustedSource, found []Exhausted) (int, error) {
	var dead []store.DeadLetter
	var results []prompt.Result
	keys := make([]store.Key, 0, len(found))
	for _, e := range found {
		job, err := queue.DecodeJob(e.Data, w.cfg.MaxMessageBytes)
		if err != nil {
			dead = append(dead, store.DeadLetter{StreamSeq: e.StreamSeq, Subject: e.Subject, Payload: e.Data, Error: err.Error()})
			continue
		}
		tier, sig := w.class.Classify(job.Prompt)
		sig.TokenCount = w.cfg.TokenCount(job.System) + w.cfg.TokenCount(job.Prompt)
		results = append(results, prompt.Result{
			Job: job, Tier: tier, Signals: sig, Status: prompt.StatusFailed, Delivery: e.Deliveries,
			Error: fmt.Sprintf("exhausted %d deliveries: the server stopped redelivering the prompt after a last delivery "+
				"that was neither stored nor acknowledged (its worker stopped, or lost its connection)", e.Deliveries),
			CompletedAt: time.Now(), WorkerID: w.cfg.WorkerID,
		})
		keys = append(keys, store.Key{BatchID: job.BatchID, PromptID: job.ID})
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if len(keys) > 0 {
		// Skip what is already stored: a late commit of the last delivery,
		// or another worker that settled the same message first.
		existing, err := w.store.Existing(dctx, keys)
		if err != nil {
			return 0, err
		}
		kept := results[:0]
		for _, r := range results {
			if !existing[store.Key{BatchID: r.Job.BatchID, PromptID: r.Job.ID}] {
				kept = append(kept, r)
			}
		}
		results = kept
	}
	if len(dead) > 0 {
		if err := w.store.DeadLetters(dctx, dead); err != nil {
			return 0, err
		}
		w.stats.dead.Add(int64(len(dead)))
	}
	if len(results) > 0 {
		inserted, err := w.store.Write(dctx, results)
		if err != nil {
			return 0, err
		}
		for i, ok := range inserted {
			if ok {
				w.stats.failed.Add(1)
				w.cfg.Observer.Settled(SettledFailed, &results[i])
				w.log.Warn("prompt exhausted its deliveries; stored as failed", "batch", results[i].Job.BatchID,
					"id", results[i].Job.ID, "deliveries", results[i].Delivery)
			}
		}
	}
	// Only now, with the outcome committed, may the message go.
	for _, e := range found {
		if err := es.RemoveExhausted(dctx, e.StreamSeq); err != nil {
			return 0, err
		}
	}
	w.stats.exhausted.Add(int64(len(found)))
	return len(found), nil
}
