// Command enqueue publishes prompts from JSONL, OpenAI Batch, CSV or text
// files to JetStream as one named batch, and records the batch in Postgres.
//
//	enqueue [--batch NAME] [--format auto|jsonl|openai-batch|csv|text] [--strict] [--routes FILE] [--budget USD|auto] [--priority high|normal|low] FILE... | -
//
// Bad lines are reported on stderr as file:line: reason and skipped; good
// lines still go through, and the exit status is 1 if any line was rejected.
// With --strict every file is validated first and nothing is published if any
// line is bad. Running it again with the same batch and files publishes
// nothing twice: message ids are batch/id, and workers skip answered prompts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/promptcascade/promptcascade/cmd/internal/connect"
	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/estimate"
	"github.com/promptcascade/promptcascade/internal/input"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/store"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stderr))
}

type options struct {
	batch  string
	format input.Format
	strict bool
	quiet  bool
	files  []string
	chunk  int
	budget string // "", "auto" or an amount in USD
	routes string // the batch's own routes file ("": the workers' ROUTES_FILE)
	// priority is high, normal or low; "": the batch's recorded one
	// (normal for a new batch).
	priority string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("enqueue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{chunk: 1000}
	format := fs.String("format", "auto", "input format: auto, jsonl, openai-batch, csv or text")
	fs.StringVar(&o.batch, "batch", "", "batch name (letters, digits, _ and -); default: the first file's base name")
	fs.BoolVar(&o.strict, "strict", false, "validate every line first; publish nothing if any line is bad")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	fs.StringVar(&o.routes, "routes", "", "the batch's own routes file (validated; stored in Postgres; workers apply it to this batch)")
	fs.StringVar(&o.budget, "budget", "", "cap the batch's spend: an amount in USD, or auto (the estimate if every prompt cascades)")
	fs.StringVar(&o.priority, "priority", "", "high, normal or low: workers take high batches first, then normal, then low (default: the batch's recorded priority, normal for a new batch)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: enqueue [--batch NAME] [--format auto|jsonl|openai-batch|csv|text] [--strict] [--routes FILE] [--budget USD|auto] [--priority high|normal|low] FILE... | -")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	f, err := input.ParseFormat(*format)
	if err != nil {
		return nil, fmt.Errorf("--format: %w", err)
	}
	o.format = f
	o.files = fs.Args()
	if len(o.files) == 0 {
		fs.Usage()
		return nil, errors.New("no input files (use - for stdin)")
	}
	if o.batch == "" {
		if o.files[0] == "-" {
			o.batch = "stdin"
		} else {
			base := filepath.Base(o.files[0])
			o.batch = strings.TrimSuffix(base, filepath.Ext(base))
		}
	}
	if err := queue.ValidBatchName(o.batch); err != nil {
		return nil, fmt.Errorf("--batch: %w", err)
	}
	if err := queue.ValidPriority(o.priority); err != nil {
		return nil, fmt.Errorf("--priority: %w", err)
	}
	if o.budget != "" && o.budget != "auto" {
		if _, err := store.ParseUSD(o.budget); err != nil {
			return nil, fmt.Errorf("--budget: %w", err)
		}
	}
	return o, nil
}

func run(args []string, stdin io.Reader, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "enqueue:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.LoadEnqueue(ctx, nil)
	if err != nil {
		fmt.Fprintln(stderr, "enqueue:", err)
		return 2
	}
	log := config.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	e := &enqueuer{o: o, cfg: cfg, stdin: stdin, stderr: stderr}
	defer e.cleanup()
	if err := e.run(ctx, log); err != nil {
		e.bar.clear()
		fmt.Fprintln(stderr, "enqueue:", err)
		return 1
	}
	if e.rejected > 0 {
		return 1
	}
	return 0
}

type enqueuer struct {
	o      *options
	cfg    *config.Enqueue
	stdin  io.Reader
	stderr io.Writer
	bar    *progress
	limit  int // the prompt-size rule's limit (queue.Conn.MessageLimit)
	// priority is what the jobs carry (setPriority): "" for normal.
	priority string

	// seen maps an id's hash to the index of the file that had it, to find
	// ids repeated across files (each file's reader finds its own repeats).
	// Only kept when there are several files.
	seen     map[uint64]int
	seed     maphash.Seed
	spooled  []string // temp copies of stdin, removed at the end
	accepted int
	rejected int
	est      *estimate.Estimator // set while --budget auto prices the input
	silent   bool                // rejects are counted, not printed (the pricing pass)
}

// open opens one input ("-" is stdin; under --strict stdin has been spooled
// to a temp file first, so that it can be read twice).
func (e *enqueuer) open(name string) (io.ReadCloser, error) {
	if name == "-" {
		return io.NopCloser(e.stdin), nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || st.IsDir() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s: is a directory", name)
		}
		return nil, err
	}
	return f, nil
}

