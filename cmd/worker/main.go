// Command worker consumes prompts from the shared JetStream consumer,
// classifies each one, cascades over its tier's models, and stores the answer
// and one log row per attempt in Postgres. Run as many as you like, anywhere
// that reaches NATS and Postgres. Configuration is read from the environment;
// see the README's configuration table.
//
//	worker [--exit-when-idle]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/promptcascade/promptcascade/cmd/internal/connect"
	"github.com/promptcascade/promptcascade/cmd/internal/cpuprofile"
	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/gctune"
	"github.com/promptcascade/promptcascade/internal/metrics"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/router"
	"github.com/promptcascade/promptcascade/internal/store"
	"github.com/promptcascade/promptcascade/internal/tokens"
	"github.com/promptcascade/promptcascade/internal/wire"
	"github.com/promptcascade/promptcascade/internal/worker"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	exitIdle := fs.Bool("exit-when-idle", false, "exit 0 once the consumer has nothing pending and nothing is in flight (also WORKER_EXIT_WHEN_IDLE)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (go tool pprof) of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := config.LoadWorker(ctx, nil)
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 2
	}
	if *exitIdle {
		cfg.ExitWhenIdle = true
	}
	log := config.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat).With("worker", cfg.WorkerID)
	// At least half as many collections as Go's default: the hot path
	// allocates per prompt and the heap is small (README, GC_HEAP_FLOOR_MB).
	tuner, overridden := gctune.StartUnlessOverridden(os.LookupEnv, uint64(cfg.GCHeapFloorMB)<<20, 200)
	defer tuner.Stop()
	if overridden != "" {
		log.Debug("GC_HEAP_FLOOR_MB not applied: the Go runtime's own setting is given", "var", overridden)
	}
	if *cpuProfile != "" {
		stopProfile, err := cpuprofile.Start(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "worker: --cpuprofile:", err)
			return 2
		}
		defer func() {
			if err := stopProfile(); err != nil {
				log.Error("cpu profile not written", "file", *cpuProfile, "err", err)
			}
		}()
	}
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("worker stopped", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg *config.Worker, log *slog.Logger) error {
	prices, err := config.LoadPrices(cfg.PricingFile)
	if err != nil {
		return err
	}
	routes, err := config.LoadRoutes(cfg.RoutesFile, prices)
	if err != nil {
		return err
	}
	reg, err := wire.Registry(routes, cfg.Keys, os.LookupEnv)
	if err != nil {
		return err
	}
	cs := wire.CascadeSettings(routes, cfg.Seed)
	cs.MaxInFlight = cfg.Concurrency // no model's limiter needs more than the worker's slots
	cas, err := cascade.New(cs, reg, log)
	if err != nil {
		return err
	}
	cl, err := classifierFor(routes, log)
	if err != nil {
		return err
	}

	var st *store.Store
	st, err = store.Open(ctx, cfg.Postgres.DatabaseURL, store.WithStorePrompts(cfg.Postgres.StorePrompts),
		store.WithPrices(batchPrices(func() routesSource { return st }, prices, routePrices(routes), log)),
		store.WithMinConns(int32(worker.Config{Concurrency: cfg.Concurrency}.Conns())))
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	if err := ensurePartitions(ctx, st, log); err != nil {
		return err
	}
	partitionsDone := make(chan struct{})
	defer close(partitionsDone)
	go keepPartitions(ctx, st, log, partitionsDone)

	qc, err := connect.Queue(ctx, cfg.NATS, log)
	if err != nil {
		return err
	}
	defer qc.Close()
	if _, err := qc.EnsureStream(ctx); err != nil {
		return err
	}
	cons, err := qc.EnsureConsumer(ctx)
	if err != nil {
		return err
	}

	pbr, err := batchRunner(cfg, routes, reg, cas, st, qc, log)
	if err != nil {
		return err
	}
	var waiting func(context.Context) (int, error)
	if pbr != nil {
		waiting = waitingFunc(st.Pool())
		// The submitter and poller run beside the worker and stop with it.
		pbCtx, stopPB := context.WithCancel(ctx)
		pbDone := make(chan struct{})
		go func() { defer close(pbDone); _ = pbr.Run(pbCtx) }()
		defer func() { stopPB(); <-pbDone }()
	}

	src := queue.NewSource(qc, cons)
	var w *worker.Worker
	mx := metrics.New(metrics.Options{
		BatchLabels: cfg.MetricsBatchLabels,
		Stats:       func() worker.Stats { return w.Stats() },
		Pending:     src.PendingByPriority,
		Limiters:    cas.Limits,
	})
	w = worker.New(worker.Config{
		WorkerID:        cfg.WorkerID,
		Concurrency:     cfg.Concurrency,
		CommitBatch:     cfg.CommitBatch,
		CommitInterval:  cfg.CommitInterval,
		AckWait:         qc.Config().AckWait,
		MaxDeliver:      qc.Config().MaxDeliver,
		DrainTimeout:    cfg.DrainTimeout,
		MaxMessageBytes: qc.MessageLimit(),
		ExitWhenIdle:    cfg.ExitWhenIdle,
		TokenCount:      tokens.Count,
		Hooks:           faultHooks(cfg.Fault, cfg.FaultAfter, log),
		Batches:         st,
		Routes:          batchRoutes(cfg, prices, st, log),
		Waiting:         waiting,
		Observer:        mx,
		Park:            parkInStream(cfg.Postgres.StorePrompts, qc),
		Load:            st,
	}, src, st, cl, cas, log)

	if cfg.MetricsAddr != "" {
		ln, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("METRICS_ADDR: %w", err)
		}
		srv := &http.Server{Handler: mx.Handler(readiness(qc, st, src)), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer func() { _ = srv.Close() }()
		log.Info("metrics listening", "addr", ln.Addr().String())
	}

	log.Info("worker started", "concurrency", w.Config().Concurrency, "routes", routes.Source,
		"stream", qc.Config().Stream, "consumer", qc.Config().Consumer)
	start := time.Now()
	progressDone := make(chan struct{})
	defer close(progressDone)
	go logProgress(w, cas, log, 30*time.Second, progressDone)
	err = w.Run(ctx)
	s := w.Stats()
	log.Info("worker stopped", "elapsed", time.Since(start).Round(time.Millisecond), "succeeded", s.Succeeded,
		"failed", s.Failed, "requeued", s.Naked, "dead_lettered", s.DeadLettered, "already_done", s.AlreadyDone, "exhausted", s.Exhausted,
		"parked", s.Parked, "canceled", s.Canceled, "handed_off", s.HandedOff, "cost_usd", float64(s.CostMicroUSD)/1e6)
	return err
}

