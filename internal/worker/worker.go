// Package worker runs the consume → classify → cascade → store → ack loop of
// one worker process. It keeps up to Concurrency prompts in flight, fetches
// only as many messages as it has free slots, commits finished prompts in
// small batches, and acks each message only after its batch has committed.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/store"
)

// Delivery is one message from the queue.
type Delivery interface {
	Data() []byte
	Subject() string
	StreamSeq() uint64
	NumDelivered() uint64
	Ack() error
	NakWithDelay(time.Duration) error
	Term() error
	InProgress() error
}

// Source hands out deliveries of the shared durable consumer.
type Source interface {
	// Fetch returns up to n deliveries, waiting at most maxWait for the first.
	Fetch(ctx context.Context, n int, maxWait time.Duration) ([]Delivery, error)
	// Pending reports messages not yet delivered and deliveries not yet acked,
	// across every worker of the consumer.
	Pending(ctx context.Context) (pending, ackPending uint64, err error)
}

// Store persists results, attempts and dead letters.
type Store interface {
	Existing(ctx context.Context, keys []store.Key) (map[store.Key]bool, error)
	Write(ctx context.Context, rs []prompt.Result) ([]bool, error)
	DeadLetters(ctx context.Context, dls []store.DeadLetter) error
}

// Runner answers one prompt by cascading over its tier's models.
type Runner interface {
	Run(ctx context.Context, job prompt.Job, tier prompt.Tier, sig prompt.Signals, delivery int) cascade.Outcome
}

// Config tunes a Worker. Zero values take the defaults noted.
type Config struct {
	WorkerID       string
	Concurrency    int           // prompts in flight (64)
	FetchBatch     int           // most messages asked for per fetch (256)
	FetchMaxWait   time.Duration // longest wait for a fetch (500ms)
	CommitBatch    int           // most prompts per commit (512)
	Committers     int           // commits that may run at once (2)
	CommitInterval time.Duration // longest a finished prompt waits for its commit (20ms)
	AckWait        time.Duration // consumer's AckWait; heartbeats go every third of it (30s)
	MaxDeliver     int           // consumer's MaxDeliver; the last delivery stores a failure instead of a nak (10)
	NakBase        time.Duration // first redelivery delay after a transient failure (1s)
	NakMax         time.Duration // cap of the redelivery delay (2m)
	DrainTimeout   time.Duration // on stop, how long in-flight prompts may finish (25s)
	MaxPromptBytes int           // larger jobs are dead-lettered (1 MiB)
	ExitWhenIdle   bool          // return once the consumer has nothing pending or in flight
	RecoverTries   int           // tries to recreate a consumer found gone before Run fails with ErrSourceGone (8: 10-20 s)
	SweepInterval  time.Duration // how often the stream is scanned for exhausted messages, besides advisories (30s)
	TokenCount     func(string) int
	Fault          string // fault injection for crash tests: one of the Fault* points; "" is off
	FaultAfter     int    // prompts committed before the fault fires
}

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Concurrency, 64)
	def(&c.FetchBatch, 256)
	def(&c.CommitBatch, 512)
	def(&c.Committers, 2)
	def(&c.MaxDeliver, 10)
	def(&c.MaxPromptBytes, 1<<20)
	def(&c.RecoverTries, 8)
	defd(&c.SweepInterval, 30*time.Second)
	defd(&c.FetchMaxWait, 500*time.Millisecond)
	defd(&c.CommitInterval, 20*time.Millisecond)
	defd(&c.AckWait, 30*time.Second)
	defd(&c.NakBase, time.Second)
	defd(&c.NakMax, 2*time.Minute)
	defd(&c.DrainTimeout, 25*time.Second)
	if c.TokenCount == nil {
		c.TokenCount = func(string) int { return 0 }
	}
}

// Fault-injection points (Config.Fault, WORKER_FAULT) used by the crash
// tests. Each makes the worker exit at once with status 137, as kill -9
// would, after FaultAfter prompts have been committed.
const (
	FaultDuringCall   = "during-call"   // while a model call is running
	FaultBeforeCommit = "before-commit" // answer in hand, nothing committed
	FaultAfterCommit  = "after-commit"  // committed, not yet acked
)