func (e *enqueuer) run(ctx context.Context, log *slog.Logger) error {
	st, err := store.Open(ctx, e.cfg.Postgres.DatabaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	// Connected first: the server's max_payload bounds the prompt-size
	// limit that every line is checked against.
	qc, err := connect.Queue(ctx, e.cfg.NATS, log)
	if err != nil {
		return err
	}
	defer qc.Close()
	e.limit = qc.MessageLimit()
	if e.o.strict {
		if err := e.spoolStdin(); err != nil {
			return err
		}
		// Only check: bad lines, and ids the batch already holds with
		// another prompt.
		check := newChunker(e.o.chunk, func(items []item) error {
			bad, err := st.EnqueueConflicts(ctx, e.o.batch, entries(items))
			for _, i := range bad {
				e.conflict(items[i])
			}
			return err
		})
		if err := e.each(ctx, false, check.add); err != nil {
			return err
		}
		if err := check.flush(); err != nil {
			return err
		}
		if e.rejected > 0 {
			return fmt.Errorf("--strict: %d bad line(s); nothing published", e.rejected)
		}
		e.accepted, e.seen = 0, nil
	}

	if _, err := qc.EnsureStream(ctx); err != nil {
		return err
	}
	if err := e.setPriority(ctx, st); err != nil {
		return err
	}
	if e.o.routes != "" {
		if err := e.setRoutes(ctx, st); err != nil {
			return err
		}
	}
	if e.o.budget != "" {
		if err := e.setBudget(ctx, st); err != nil {
			return err
		}
	}
	if e.o.routes != "" || e.o.budget != "" {
		// Every worker knows the batch's routes and budget before its
		// first message (store.ControlSettle).
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(store.ControlSettle):
		}
	}

	start := time.Now()
	pub := queue.NewPublisher(qc, e.cfg.MaxPending)
	publish := newChunker(e.o.chunk, func(items []item) error {
		// Record the ids first: a crash between the two leaves prompts that
		// `cascadectl verify` reports as missing, never prompts it cannot see.
		bad, err := st.RecordEnqueued(ctx, e.o.batch, entries(items))
		if err != nil {
			return err
		}
		for i, it := range items {
			if len(bad) > 0 && bad[0] == i {
				bad = bad[1:]
				e.conflict(it)
				continue
			}
			if err := pub.PublishMessage(ctx, it.msg); err != nil {
				return err
			}
		}
		return nil
	})
	err = e.each(ctx, true, publish.add)
	if err == nil {
		err = publish.flush()
	}
	stats, werr := pub.Wait(ctx)
	e.bar.clear()
	if err = errors.Join(err, werr); err != nil {
		return fmt.Errorf("%w (published %d before stopping; run the same command again to finish: nothing is published twice)", err, stats.Published)
	}
	if err := st.UpsertBatch(ctx, e.o.batch, e.accepted); err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Fprintf(e.stderr, "batch %s: published %d, duplicates %d, rejected %d (%.1fs, %.0f prompts/s)\n",
		e.o.batch, stats.Published, stats.Duplicates, e.rejected, el.Seconds(), float64(stats.Published+stats.Duplicates)/max(el.Seconds(), 1e-9))
	return nil
}

// item is one good line on its way to the queue, encoded.
type item struct {
	id   string
	msg  queue.Message
	hash []byte // queue.ContentHash of the job
	file string // as errors name it
	line int
}

