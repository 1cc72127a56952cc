// Package worker runs the consume → classify → cascade → store → ack loop of
// one worker process. It keeps up to Concurrency prompts in flight, fetches
// only as many messages as it has free slots, commits finished prompts in
// small batches, and acks each message only after its batch has committed.
package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/store"
)

// Delivery is one message from the queue, held until settled (queue.Held).
type Delivery = queue.Held

// Source hands out deliveries of the shared durable consumer. Every
// ability the worker relies on is part of it, so that a wrapper (a test's,
// a metrics decorator) cannot lose one silently: recovery of a deleted
// stream or consumer (Recoverer) and the settling of messages the server
// gave up on (ExhaustedSource). queue.Source implements it.
type Source interface {
	// Fetch returns up to n deliveries, waiting at most maxWait for the first.
	Fetch(ctx context.Context, n int, maxWait time.Duration) ([]Delivery, error)
	// Pending reports messages not yet delivered and deliveries not yet acked,
	// across every worker of the consumer.
	Pending(ctx context.Context) (pending, ackPending uint64, err error)
	Recoverer
	ExhaustedSource
}

// Store persists results, attempts and dead letters, and looks up the
// response cache (for routes with cache: on). The cache is part of the
// interface, not an ability found by type assertion, so that a wrapper of
// the store keeps it.
type Store interface {
	Existing(ctx context.Context, keys []store.Key) (map[store.Key]bool, error)
	Write(ctx context.Context, rs []prompt.Result) ([]bool, error)
	DeadLetters(ctx context.Context, dls []store.DeadLetter) error
	cascade.ResponseCache
}

// Classifier assigns a prompt its tier and measures its signals: the
// article's heuristic (classify.Classifier) or a learned router
// (router.Classifier), which also sets Signals.Score.
type Classifier interface {
	Classify(text string) (prompt.Tier, prompt.Signals)
}

// Runner answers one prompt by cascading over its tier's models.
type Runner interface {
	Run(ctx context.Context, job prompt.Job, tier prompt.Tier, sig prompt.Signals, delivery int) cascade.Outcome
}

// Config tunes a Worker. Zero values take the defaults noted.
type Config struct {
	WorkerID    string
	Concurrency int // prompts in flight (64)
	FetchBatch  int // most messages asked for per fetch (256)
	// Prefetch is how many deliveries are fetched (decoded, checked for an
	// existing result) ahead of the slots, so that a slot that frees starts
	// its next prompt at once instead of after a fetch and a Postgres round
	// trip (Concurrency/4, at least 1). They are heartbeated while they
	// wait. A quarter of the slots is what slots that free at the rate
	// Concurrency/latency use up in a quarter of the model's latency: the
	// fetch, the existence check and the batch states of the next group
	// must take less than that, or slots wait for them. (Capped at
	// FetchBatch, 256 ahead of 5,000 slots on a 200 ms model left 10 ms for
	// all of it at 25k prompts/s; the worker did 12k/s.)
	Prefetch        int
	FetchMaxWait    time.Duration // longest wait for a fetch (500ms)
	CommitBatch     int           // most prompts per commit (512)
	Committers      int           // commits that may run at once (4)
	CommitInterval  time.Duration // longest a finished prompt waits for its commit (20ms)
	AckWait         time.Duration // consumer's AckWait; heartbeats go every third of it (queue.DefaultAckWait)
	MaxDeliver      int           // consumer's MaxDeliver; the last delivery stores a failure instead of a nak (queue.DefaultMaxDeliver)
	NakBase         time.Duration // first redelivery delay after a transient failure (1s)
	NakMax          time.Duration // cap of the redelivery delay (2m)
	DrainTimeout    time.Duration // on stop, how long in-flight prompts may finish (25s)
	MaxMessageBytes int           // the prompt-size rule's limit (queue.MessageSize); larger jobs are dead-lettered (queue.DefaultMaxMessageBytes)
	ExitWhenIdle    bool          // return once the consumer has nothing pending or in flight
	RecoverTries    int           // tries to recreate a consumer that cannot be recreated (queue.Permanent) before Run fails with ErrSourceGone (8: 10-20 s)
	RecoverTimeout  time.Duration // longest one attempt to recreate the stream and consumer may take (5s)
	RecoverMaxWait  time.Duration // cap of the pause between attempts while the broker is down (5s); a down broker is waited for without limit
	SweepInterval   time.Duration // how often the stream is scanned for exhausted messages, besides advisories (30s)
	TokenCount      func(string) int
	// Now is the clock for outage logging (a line a minute); nil means time.Now.
	Now      func() time.Time
	Hooks    Hooks
	Observer Observer // told about settlements and commits (metrics); nil: nobody
	// Batches tells which batches are paused or canceled (nil: all run).
	// It is read at most store.ControlMaxAge before each model call.
	Batches BatchControls
	// Routes builds a batch's own routes (nil: every batch runs on the
	// worker's); it needs Batches, which tells which batches have some.
	Routes BatchRoutes
	// Park, when set, keeps a paused batch's message in the stream
	// (queue.Conn.Park) before its batch_parked row is committed, and the
	// row then holds only the prompt's id: cmd/worker sets it with
	// STORE_PROMPTS=false, so that no prompt text is kept in Postgres. Nil:
	// batch_parked keeps the message body. A failure hands the message back.
	Park func(ctx context.Context, d Delivery, job prompt.Job) error
	// Waiting, when set, counts prompts that wait outside the queue and
	// will come back to it (provider batch items); ExitWhenIdle waits for
	// it to be 0 too.
	Waiting func(ctx context.Context) (int, error)
	// Load, when set, is told every LoadInterval (DefaultLoadInterval)
	// how many prompts of each batch this worker has in flight and
	// waiting (load.go); cascadectl status sums the workers' reports.
	Load         LoadStore
	LoadInterval time.Duration
}