// Stats are the worker's counters since start.
type Stats struct {
	Fetched, Succeeded, Failed, Naked, DeadLettered, AlreadyDone, CommitErrors int64
	InFlight                                                                   int64
	CostMicroUSD                                                               int64
	// Recovered counts recoveries after a fetch found the consumer gone
	// (deleted, or a broker shutting down); Exhausted counts messages
	// settled after the server stopped delivering them (MaxDeliver).
	Recovered, Exhausted int64
}

// Worker processes deliveries until stopped.
type Worker struct {
	cfg    Config
	src    Source
	store  Store
	class  *classify.Classifier
	runner Runner
	log    *slog.Logger

	slots  chan struct{}
	done   chan *task
	hbMu   sync.Mutex
	hb     map[*task]struct{}
	stats  struct{ fetched, succeeded, failed, naked, dead, already, commitErrs, inflight, costMicro, recovered, exhausted atomic.Int64 }
	faults atomic.Int64
	// lastBeat is when the heartbeat loop last ran (Unix nanoseconds).
	lastBeat atomic.Int64
	sweeps   sync.Mutex // one sweep for exhausted messages at a time
}

// New returns a worker. It does nothing until Run.
func New(cfg Config, src Source, st Store, cl *classify.Classifier, r Runner, log *slog.Logger) *Worker {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Worker{cfg: cfg, src: src, store: st, class: cl, runner: r, log: log,
		slots: make(chan struct{}, cfg.Concurrency),
		done:  make(chan *task, cfg.Concurrency),
		hb:    make(map[*task]struct{}),
	}
	for range cfg.Concurrency {
		w.slots <- struct{}{}
	}
	return w
}

// Stats returns a snapshot of the counters.
func (w *Worker) Stats() Stats {
	s := &w.stats
	return Stats{Fetched: s.fetched.Load(), Succeeded: s.succeeded.Load(), Failed: s.failed.Load(),
		Naked: s.naked.Load(), DeadLettered: s.dead.Load(), AlreadyDone: s.already.Load(),
		CommitErrors: s.commitErrs.Load(), InFlight: s.inflight.Load(), CostMicroUSD: s.costMicro.Load(),
		Recovered: s.recovered.Load(), Exhausted: s.exhausted.Load()}
}

// task is one delivery on its way through the worker.
type task struct {
	d      Delivery
	result *prompt.Result    // set when the cascade finished
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
}

var errDrainTimeout = errors.New("drain timeout passed; handing unfinished prompts back to the queue")

// Run processes deliveries until ctx is cancelled (then drains: it stops
// fetching, lets in-flight prompts finish for up to DrainTimeout, hands the
// rest back to the queue, and returns nil) or, with ExitWhenIdle, until the
// consumer is idle. It returns an error wrapping ErrSourceGone (after the
// same drain) when the consumer disappeared and could not be recreated.
func (w *Worker) Run(ctx context.Context) error {
	// Model calls and commits run on workCtx so that a soft stop (ctx) lets
	// them finish; a hard stop cancels them.
	workCtx, hardStop := context.WithCancelCause(context.WithoutCancel(ctx))
	defer hardStop(nil)

	var commitWG, hbWG, procWG sync.WaitGroup
	for range w.cfg.Committers {
		commitWG.Add(1)
		go func() {
			defer commitWG.Done()
			w.commitLoop(workCtx)
		}()
	}
	hbStop := make(chan struct{})
	w.lastBeat.Store(time.Now().UnixNano())
	hbWG.Add(1)
	go func() {
		defer hbWG.Done()
		w.heartbeatLoop(hbStop)
	}()
	if es, ok := w.src.(ExhaustedSource); ok {
		hbWG.Add(1)
		go func() {
			defer hbWG.Done()
			w.exhaustedLoop(workCtx, es, hbStop)
		}()
	}

	err := w.fetchLoop(ctx, workCtx, &procWG)

	// Drain: let in-flight prompts finish and commit; past DrainTimeout,
	// cancel their calls and hand them back to the queue.
	hard := time.AfterFunc(w.cfg.DrainTimeout, func() {
		w.log.Warn("drain timeout passed; cancelling in-flight calls", "in_flight", w.stats.inflight.Load())
		hardStop(errDrainTimeout)
	})
	procWG.Wait()
	close(w.done)
	commitWG.Wait()
	hard.Stop()
	close(hbStop)
	hbWG.Wait()
	return err
}