func entries(items []item) []store.Enqueued {
	out := make([]store.Enqueued, len(items))
	for i, it := range items {
		out[i] = store.Enqueued{ID: it.id, ContentHash: it.hash}
	}
	return out
}

// chunker hands items to do a chunk at a time (one Postgres round trip per
// chunk, and memory bounded by the chunk whatever the input size).
type chunker struct {
	items []item
	do    func([]item) error
}

func newChunker(size int, do func([]item) error) *chunker {
	return &chunker{items: make([]item, 0, size), do: do}
}

func (c *chunker) add(it item) error {
	c.items = append(c.items, it)
	if len(c.items) == cap(c.items) {
		return c.flush()
	}
	return nil
}

func (c *chunker) flush() error {
	if len(c.items) == 0 {
		return nil
	}
	err := c.do(c.items)
	clear(c.items) // drop the prompts' text
	c.items = c.items[:0]
	return err
}

// conflict rejects a line whose id the batch already holds with another
// prompt: it is not recorded and not published.
func (e *enqueuer) conflict(it item) {
	e.accepted--
	e.reject(fmt.Sprintf("%s:%d: id %q is already in batch %q with a different prompt", it.file, it.line, it.id, e.o.batch))
}

func (e *enqueuer) spoolStdin() error {
	for i, f := range e.o.files {
		if f != "-" {
			continue
		}
		tmp, err := os.CreateTemp("", "enqueue-stdin-*")
		if err != nil {
			return err
		}
		if _, err := io.Copy(tmp, e.stdin); err != nil {
			tmp.Close()
			return fmt.Errorf("reading stdin: %w", err)
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		e.o.files[i] = tmp.Name()
		e.spooled = append(e.spooled, tmp.Name())
	}
	return nil
}

// display is how errors name the index-th input.
func (e *enqueuer) display(index int) string {
	name := e.o.files[index]
	if name == "-" || slices.Contains(e.spooled, name) {
		return "stdin"
	}
	return name
}

func (e *enqueuer) cleanup() {
	for _, f := range e.spooled {
		_ = os.Remove(f)
	}
}

// each reads every file and calls emit for each good line; bar says whether
// a progress bar may show.
func (e *enqueuer) each(ctx context.Context, bar bool, emit func(item) error) error {
	e.seen = nil
	if len(e.o.files) > 1 {
		e.seen = make(map[uint64]int)
		e.seed = maphash.MakeSeed()
	}
	now := time.Now().UTC()
	var total int64
	for _, name := range e.o.files {
		if name != "-" {
			if st, err := os.Stat(name); err == nil {
				total += st.Size()
			}
		}
	}
	e.bar = newProgress(e.stderr, total, !e.o.quiet && bar)
	for i, name := range e.o.files {
		if err := e.file(ctx, i, name, now, emit); err != nil {
			return err
		}
	}
	e.bar.clear()
	return nil
}

func (e *enqueuer) file(ctx context.Context, index int, name string, now time.Time, emit func(item) error) error {
	rc, err := e.open(name)
	if err != nil {
		return err
	}
	defer rc.Close()
	display := e.display(index)
	rd, err := input.NewReader(e.bar.reader(rc), display, e.o.format, input.Options{})
	if err != nil {
		return err
	}
	for {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", context.Cause(ctx))
		}
		job, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var le *input.LineError
		if errors.As(err, &le) {
			e.reject(le.Error())
			continue
		}
		if err != nil {
			return err
		}
		if e.seen != nil {
			h := maphash.String(e.seed, job.ID)
			if prev, dup := e.seen[h]; dup && prev != index {
				e.reject(fmt.Sprintf("%s:%d: duplicate id %q (already in %s); give ids that are unique across the batch's files",
					display, rd.Line(), job.ID, e.display(prev)))
				continue
			}
			e.seen[h] = index
		}
		if e.est != nil {
			e.est.Add(job)
		}
		job.BatchID = e.o.batch
		job.EnqueuedAt = now
		job.Seq = int64(e.accepted + 1) // input order, for exports
		job.Priority = e.priority
		// The prompt-size rule, before anything is recorded: a line over
		// the limit is a bad line like any other, and the rest goes on.
		// Every error of EncodeJob is about this one job.
		msg, err := queue.EncodeJob(job, e.limit)
		if err != nil {
			e.reject(fmt.Sprintf("%s:%d: %v", display, rd.Line(), err))
			continue
		}
		e.accepted++
		e.bar.count(e.accepted, e.rejected)
		if err := emit(item{id: job.ID, msg: msg, hash: queue.ContentHash(job), file: display, line: rd.Line()}); err != nil {
			return err
		}
	}
}