// classifierFor is the routes' classifier: the heuristic, or the learned
// router when the routes name one.
func classifierFor(routes *config.Routes, log *slog.Logger) (worker.Classifier, error) {
	heur, err := classify.New(routes.Classifier)
	if err != nil {
		return nil, err
	}
	l := routes.Learned
	if l == nil {
		return heur, nil
	}
	cl, err := router.NewClassifier(l.Router, l.Cutoffs, heur)
	if err != nil {
		return nil, err
	}
	log.Info("learned router", "routes", routes.Source, "file", l.Path, "cheap", l.Router.Meta.Cheap, "strong", l.Router.Meta.Strong,
		"moderate_from", l.Cutoffs.Moderate, "complex_from", l.Cutoffs.Complex)
	return cl, nil
}

// batchRoutes builds the classifier and cascade of a batch's own routes
// (enqueue --routes, retry --routes) from the file stored in Postgres, the
// same way as the worker's own. A provider key this worker lacks fails the
// build: the worker hands the batch's prompts back for another worker.
// Batch-mode models of such routes are called synchronously (the provider
// batch runner serves the worker's ROUTES_FILE only).
func batchRoutes(cfg *config.Worker, prices *pricing.Table, st *store.Store, log *slog.Logger) worker.BatchRoutes {
	return func(ctx context.Context, sum []byte) (worker.Classifier, worker.Runner, error) {
		yaml, source, err := st.Routes(ctx, sum)
		if err != nil {
			return nil, nil, err
		}
		routes, err := config.ParseRoutes(source, bytes.NewReader(yaml), prices)
		if err != nil {
			return nil, nil, err
		}
		reg, err := wire.Registry(routes, cfg.Keys, os.LookupEnv)
		if err != nil {
			return nil, nil, err
		}
		cs := wire.CascadeSettings(routes, cfg.Seed)
		cs.MaxInFlight = cfg.Concurrency
		for name, m := range cs.Models {
			m.Batch = false
			cs.Models[name] = m
		}
		cas, err := cascade.New(cs, reg, log.With("routes", source))
		if err != nil {
			return nil, nil, err
		}
		cl, err := classifierFor(routes, log)
		if err != nil {
			return nil, nil, err
		}
		return cl, cas, nil
	}
}

