package worker

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/promptcascade/promptcascade/internal/backoff"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/store"
)

// fetchLoop fetches as many deliveries as there are free credits (free
// slots plus the prefetch) and starts them.
func (w *Worker) fetchLoop(ctx, workCtx context.Context, procWG *sync.WaitGroup) error {
	fetchErrs := outage{now: w.cfg.Now}
	for {
		// Take one credit (blocking), then as many more as are free.
		select {
		case <-ctx.Done():
			return nil
		case <-w.credits:
		}
		n := 1
	more:
		for n < w.cfg.FetchBatch {
			select {
			case <-w.credits:
				n++
			default:
				break more
			}
		}
		n = w.gather(ctx, n)
		asked := time.Now() // no delivery of this fetch started its AckWait earlier
		ds, err := w.src.Fetch(ctx, n, w.fetchWait())
		for range n - len(ds) {
			w.credits <- struct{}{}
		}
		// A fetch cut short by an error (the broker going away) may still
		// have handed out deliveries: they hold slots and must be worked.
		if len(ds) > 0 {
			// Started in the background: decoding and the existence
			// check (a Postgres round trip) do not hold up the next
			// fetch, so that a freed slot is refilled at once.
			w.stats.fetched.Add(int64(len(ds)))
			procWG.Add(1)
			go func() {
				defer procWG.Done()
				w.start(ctx, workCtx, ds, asked, procWG)
			}()
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if consumerGone(err) {
				if err := w.recoverSource(ctx, err); err != nil {
					return err
				}
				fetchErrs = outage{now: w.cfg.Now}
				continue
			}
			logIt := fetchErrs.failed()
			delay := backoff.Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second}.Delay(fetchErrs.failures)
			if logIt {
				w.log.Warn("fetch failed; retrying (logged once a minute while it lasts)", "err", err,
					"failures", fetchErrs.failures, "failing_for", fetchErrs.since(), "retry_in", delay.Round(time.Millisecond))
			}
			if backoff.Sleep(ctx, delay) != nil {
				return nil
			}
			continue
		}
		fetchErrs = outage{now: w.cfg.Now}
		if len(ds) == 0 && w.cfg.ExitWhenIdle && w.idle(ctx) && w.sweptBeforeExit(ctx) {
			w.log.Info("consumer idle; exiting")
			return nil
		}
	}
}

// idlePoll is the longest a fetch waits, with ExitWhenIdle, while this
// worker still holds deliveries: the queue's end is near, and an empty fetch
// looks at once whether the consumer is idle. So the worker exits about
// idlePoll after its last ack, not up to a whole FetchMaxWait later.
const idlePoll = 50 * time.Millisecond

// fetchWait is how long a fetch waits for a message when none is there.
func (w *Worker) fetchWait() time.Duration {
	if w.cfg.ExitWhenIdle && w.stats.inflight.Load() > 0 {
		return min(w.cfg.FetchMaxWait, idlePoll)
	}
	return w.cfg.FetchMaxWait
}

// gatherFor is the longest the fetch loop waits to fetch a larger group
// while enough prefetched deliveries wait for slots.
const gatherFor = 5 * time.Millisecond

// gather adds credits to the n taken while at least half the prefetch is
// fetched and waiting for slots (the slots are not about to run dry): up to
// half the prefetch, for at most gatherFor. Slots that free one by one (a
// slow model) are then refilled by one fetch, one existence check and one
// commit's worth of work per group, not per prompt.
func (w *Worker) gather(ctx context.Context, n int) int {
	half := min(w.cfg.Prefetch/2, w.cfg.FetchBatch)
	if n >= half || w.prefetched()-n < half { // n of the credits held are this fetch's
		return n
	}
	t := time.NewTimer(gatherFor)
	defer t.Stop()
	for n < half {
		select {
		case <-w.credits:
			n++
		case <-t.C:
			return n
		case <-ctx.Done():
			return n
		}
	}
	return n
}

// prefetched is about how many fetched deliveries wait for a slot: the
// credits held beyond the slots in use.
func (w *Worker) prefetched() int {
	return (cap(w.credits) - len(w.credits)) - w.slots.inUse()
}

// idle reports whether nothing is in flight here and nothing is pending at the consumer.
func (w *Worker) idle(ctx context.Context) bool {
	if w.stats.inflight.Load() > 0 || len(w.credits) < cap(w.credits) {
		return false
	}
	pending, ackPending, err := w.src.Pending(ctx)
	if err != nil {
		w.log.Warn("consumer info failed", "err", err)
		return false
	}
	if pending != 0 || ackPending != 0 {
		return false
	}
	if w.cfg.Waiting != nil {
		// Prompts outside the queue (at a provider's batch API) come back
		// to it: not idle while any wait.
		n, err := w.cfg.Waiting(ctx)
		if err != nil {
			w.log.Warn("counting prompts waiting outside the queue failed", "err", err)
			return false
		}
		return n == 0
	}
	return true
}