// fetchLoop fetches as many deliveries as there are free slots and starts them.
func (w *Worker) fetchLoop(ctx, workCtx context.Context, procWG *sync.WaitGroup) error {
	fetchErrs := 0
	for {
		// Take one slot (blocking), then as many more as are free.
		select {
		case <-ctx.Done():
			return nil
		case <-w.slots:
		}
		n := 1
	more:
		for n < w.cfg.FetchBatch {
			select {
			case <-w.slots:
				n++
			default:
				break more
			}
		}
		ds, err := w.src.Fetch(ctx, n, w.cfg.FetchMaxWait)
		for range n - len(ds) {
			w.slots <- struct{}{}
		}
		// A fetch cut short by an error (the broker going away) may still
		// have handed out deliveries: they hold slots and must be worked.
		if len(ds) > 0 {
			w.stats.fetched.Add(int64(len(ds)))
			w.start(ctx, workCtx, ds, procWG)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if consumerGone(err) {
				if err := w.recoverSource(ctx, err); err != nil {
					return err
				}
				fetchErrs = 0
				continue
			}
			fetchErrs++
			delay := backoff(fetchErrs, 100*time.Millisecond, 5*time.Second)
			w.log.Warn("fetch failed; retrying", "err", err, "retry_in", delay.Round(time.Millisecond))
			if !sleep(ctx, delay) {
				return nil
			}
			continue
		}
		fetchErrs = 0
		if len(ds) == 0 && w.cfg.ExitWhenIdle && w.idle(ctx) && w.sweptBeforeExit(ctx) {
			w.log.Info("consumer idle; exiting")
			return nil
		}
	}
}

// idle reports whether nothing is in flight here and nothing is pending at the consumer.
func (w *Worker) idle(ctx context.Context) bool {
	if w.stats.inflight.Load() > 0 || len(w.slots) < cap(w.slots) {
		return false
	}
	pending, ackPending, err := w.src.Pending(ctx)
	if err != nil {
		w.log.Warn("consumer info failed", "err", err)
		return false
	}
	return pending == 0 && ackPending == 0
}

// sweptBeforeExit settles exhausted messages before an idle worker exits:
// a prompt whose last delivery was lost is neither pending nor in flight,
// so the idle check alone would leave it behind. False means try again later.
func (w *Worker) sweptBeforeExit(ctx context.Context) bool {
	es, ok := w.src.(ExhaustedSource)
	if !ok {
		return true
	}
	if _, err := w.sweep(ctx, es); err != nil {
		w.log.Warn("settling exhausted messages failed; not exiting yet", "err", err)
		return false
	}
	return true
}