// logProgress logs the worker's counters every interval while they change,
// so that a long batch shows its progress in the worker's own log.
func logProgress(w *worker.Worker, lims limitsSource, log *slog.Logger, interval time.Duration, done <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last worker.Stats
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		s := w.Stats()
		if s == last {
			continue
		}
		rate := float64(s.Succeeded+s.Failed-last.Succeeded-last.Failed) / interval.Seconds()
		log.Info("progress", "succeeded", s.Succeeded, "failed", s.Failed, "requeued", s.Naked,
			"dead_lettered", s.DeadLettered, "in_flight", s.InFlight, "prompts_per_s", math.Round(rate*10)/10,
			"cost_usd", float64(s.CostMicroUSD)/1e6, "models", limitsSummary(lims.Limits()))
		last = s
	}
}

// readiness is /readyz: connected to NATS, Postgres answers, and the
// consumer exists (its state can be read from JetStream).
func readiness(qc *queue.Conn, st *store.Store, src worker.Source) func(context.Context) error {
	return func(ctx context.Context) error {
		if !qc.NATS().IsConnected() {
			return errors.New("not connected to NATS")
		}
		if err := st.Pool().Ping(ctx); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		if _, _, err := src.Pending(ctx); err != nil {
			return fmt.Errorf("consumer: %w", err)
		}
		return nil
	}
}

// ensurePartitions creates request_log's partitions for this month and the
// next store.DefaultPartitionsAhead, so that attempts never wait in the
// default partition.
func ensurePartitions(ctx context.Context, st *store.Store, log *slog.Logger) error {
	n, err := st.EnsurePartitions(ctx, time.Now(), store.DefaultPartitionsAhead)
	if err != nil {
		return err
	}
	if n > 0 {
		log.Info("created request_log partitions", "count", n)
	}
	return nil
}

// keepPartitions runs ensurePartitions once a day for a long-running worker;
// a failure is logged and tried again the next day (months are created two
// ahead, so one failed day loses nothing).
func keepPartitions(ctx context.Context, st *store.Store, log *slog.Logger, done <-chan struct{}) {
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			if err := ensurePartitions(ctx, st, log); err != nil {
				log.Warn("request_log partitions not created; trying again in 24h", "err", err)
			}
		}
	}
}

// parkInStream is worker.Config.Park: with STORE_PROMPTS=false a paused
// batch's messages wait in the stream (queue.ParkedSubject) instead of in
// batch_parked, which keeps only their ids; nil otherwise.
func parkInStream(storePrompts bool, qc *queue.Conn) func(context.Context, worker.Delivery, prompt.Job) error {
	if storePrompts {
		return nil
	}
	return func(ctx context.Context, d worker.Delivery, job prompt.Job) error {
		return qc.Park(ctx, job.BatchID, job.ID, d.StreamSeq(), d.Data())
	}
}