// sweptBeforeExit settles exhausted messages before an idle worker exits:
// a prompt whose last delivery was lost is neither pending nor in flight,
// so the idle check alone would leave it behind. False means try again later.
func (w *Worker) sweptBeforeExit(ctx context.Context) bool {
	if _, err := w.sweep(ctx, w.src); err != nil {
		w.log.Warn("settling exhausted messages failed; not exiting yet", "err", err)
		return false
	}
	return true
}

// start decodes a fetched group, skips prompts already answered, and starts
// the rest, each as soon as a slot is free (heartbeated while it waits).
// Each delivery holds its credit until its work ends (or it is settled
// without work). asked is when the fetch of ds was asked for.
func (w *Worker) start(ctx, workCtx context.Context, ds []Delivery, asked time.Time, procWG *sync.WaitGroup) {
	type pending struct {
		d    Delivery
		job  prompt.Job
		load *batchLoad // counts it waiting until it is worked or settled
	}
	jobs := make([]pending, 0, len(ds))
	keys := make([]store.Key, 0, len(ds))
	held := make([]Delivery, 0, len(ds))
	for _, d := range ds {
		job, err := queue.DecodeJob(d.Data(), w.cfg.MaxMessageBytes)
		if err != nil {
			w.log.Warn("poison message; dead-lettering", "stream_seq", d.StreamSeq(), "subject", d.Subject(), "err", err)
			t := &task{d: d, dead: &store.DeadLetter{StreamSeq: d.StreamSeq(), Subject: d.Subject(), Payload: d.Data(), Error: err.Error()}}
			t.beatAt.Store(asked.UnixNano())
			w.track(t)
			w.handOff(t)
			continue
		}
		jobs = append(jobs, pending{d, job, w.load.of(job.BatchID).delivered()})
		w.slots.claim(job.Priority) // ended by acquire or unclaim below
		keys = append(keys, store.Key{BatchID: job.BatchID, PromptID: job.ID})
		held = append(held, d)
	}
	if len(jobs) == 0 {
		return
	}
	// drop ends the wait of a job that will not be worked.
	drop := func(p pending) {
		p.load.dropped()
		w.slots.unclaim(p.job.Priority)
	}
	// One round trip tells which prompts were already answered (a redelivery
	// after a crash between commit and ack, or an enqueue run twice).
	existing, err := w.existing(ctx, workCtx, keys, held)
	if err != nil {
		w.log.Warn("checking for existing results failed; handing prompts back", "err", err, "prompts", len(jobs))
		for _, p := range jobs {
			drop(p)
			w.finish(p.d, func() error { return p.d.NakWithDelay(w.cfg.NakBase) })
			w.stats.naked.Add(1)
		}
		return
	}
	// The batch states (paused, canceled) are read before any work; a
	// database fault is waited out while the deliveries are held.
	if err := w.holdRetry(ctx, workCtx, held, "reading batch states", len(jobs), w.ctl.fresh); err != nil {
		w.log.Warn("reading batch states failed; handing prompts back", "err", err, "prompts", len(jobs))
		for _, p := range jobs {
			drop(p)
			w.finish(p.d, func() error { return p.d.NakWithDelay(w.cfg.NakBase) })
			w.stats.naked.Add(1)
		}
		return
	}
	// Every delivery of the group is tracked (heartbeated) before any
	// waits for a slot: one that waited untracked behind the others could
	// pass AckWait and be redelivered while this worker still holds it.
	runnable := make([]procJob, 0, len(jobs))
	for _, p := range jobs {
		if existing[store.Key{BatchID: p.job.BatchID, PromptID: p.job.ID}] {
			drop(p)
			w.stats.already.Add(1)
			w.cfg.Observer.Settled(SettledAlreadyDone, nil)
			w.finish(p.d, p.d.Ack)
			continue
		}
		if w.setAside(ctx, p.d, p.job, asked, procWG) {
			drop(p)
			continue
		}
		t := &task{d: p.d, load: p.load}
		t.beatAt.Store(asked.UnixNano())
		if !w.trackWorking(t, store.Key{BatchID: p.job.BatchID, PromptID: p.job.ID}) {
			w.slots.unclaim(p.job.Priority)
			continue // a redelivery of a prompt worked here now: it follows that delivery
		}
		runnable = append(runnable, procJob{t, p.job})
	}
	// Highest priority first (a fetch returns them so): a claimed delivery
	// must never wait behind a lower one of its group, which waits for it.
	slices.SortStableFunc(runnable, func(a, b procJob) int { return rank(a.job.Priority) - rank(b.job.Priority) })
	for _, r := range runnable {
		// A prefetched delivery waits here for a slot (a high batch's
		// first); a stop hands it back unworked.
		if !w.slots.acquire(ctx, workCtx, r.job.Priority, true) {
			r.t.load.dropped()
			fl := w.untrack(r.t)
			w.finish(r.t.d, func() error { return r.t.d.NakWithDelay(0) })
			w.settleFollowers(fl, false)
			continue
		}
		r.t.slot = true
		w.work(workCtx, r.t, r.job)
	}
}