// Hooks are called at fixed points of a prompt's way through the worker,
// synchronously, with the number of prompts committed so far by this worker.
// A nil hook is off. cmd/worker turns them into crashes for the kill -9
// fault tests; the worker itself never ends the process.
type Hooks struct {
	// BeforeCall runs when a prompt is about to be classified and its
	// cascade started.
	BeforeCall func(committed int)
	// BeforeCommit runs when a batch is about to be written.
	BeforeCommit func(committed int)
	// AfterCommit runs when a batch has committed, before any of its
	// deliveries is acked; committed includes the batch.
	AfterCommit func(committed int)
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
	def(&c.Prefetch, max(c.Concurrency/4, 1))
	def(&c.CommitBatch, 512)
	def(&c.Committers, 4)
	def(&c.MaxDeliver, queue.DefaultMaxDeliver)
	def(&c.MaxMessageBytes, queue.DefaultMaxMessageBytes)
	def(&c.RecoverTries, 8)
	defd(&c.RecoverTimeout, 5*time.Second)
	defd(&c.RecoverMaxWait, 5*time.Second)
	if c.Now == nil {
		c.Now = time.Now
	}
	defd(&c.SweepInterval, 30*time.Second)
	defd(&c.FetchMaxWait, 500*time.Millisecond)
	defd(&c.CommitInterval, 20*time.Millisecond)
	defd(&c.AckWait, queue.DefaultAckWait)
	defd(&c.NakBase, time.Second)
	defd(&c.NakMax, 2*time.Minute)
	defd(&c.DrainTimeout, 25*time.Second)
	defd(&c.LoadInterval, DefaultLoadInterval)
	if c.Observer == nil {
		c.Observer = noObserver{}
	}
	if c.TokenCount == nil {
		c.TokenCount = func(string) int { return 0 }
	}
}

// Stats are the worker's counters since start.
type Stats struct {
	Fetched, Succeeded, Failed, Naked, DeadLettered, AlreadyDone, CommitErrors int64
	InFlight                                                                   int64
	CostMicroUSD                                                               int64
	// Recovered counts recoveries after a fetch found the consumer gone
	// (deleted, or a broker shutting down); Exhausted counts messages
	// settled after the server stopped delivering them (MaxDeliver).
	Recovered, Exhausted int64
	// Parked counts prompts set aside because their batch was paused;
	// Canceled counts prompts dropped because their batch was canceled.
	Parked, Canceled int64
	// HandedOff counts prompts recorded for a batch-mode model's provider
	// batch (internal/providerbatch answers them later).
	HandedOff int64
}

// Worker processes deliveries until stopped.
type Worker struct {
	cfg    Config
	src    Source
	store  Store
	class  Classifier
	runner Runner
	log    *slog.Logger
	ctl    *controls
	routes *batchRoutes

	// credits bound the deliveries held before their work ends (fetched,
	// waiting for a slot, or worked): Concurrency + Prefetch. slots bound
	// the prompts worked at once: Concurrency. A delivery takes a credit
	// when fetched and a slot when its work starts, and gives both back
	// when its work ends.
	credits chan struct{}
	slots   *slotGate
	// jobs hands prompts to idle process goroutines (procs owns them).
	// idleProcs are the process goroutines waiting for a prompt, each by its
	// own channel, the last idle last (work); procs counts them all.
	idleMu      sync.Mutex
	idleProcs   []chan procJob
	procsClosed bool
	procs       sync.WaitGroup
	// trail holds a token for each task handed to the committer: a slot is
	// freed as soon as its prompt's work ends, and the commits and acks
	// that follow are bounded by trail's capacity (Concurrency, or what the
	// committers take at once when that is more).
	trail chan struct{}
	done  chan *task
	hbMu  sync.Mutex
	hb    map[*task]struct{}
	// working is the delivery worked for each prompt now (trackWorking).
	working map[store.Key]*task
	stats   struct {
		fetched, succeeded, failed, naked, dead, already, commitErrs, inflight, costMicro, recovered, exhausted atomic.Int64
		parked, canceled, handedOff                                                                             atomic.Int64
	}
	load loads // prompts in flight and waiting per batch (load.go)
	// committed counts prompts (and dead letters) this worker has committed, for Hooks.
	committed atomic.Int64
	// lastBeat is when the heartbeat loop last ran (Unix nanoseconds).
	lastBeat atomic.Int64
	sweeps   sync.Mutex // one sweep for exhausted messages at a time
}