func (e *enqueuer) reject(msg string) {
	e.rejected++
	if e.silent {
		return
	}
	e.bar.clear()
	fmt.Fprintln(e.stderr, msg)
}

// setBudget gives the batch its budget before anything is published, and
// waits until every worker knows it (store.ControlSettle), so that no call
// of the batch goes unreserved. auto prices the input first: the estimate
// if every prompt cascades to its tier's last model (cascadectl estimate).
func (e *enqueuer) setBudget(ctx context.Context, st *store.Store) error {
	usd, how := 0.0, ""
	if e.o.budget == "auto" {
		if err := e.spoolStdin(); err != nil {
			return err
		}
		prices, err := config.LoadPrices(e.cfg.PricingFile)
		if err != nil {
			return err
		}
		routes, err := config.LoadRoutes(e.routesFile(), prices)
		if err != nil {
			return err
		}
		cl, err := classify.New(routes.Classifier)
		if err != nil {
			return err
		}
		if e.est, err = estimate.New(estimate.FromRoutes(routes, cl, nil)); err != nil {
			return err
		}
		accepted, rejected := e.accepted, e.rejected
		e.silent = true
		err = e.each(ctx, false, func(item) error { return nil })
		res := e.est.Result()
		e.est, e.silent, e.accepted, e.rejected, e.seen = nil, false, accepted, rejected, nil
		if err != nil {
			return err
		}
		usd = res.Total.CostHighUSD
		how = fmt.Sprintf(" (auto: every prompt cascading to its tier's last model, routes %s)", routes.Source)
	} else {
		usd, _ = store.ParseUSD(e.o.budget)
	}
	if err := st.UpsertBatch(ctx, e.o.batch, 0); err != nil {
		return err
	}
	if _, _, err := st.SetBudget(ctx, e.o.batch, &usd); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "batch %s: budget $%.6f%s\n", e.o.batch, usd, how)
	return nil
}

// setPriority records --priority with the batch before anything is
// published (so that retry and status know it), or, without the flag,
// takes the batch's recorded one; e.priority is what the jobs carry ("" for
// normal: its subject is prompts.<batch>, as before priorities).
func (e *enqueuer) setPriority(ctx context.Context, st *store.Store) error {
	p := e.o.priority
	if p == "" {
		var err error
		if p, err = st.BatchPriority(ctx, e.o.batch); err != nil {
			return err
		}
	} else if err := st.SetBatchPriority(ctx, e.o.batch, p); err != nil {
		return err
	}
	if p != queue.PriorityNormal {
		e.priority = p
	}
	return nil
}

// routesFile is the routes file --budget auto prices with: the batch's
// own, else ROUTES_FILE.
func (e *enqueuer) routesFile() string {
	if e.o.routes != "" {
		return e.o.routes
	}
	return e.cfg.RoutesFile
}

// setRoutes validates the batch's own routes file as a worker would (the
// same errors) and stores it with the batch, content-addressed.
func (e *enqueuer) setRoutes(ctx context.Context, st *store.Store) error {
	prices, err := config.LoadPrices(e.cfg.PricingFile)
	if err != nil {
		return err
	}
	if _, err := config.LoadRoutes(e.o.routes, prices); err != nil {
		return fmt.Errorf("--routes: %w", err)
	}
	yaml, err := os.ReadFile(e.o.routes)
	if err != nil {
		return fmt.Errorf("--routes: %w", err)
	}
	sum, version, err := st.SetBatchRoutes(ctx, e.o.batch, filepath.Base(e.o.routes), yaml)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "batch %s: routes %s (sha256 %x, version %d)\n", e.o.batch, e.o.routes, sum[:6], version)
	return nil
}