// procJob is a prompt whose slot is taken, on its way to a process goroutine.
type procJob struct {
	t   *task
	job prompt.Job
}

// work runs process for t on an idle process goroutine, or on a new one
// when none is idle. Process goroutines stay for the next prompt (their
// stacks grown once, not per prompt); there are never more of them than
// slots, and they end when Run closes them (closeProcs).
//
// The goroutine idle for the shortest time takes the next prompt (last in,
// first out): one idle longer has likely had its stack shrunk by a GC and
// would grow it again (copystack was ~7% of the worker's CPU at 5,000 in
// flight with the first-in-first-out channel of idle goroutines).
func (w *Worker) work(ctx context.Context, t *task, j prompt.Job) {
	w.idleMu.Lock()
	if n := len(w.idleProcs); n > 0 {
		p := w.idleProcs[n-1]
		w.idleProcs = w.idleProcs[:n-1]
		w.idleMu.Unlock()
		p <- procJob{t, j} // buffered: the goroutine listed itself before it waits
		return
	}
	w.idleMu.Unlock()
	w.newProc(ctx, procJob{t, j})
}

// newProc starts a process goroutine with its first prompt. (Its own
// function: a goroutine started in work would make work's arguments
// escape for every prompt.)
func (w *Worker) newProc(ctx context.Context, job procJob) {
	w.procs.Add(1)
	go func() {
		defer w.procs.Done()
		next := make(chan procJob, 1)
		for {
			w.process(ctx, job.t, job.job)
			w.idleMu.Lock()
			if w.procsClosed {
				w.idleMu.Unlock()
				return
			}
			w.idleProcs = append(w.idleProcs, next)
			w.idleMu.Unlock()
			var ok bool
			if job, ok = <-next; !ok {
				return
			}
		}
	}()
}

// closeProcs ends the idle process goroutines, and the busy ones once
// their prompt is done. Nothing may call work after it.
func (w *Worker) closeProcs() {
	w.idleMu.Lock()
	defer w.idleMu.Unlock()
	w.procsClosed = true
	for _, p := range w.idleProcs {
		close(p)
	}
	w.idleProcs = nil
}

// setAside settles a delivery whose batch is not running, before any work:
// a canceled batch's message is acked, a paused batch's is parked (kept in
// Postgres, or in the stream with Config.Park, then acked). A batch state
// that cannot be read hands it back. procWG owns the goroutine that parks
// in the stream.
func (w *Worker) setAside(ctx context.Context, d Delivery, job prompt.Job, asked time.Time, procWG *sync.WaitGroup) bool {
	st, err := w.ctl.state(ctx, job.BatchID)
	switch {
	case err != nil:
		w.log.Warn("cannot read batch states; handing the prompt back", "batch", job.BatchID, "err", err)
		w.stats.naked.Add(1)
		w.finish(d, func() error { return d.NakWithDelay(w.cfg.NakBase) })
		return true
	case st == store.BatchCanceled:
		w.stats.canceled.Add(1)
		w.finish(d, d.Ack)
		return true
	case st == store.BatchPaused:
		t := &task{d: d, parked: true, result: &prompt.Result{Job: job, Parked: true, Delivery: int(d.NumDelivered()), WorkerID: w.cfg.WorkerID}}
		t.beatAt.Store(asked.UnixNano())
		w.track(t)
		if w.cfg.Park == nil {
			w.handOff(t)
			return true
		}
		w.parkAsync(ctx, t, job, procWG)
		return true
	}
	return false
}

// parkAsync parks t's message in the stream, then hands t off, on a
// goroutine of procWG's. (Its own function: a goroutine started in
// setAside would make its arguments escape for every prompt.)
func (w *Worker) parkAsync(ctx context.Context, t *task, job prompt.Job, procWG *sync.WaitGroup) {
	procWG.Add(1)
	go func() {
		defer procWG.Done()
		w.parkInStream(ctx, t, job)
		w.handOff(t)
	}()
}

// finish settles a delivery that never reached the committer (nor a slot)
// and frees its credit.
func (w *Worker) finish(d Delivery, settle func() error) {
	if err := settle(); err != nil {
		w.log.Debug("settling delivery failed; it will be redelivered", "stream_seq", d.StreamSeq(), "err", err)
	}
	w.credits <- struct{}{}
}