// start decodes a fetched group, skips prompts already answered, and starts
// the rest. Each delivery holds one slot until it is acked, naked or termed.
func (w *Worker) start(ctx, workCtx context.Context, ds []Delivery, procWG *sync.WaitGroup) {
	type pending struct {
		d   Delivery
		job prompt.Job
	}
	jobs := make([]pending, 0, len(ds))
	keys := make([]store.Key, 0, len(ds))
	held := make([]Delivery, 0, len(ds))
	for _, d := range ds {
		job, err := queue.DecodeJob(d.Data(), w.cfg.MaxPromptBytes)
		if err != nil {
			w.log.Warn("poison message; dead-lettering", "stream_seq", d.StreamSeq(), "subject", d.Subject(), "err", err)
			t := &task{d: d, dead: &store.DeadLetter{StreamSeq: d.StreamSeq(), Subject: d.Subject(), Payload: d.Data(), Error: err.Error()}}
			w.track(t)
			w.done <- t
			continue
		}
		jobs = append(jobs, pending{d, job})
		keys = append(keys, store.Key{BatchID: job.BatchID, PromptID: job.ID})
		held = append(held, d)
	}
	if len(jobs) == 0 {
		return
	}
	// One round trip tells which prompts were already answered (a redelivery
	// after a crash between commit and ack, or an enqueue run twice).
	existing, err := w.existing(ctx, workCtx, keys, held)
	if err != nil {
		w.log.Warn("checking for existing results failed; handing prompts back", "err", err, "prompts", len(jobs))
		for _, p := range jobs {
			w.finish(p.d, func() error { return p.d.NakWithDelay(w.cfg.NakBase) })
			w.stats.naked.Add(1)
		}
		return
	}
	for _, p := range jobs {
		if existing[store.Key{BatchID: p.job.BatchID, PromptID: p.job.ID}] {
			w.stats.already.Add(1)
			w.finish(p.d, p.d.Ack)
			continue
		}
		t := &task{d: p.d}
		w.track(t)
		procWG.Add(1)
		go func() {
			defer procWG.Done()
			w.process(workCtx, t, p.job)
		}()
	}
}

// finish settles a delivery that never reached the committer and frees its slot.
func (w *Worker) finish(d Delivery, settle func() error) {
	if err := settle(); err != nil {
		w.log.Debug("settling delivery failed; it will be redelivered", "stream_seq", d.StreamSeq(), "err", err)
	}
	w.slots <- struct{}{}
}

// process answers one prompt and hands it to the committer.
func (w *Worker) process(ctx context.Context, t *task, job prompt.Job) {
	tier, sig := w.class.Classify(job.Prompt)
	sig.TokenCount = w.cfg.TokenCount(job.System) + w.cfg.TokenCount(job.Prompt)
	delivery := int(t.d.NumDelivered())
	if w.cfg.Fault == FaultDuringCall && w.faults.Load() >= int64(w.cfg.FaultAfter) {
		go func() {
			time.Sleep(5 * time.Millisecond)
			w.crash(FaultDuringCall)
		}()
	}
	out := w.runner.Run(cascade.WithCallGate(ctx, w.stillWanted(t, job)), job, tier, sig, delivery)
	r := out.Result
	r.Job, r.Tier, r.Signals, r.Delivery = job, tier, sig, delivery
	r.WorkerID = w.cfg.WorkerID
	r.CompletedAt = time.Now()
	t.result = &r
	switch {
	case !out.Transient:
		t.final = true
	case errors.Is(out.Stopped, errAnsweredElsewhere):
		t.answered = true
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
		t.nakIn = max(backoff(delivery, w.cfg.NakBase, w.cfg.NakMax), out.RetryAfter)
	}
	w.done <- t
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

func (w *Worker) track(t *task) {
	w.stats.inflight.Add(1)
	w.hbMu.Lock()
	w.hb[t] = struct{}{}
	w.hbMu.Unlock()
}

func (w *Worker) untrack(t *task) {
	w.stats.inflight.Add(-1)
	w.hbMu.Lock()
	delete(w.hb, t)
	w.hbMu.Unlock()
}

// heartbeatLoop tells the server, every third of AckWait, that every
// delivery still held here is being worked on, so none is redelivered to
// another worker while its model call or commit is running.
func (w *Worker) heartbeatLoop(stop <-chan struct{}) {
	tick := time.NewTicker(w.cfg.AckWait / 3)
	defer tick.Stop()
	var batch []Delivery
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		now := time.Now()
		// A beat later than AckWait means the server may have redelivered
		// what this worker holds (the process was stopped or starved):
		// every delivery held now checks before its next model call.
		late := now.Sub(time.Unix(0, w.lastBeat.Swap(now.UnixNano()))) > w.cfg.AckWait
		batch = batch[:0]
		w.hbMu.Lock()
		for t := range w.hb {
			batch = append(batch, t.d)
			if late {
				t.suspect.Store(true)
			}
		}
		w.hbMu.Unlock()
		if late {
			w.log.Warn("heartbeats were late; deliveries held may have gone to another worker", "held", len(batch))
		}
		for _, d := range batch {
			if err := d.InProgress(); err != nil {
				w.log.Debug("heartbeat failed", "stream_seq", d.StreamSeq(), "err", err)
			}
		}
	}
}