// New returns a worker. It does nothing until Run.
func New(cfg Config, src Source, st Store, cl Classifier, r Runner, log *slog.Logger) *Worker {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	trailing := max(cfg.Concurrency, cfg.Committers*cfg.CommitBatch)
	w := &Worker{cfg: cfg, src: src, store: st, class: cl, runner: r, log: log,
		credits: make(chan struct{}, cfg.Concurrency+cfg.Prefetch),
		slots:   newSlotGate(cfg.Concurrency),
		trail:   make(chan struct{}, trailing),
		done:    make(chan *task, trailing),
		hb:      make(map[*task]struct{}),
		working: make(map[store.Key]*task),
		ctl:     newControls(cfg.Batches, log),
	}
	if cfg.Routes != nil {
		w.routes = &batchRoutes{build: cfg.Routes, sets: map[string]*routeSet{}}
	}
	for range cap(w.credits) {
		w.credits <- struct{}{}
	}
	return w
}

// Conns is how many Postgres connections a worker with configuration c
// keeps busy at most: one per committer, and a few for the existence checks
// of fetched groups, batch states and budget holds. The Store's pool should
// have at least as many (store.WithMinConns).
func (c Config) Conns() int {
	c.setDefaults()
	return c.Committers + 4
}

// Config returns the worker's configuration, defaults applied.
func (w *Worker) Config() Config { return w.cfg }

// Stats returns a snapshot of the counters.
func (w *Worker) Stats() Stats {
	s := &w.stats
	return Stats{Fetched: s.fetched.Load(), Succeeded: s.succeeded.Load(), Failed: s.failed.Load(),
		Naked: s.naked.Load(), DeadLettered: s.dead.Load(), AlreadyDone: s.already.Load(),
		CommitErrors: s.commitErrs.Load(), InFlight: s.inflight.Load(), CostMicroUSD: s.costMicro.Load(),
		Recovered: s.recovered.Load(), Exhausted: s.exhausted.Load(),
		Parked: s.parked.Load(), Canceled: s.canceled.Load(), HandedOff: s.handedOff.Load()}
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
	// For every prompt's cascade (looked up only by routes with the
	// response cache on); set once, not per prompt.
	workCtx = cascade.WithResponseCache(workCtx, w.store)

	var commitWG, hbWG, procWG sync.WaitGroup
	batches := make(chan []*task)
	commitWG.Add(1)
	go func() {
		defer commitWG.Done()
		w.batchLoop(batches)
	}()
	for range w.cfg.Committers {
		commitWG.Add(1)
		go func() {
			defer commitWG.Done()
			w.commitLoop(workCtx, batches)
		}()
	}
	hbStop := make(chan struct{})
	w.lastBeat.Store(time.Now().UnixNano())
	hbWG.Add(1)
	go func() {
		defer hbWG.Done()
		w.heartbeatLoop(hbStop)
	}()
	hbWG.Add(1)
	go func() {
		defer hbWG.Done()
		w.exhaustedLoop(workCtx, w.src, hbStop)
	}()
	hbWG.Add(1)
	go func() {
		defer hbWG.Done()
		w.loadLoop(hbStop)
	}()

	err := w.fetchLoop(ctx, workCtx, &procWG)

	// Drain: let in-flight prompts finish and commit; past DrainTimeout,
	// cancel their calls and hand them back to the queue.
	hard := time.AfterFunc(w.cfg.DrainTimeout, func() {
		w.log.Warn("drain timeout passed; cancelling in-flight calls", "in_flight", w.stats.inflight.Load())
		hardStop(errDrainTimeout)
	})
	procWG.Wait()
	w.closeProcs()
	w.procs.Wait()
	close(w.done)
	commitWG.Wait()
	hard.Stop()
	close(hbStop)
	hbWG.Wait()
	return err
}
