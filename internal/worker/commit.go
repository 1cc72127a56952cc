package worker

import (
	"context"
	"time"

	"github.com/promptcascade/promptcascade/internal/backoff"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/store"
)

// batchLoop gathers finished tasks into batches of up to CommitBatch,
// waiting at most CommitInterval after a batch's first, and hands each to a
// committer. One gatherer for all committers: while they are all busy,
// finished tasks queue in w.done and the next batch takes them at once, so
// batches are as large as the rate allows instead of being shared out among
// committers that each wait for their own. It closes batches when w.done is
// closed and drained.
func (w *Worker) batchLoop(batches chan<- []*task) {
	defer close(batches)
	for {
		t, ok := <-w.done
		if !ok {
			return
		}
		batch := make([]*task, 1, w.cfg.CommitBatch)
		batch[0] = t
		timer := time.NewTimer(w.cfg.CommitInterval)
	fill:
		for len(batch) < w.cfg.CommitBatch {
			select {
			case t, ok := <-w.done:
				if !ok {
					break fill
				}
				batch = append(batch, t)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		batches <- batch
	}
}

// commitLoop writes the batches it is handed, then acks, naks or terms
// each task.
func (w *Worker) commitLoop(ctx context.Context, batches <-chan []*task) {
	for batch := range batches {
		w.commit(ctx, batch)
	}
}

// commit stores one batch, retrying transient database errors until it
// succeeds or the worker is hard-stopped, then settles every delivery.
//
// A batch of more than one task that fails transiently is retried as two
// halves, each committed (and split again) on its own: a transaction that
// a hostile database cuts short every time it runs long (connections
// killed, statement timeouts) still makes progress at the size that fits,
// instead of retrying the same large transaction forever. The halves grow
// back to the whole batch as they commit; the next batch starts whole.
func (w *Worker) commit(ctx context.Context, batch []*task) {
	results := make([]prompt.Result, 0, len(batch)) // a Result is ~1 KB: no regrowing
	var dead []store.DeadLetter
	for _, t := range batch {
		if t.result != nil {
			results = append(results, *t.result)
		}
		if t.dead != nil {
			dead = append(dead, *t.dead)
		}
	}
	if h := w.cfg.Hooks.BeforeCommit; h != nil {
		h(int(w.committed.Load()))
	}
	// Each write gets its own deadline and outlives a hard stop briefly: a
	// batch already answered is worth one more try before it is handed back
	// (and paid for again).
	write := func(f func(context.Context) error) error {
		dbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return f(dbCtx)
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		err := write(func(c context.Context) error { return w.write(c, results, dead) })
		if err == nil {
			break
		}
		w.stats.commitErrs.Add(1)
		switch {
		case ctx.Err() != nil:
			w.log.Error("commit failed while stopping; handing prompts back to the queue", "err", err, "prompts", len(batch))
			for _, t := range batch {
				w.settle(t, func() error { return t.d.NakWithDelay(0) })
			}
			return
		case !store.IsTransient(err):
			w.log.Warn("commit failed with a permanent error; writing one by one", "err", err, "prompts", len(batch))
			_ = write(func(c context.Context) error { w.isolate(c, batch); return nil })
			return
		}
		delay := dbRetry.Delay(attempt)
		if len(batch) > 1 {
			w.log.Warn("commit failed; retrying in two halves", "err", err, "prompts", len(batch), "retry_in", delay.Round(time.Millisecond))
			_ = backoff.Sleep(ctx, delay) // ctx ending is seen by the halves' commits
			half := len(batch) / 2
			w.commit(ctx, batch[:half])
			w.commit(ctx, batch[half:])
			return
		}
		w.log.Warn("commit failed; retrying", "err", err, "prompts", len(batch), "retry_in", delay.Round(time.Millisecond))
		_ = backoff.Sleep(ctx, delay) // ctx ending is seen by the loop
	}
	w.cfg.Observer.Committed(len(batch), time.Since(start))
	n := w.committed.Add(int64(len(batch)))
	if h := w.cfg.Hooks.AfterCommit; h != nil {
		h(int(n))
	}
	w.untrackAll(batch)
	for _, t := range batch {
		w.settleCommitted(t)
	}
}

func (w *Worker) write(ctx context.Context, results []prompt.Result, dead []store.DeadLetter) error {
	if len(dead) > 0 {
		if err := w.store.DeadLetters(ctx, dead); err != nil {
			return err
		}
	}
	if len(results) > 0 {
		if _, err := w.store.Write(ctx, results); err != nil {
			return err
		}
	}
	return nil
}

// isolate writes a batch that failed with a permanent error one task at a
// time, so that one bad row cannot hold back the others; a task that still
// fails on its own is dead-lettered.
func (w *Worker) isolate(ctx context.Context, batch []*task) {
	for _, t := range batch {
		var rs []prompt.Result
		var dls []store.DeadLetter
		if t.result != nil {
			rs = []prompt.Result{*t.result}
		}
		if t.dead != nil {
			dls = []store.DeadLetter{*t.dead}
		}
		err := w.write(ctx, rs, dls)
		if err == nil {
			w.settleCommitted(t)
			continue
		}
		if store.IsTransient(err) || t.dead != nil {
			w.settle(t, func() error { return t.d.NakWithDelay(w.cfg.NakBase) })
			continue
		}
		w.log.Error("result cannot be stored; dead-lettering", "stream_seq", t.d.StreamSeq(), "err", err)
		dl := store.DeadLetter{StreamSeq: t.d.StreamSeq(), Subject: t.d.Subject(), Payload: t.d.Data(), Error: "storing result: " + err.Error()}
		if err := w.store.DeadLetters(ctx, []store.DeadLetter{dl}); err != nil {
			w.settle(t, func() error { return t.d.NakWithDelay(w.cfg.NakBase) })
			continue
		}
		w.stats.dead.Add(1)
		w.settle(t, t.d.Term)
	}
}

// settleCommitted acks, naks or terms a task whose writes have committed.
func (w *Worker) settleCommitted(t *task) {
	switch {
	case t.dead != nil:
		w.stats.dead.Add(1)
		w.settle(t, t.d.Term)
	case t.parked:
		w.stats.parked.Add(1)
		w.stats.costMicro.Add(int64(t.result.CostUSD * 1e6))
		w.ack(t)
	case t.canceled:
		w.stats.canceled.Add(1)
		w.stats.costMicro.Add(int64(t.result.CostUSD * 1e6))
		w.cfg.Observer.Settled(SettledCanceled, t.result)
		w.ack(t)
	case t.answered:
		w.stats.already.Add(1)
		w.stats.costMicro.Add(int64(t.result.CostUSD * 1e6))
		w.cfg.Observer.Settled(SettledAlreadyDone, t.result)
		w.ack(t)
	case t.final:
		switch {
		case t.result.Handoff != nil:
			// Postgres owns the prompt now: it waits for a provider batch.
			w.stats.handedOff.Add(1)
			w.cfg.Observer.Settled(SettledHandedOff, t.result)
		case t.result.Status == prompt.StatusSucceeded:
			w.stats.succeeded.Add(1)
			w.cfg.Observer.Settled(SettledSucceeded, t.result)
		default:
			w.stats.failed.Add(1)
			w.cfg.Observer.Settled(SettledFailed, t.result)
		}
		w.stats.costMicro.Add(int64(t.result.CostUSD * 1e6))
		w.ack(t)
	default:
		w.stats.naked.Add(1)
		w.stats.costMicro.Add(int64(t.result.CostUSD * 1e6))
		w.cfg.Observer.Settled(SettledRequeued, t.result)
		w.settle(t, func() error { return t.d.NakWithDelay(t.nakIn) })
	}
}

func (w *Worker) settle(t *task, f func() error) {
	var fl []*task
	if t.untracked {
		// untrackAll took it out of working: no redelivery follows it any
		// more, and the ones that did were added under hbMu before.
		fl, t.followers = t.followers, nil
	} else {
		fl = w.untrack(t)
	}
	if err := f(); err != nil {
		w.log.Debug("settling delivery failed; it will be redelivered", "stream_seq", t.d.StreamSeq(), "err", err)
	}
	w.settleFollowers(fl, t.acked)
	<-w.trail
}

// ack is settleCommitted's settle of a task whose commit stored what it
// owes: the message is acked, and so are its redeliveries that followed it.
func (w *Worker) ack(t *task) {
	t.acked = true
	w.settle(t, t.d.Ack)
}

// handOff gives a task whose work has ended to the committer and frees its
// slot (if it took one) and its credit at once, so that the next prompt starts without waiting for this
// one's commit and ack. It waits while the trail is full (Concurrency
// tasks, or Committers × CommitBatch when that is more), which bounds the
// deliveries held un-acked.
// The task stays tracked (heartbeated) until it is settled.
func (w *Worker) handOff(t *task) {
	w.trail <- struct{}{}
	if t.slot {
		w.slots.release()
	}
	w.credits <- struct{}{}
	w.done <- t
}