// errAnsweredElsewhere stops a cascade whose prompt another worker answered.
var errAnsweredElsewhere = errors.New("answered by another worker")

// stillWanted is the cascade's CallGate for t: a delivery that may have
// been redelivered elsewhere (suspect, or heartbeats late right now) checks
// that its prompt has no result before paying for another call. One lookup,
// only in that rare state; when the lookup fails the call goes ahead
// (at-least-once: an answer that loses the race is logged, never stored).
func (w *Worker) stillWanted(t *task, job prompt.Job) cascade.CallGate {
	return func(ctx context.Context) error {
		if !t.suspect.Load() && time.Since(time.Unix(0, w.lastBeat.Load())) < w.cfg.AckWait*2/3 {
			return nil
		}
		t.suspect.Store(true)
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
}

// commitLoop writes finished tasks in batches, then acks, naks or terms each.
func (w *Worker) commitLoop(ctx context.Context) {
	batch := make([]*task, 0, w.cfg.CommitBatch)
	for {
		t, ok := <-w.done
		if !ok {
			return
		}
		batch = append(batch[:0], t)
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
		w.commit(ctx, batch)
	}
}

// commit stores one batch, retrying transient database errors until it
// succeeds or the worker is hard-stopped, then settles every delivery.
func (w *Worker) commit(ctx context.Context, batch []*task) {
	var results []prompt.Result
	var dead []store.DeadLetter
	for _, t := range batch {
		if t.result != nil {
			results = append(results, *t.result)
		}
		if t.dead != nil {
			dead = append(dead, *t.dead)
		}
	}
	if w.cfg.Fault == FaultBeforeCommit && w.faults.Load() >= int64(w.cfg.FaultAfter) {
		w.crash("before-commit")
	}
	// Each write gets its own deadline and outlives a hard stop briefly: a
	// batch already answered is worth one more try before it is handed back
	// (and paid for again).
	write := func(f func(context.Context) error) error {
		dbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return f(dbCtx)
	}
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
		delay := backoff(attempt, 100*time.Millisecond, 5*time.Second)
		w.log.Warn("commit failed; retrying", "err", err, "prompts", len(batch), "retry_in", delay.Round(time.Millisecond))
		sleep(ctx, delay)
	}
	if w.cfg.Fault == FaultAfterCommit {
		if w.faults.Add(int64(len(batch))) > int64(w.cfg.FaultAfter) {
			w.crash("after-commit")
		}
	} else {
		w.faults.Add(int64(len(batch)))
	}
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
	case t.answered:
		w.stats.already.Add(1)
		w.stats.costMicro.Add(int64(t.result.CostUSD * 1e6))
		w.settle(t, t.d.Ack)
	case t.final:
		if t.result.Status == prompt.StatusSucceeded {
			w.stats.succeeded.Add(1)
		} else {
			w.stats.failed.Add(1)
		}
		w.stats.costMicro.Add(int64(t.result.CostUSD * 1e6))
		w.settle(t, t.d.Ack)
	default:
		w.stats.naked.Add(1)
		w.stats.costMicro.Add(int64(t.result.CostUSD * 1e6))
		w.settle(t, func() error { return t.d.NakWithDelay(t.nakIn) })
	}
}

func (w *Worker) settle(t *task, f func() error) {
	w.untrack(t)
	if err := f(); err != nil {
		w.log.Debug("settling delivery failed; it will be redelivered", "stream_seq", t.d.StreamSeq(), "err", err)
	}
	w.slots <- struct{}{}
}

func (w *Worker) crash(point string) {
	w.log.Error("fault injection: exiting now", "point", point)
	os.Exit(137)
}

// backoff is exponential with full jitter: a random delay in [d/2, d] where
// d = base·2^(n-1), capped at max.
func backoff(n int, base, maxDelay time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
