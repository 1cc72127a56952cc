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
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/promptcascade/promptcascade/cmd/internal/connect"
	"github.com/promptcascade/promptcascade/cmd/internal/cpuprofile"
	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/estimate"
	"github.com/promptcascade/promptcascade/internal/gctune"
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
	// cpuProfile is --cpuprofile: a CPU profile of the whole run is
	// written there.
	cpuProfile string
	files      []string
	chunk      int
	budget     string // "", "auto" or an amount in USD
	routes     string // the batch's own routes file ("": the workers' ROUTES_FILE)
	// priority is high, normal or low; "": the batch's recorded one
	// (normal for a new batch).
	priority string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("enqueue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{chunk: defaultChunk}
	format := fs.String("format", "auto", "input format: auto, jsonl, openai-batch, csv or text")
	fs.StringVar(&o.batch, "batch", "", "batch name (letters, digits, _ and -); default: the first file's base name")
	fs.BoolVar(&o.strict, "strict", false, "validate every line first; publish nothing if any line is bad")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile (go tool pprof) of the whole run to this file")
	fs.StringVar(&o.routes, "routes", "", "the batch's own routes file (validated; stored in Postgres; workers apply it to this batch)")
	fs.StringVar(&o.budget, "budget", "", "cap the batch's spend: an amount in USD, or auto (the estimate if every prompt cascades)")
	fs.StringVar(&o.priority, "priority", "", "high, normal or low: workers take high batches first, then normal, then low (default: the batch's recorded priority, normal for a new batch)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: enqueue [--batch NAME] [--format auto|jsonl|openai-batch|csv|text] [--strict] [--routes FILE] [--budget USD|auto] [--priority high|normal|low] [--cpuprofile FILE] FILE... | -")
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
	tuner, overridden := gctune.StartUnlessOverridden(os.LookupEnv, uint64(cfg.GCHeapFloorMB)<<20, gctune.DefaultPercent)
	defer tuner.Stop()
	if overridden != "" {
		log.Debug("GC_HEAP_FLOOR_MB not applied: the Go runtime's own setting is given", "var", overridden)
	}
	if o.cpuProfile != "" {
		stopProfile, err := cpuprofile.Start(o.cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "enqueue: --cpuprofile:", err)
			return 2
		}
		defer func() {
			if err := stopProfile(); err != nil {
				log.Error("cpu profile not written", "file", o.cpuProfile, "err", err)
			}
		}()
	}
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
	// routesYAML is the --routes file as read and validated before any
	// connection (the bytes stored are the bytes checked).
	routesYAML []byte

	spooled []string // temp copies of stdin, removed at the end

	// mu guards stderr (the bar and the rejected lines) and the counts:
	// the reader and the publishing stage both report lines.
	mu       sync.Mutex
	accepted int // good lines, less those the run refused
	rejected int
	lines    int                 // good lines read in this pass (Seq)
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
	if err := e.checkRoutes(); err != nil {
		return err
	}
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
	run, err := st.BeginEnqueueRun(ctx, e.o.batch)
	if err != nil {
		return err
	}
	defer run.Close()
	if e.o.strict {
		if err := e.spoolStdin(); err != nil {
			return err
		}
		// Only check: bad lines, repeated ids, and ids the batch already
		// holds with another prompt.
		if err := e.pass(ctx, false, run.Check, nil); err != nil {
			return err
		}
		if e.rejected > 0 {
			return fmt.Errorf("--strict: %d bad line(s); nothing published", e.rejected)
		}
		if err := run.Reset(ctx); err != nil {
			return err
		}
		e.accepted = 0
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
	// Each chunk's ids are recorded before any of its lines is published:
	// a crash between the two leaves prompts that `cascadectl verify`
	// reports as missing, never prompts it cannot see.
	err = e.pass(ctx, true, run.Record, func(ctx context.Context, it *item) error {
		return pub.PublishMessage(ctx, it.msg)
	})
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
	file int    // index in o.files
	line int
}

// defaultChunk is how many lines go to Postgres at a time: few round trips
// per line, and memory bounded by a few chunks whatever the input size.
const defaultChunk = 10_000

// firstChunk is the size of a run's first chunk; each next one is twice the
// one before, up to options.chunk. Nothing is published before a first chunk
// is read and recorded, so a small one starts the publishing stage sooner.
const firstChunk = 1000

// flushAfter is how long a chunk that is not full waits for more lines
// before it is recorded and published as it is.
const flushAfter = 200 * time.Millisecond

// recordFunc records a chunk's ids in the run (store.EnqueueRun's Record,
// or Check) and returns the entries it refuses.
type recordFunc func(context.Context, []store.RunEntry) ([]store.Refused, error)

// recorded is a chunk whose ids are recorded, with its refused entries.
type recorded struct {
	items   []item
	refused []store.Refused
}

// pass reads every input once, in three stages that overlap: this
// goroutine reads and encodes lines into chunks, one goroutine records each
// chunk with record (in input order: a chunk's repeats are found against
// every earlier one), and one reports the refused lines and hands the
// others to publish (nil: nothing is published). Each stage works on a
// chunk of its own, so memory is bounded by a few chunks.
func (e *enqueuer) pass(ctx context.Context, bar bool, record recordFunc, publish func(context.Context, *item) error) error {
	outer := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		stageErr error
		once     sync.Once
	)
	fail := func(err error) {
		once.Do(func() { stageErr = err })
		cancel(err)
	}
	toRecord := make(chan []item)
	toPublish := make(chan recorded)
	free := make(chan []item, 2) // chunk buffers back to the reader
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(toPublish)
		entries := make([]store.RunEntry, 0, e.o.chunk)
		for items := range toRecord {
			entries = entries[:0]
			for i := range items {
				entries = append(entries, store.RunEntry{ID: items[i].id, ContentHash: items[i].hash, File: items[i].file})
			}
			refused, err := record(ctx, entries)
			if err != nil {
				fail(err)
				return
			}
			select {
			case toPublish <- recorded{items, refused}:
			case <-ctx.Done():
				return
			}
		}
	})
	wg.Go(func() {
		for c := range toPublish {
			refused := c.refused
			for i := range c.items {
				if len(refused) > 0 && refused[0].Index == i {
					e.refuse(&c.items[i], refused[0])
					refused = refused[1:]
					continue
				}
				if publish == nil || ctx.Err() != nil {
					continue
				}
				if err := publish(ctx, &c.items[i]); err != nil {
					fail(err)
				}
			}
			clear(c.items) // drop the prompts' text
			select {
			case free <- c.items[:0]:
			default:
			}
		}
	})

	// The reader fills chunk to size lines; a chunk that does not fill
	// within flushAfter of its first line (a producer writing to stdin
	// slowly, say) is sent as it is, so no line waits for lines that may
	// never come. mu guards chunk, size and first between the reader and
	// the flusher.
	var (
		mu    sync.Mutex
		first time.Time
	)
	chunk := make([]item, 0, e.o.chunk)
	size := min(firstChunk, e.o.chunk) // lines of the chunk being filled
	send := func() error {
		if len(chunk) == 0 {
			return nil
		}
		select {
		case toRecord <- chunk:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		size = min(2*size, e.o.chunk)
		select {
		case chunk = <-free:
		default:
			chunk = make([]item, 0, e.o.chunk)
		}
		return nil
	}
	flusherDone := make(chan struct{})
	var flusher sync.WaitGroup
	flusher.Go(func() {
		tick := time.NewTicker(flushAfter / 4)
		defer tick.Stop()
		for {
			select {
			case <-flusherDone:
				return
			case <-tick.C:
			}
			mu.Lock()
			if len(chunk) > 0 && time.Since(first) >= flushAfter {
				_ = send() // fails only when ctx is done, which the reader sees
			}
			mu.Unlock()
		}
	})
	err := e.each(ctx, bar, func(it item) error {
		mu.Lock()
		defer mu.Unlock()
		if len(chunk) == 0 {
			first = time.Now()
		}
		chunk = append(chunk, it)
		if len(chunk) >= size {
			return send()
		}
		return nil
	})
	close(flusherDone)
	flusher.Wait()
	if err == nil {
		err = send()
	}
	close(toRecord)
	wg.Wait()
	switch {
	case outer.Err() != nil:
		return fmt.Errorf("interrupted: %w", context.Cause(outer))
	case stageErr != nil:
		return stageErr
	}
	return err
}

// refuse reports a line that the run refused: it is not recorded and not
// published.
func (e *enqueuer) refuse(it *item, r store.Refused) {
	var msg string
	switch {
	case r.Reason == store.RefuseConflict:
		msg = fmt.Sprintf("id %q is already in batch %q with a different prompt", it.id, e.o.batch)
	case r.File == it.file:
		msg = input.RepeatReason(it.id)
	default:
		msg = fmt.Sprintf("duplicate id %q (already in %s); give ids that are unique across the batch's files", it.id, e.display(r.File))
	}
	e.mu.Lock()
	e.accepted--
	e.mu.Unlock()
	e.reject(fmt.Sprintf("%s:%d: %s", e.display(it.file), it.line, msg))
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
	e.lines = 0
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
	e.mu.Lock()
	e.bar.clear()
	e.mu.Unlock()
	return nil
}

func (e *enqueuer) file(ctx context.Context, index int, name string, now time.Time, emit func(item) error) error {
	rc, err := e.open(name)
	if err != nil {
		return err
	}
	defer rc.Close()
	display := e.display(index)
	// Repeated ids are found by the run, in Postgres.
	rd, err := input.NewReader(e.bar.reader(rc), display, e.o.format, input.Options{RepeatsElsewhere: true})
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
		if e.est != nil {
			e.est.Add(job)
		}
		job.BatchID = e.o.batch
		job.EnqueuedAt = now
		job.Seq = int64(e.lines + 1) // input order, for exports
		job.Priority = e.priority
		// The prompt-size rule, before anything is recorded: a line over
		// the limit is a bad line like any other, and the rest goes on.
		// Every error of EncodeJob is about this one job.
		msg, err := queue.EncodeJob(job, e.limit)
		if err != nil {
			e.reject(fmt.Sprintf("%s:%d: %v", display, rd.Line(), err))
			continue
		}
		e.lines++
		e.mu.Lock()
		e.accepted++
		e.bar.count(e.accepted, e.rejected)
		e.mu.Unlock()
		if err := emit(item{id: job.ID, msg: msg, hash: queue.ContentHash(job), file: index, line: rd.Line()}); err != nil {
			return err
		}
	}
}

func (e *enqueuer) reject(msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
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
		e.est, e.silent, e.accepted, e.rejected = nil, false, accepted, rejected
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

// checkRoutes reads and validates the --routes file as a worker would (the
// same errors), before enqueue connects to anything: a bad file is reported
// as itself, not hidden behind an unreachable broker or database.
func (e *enqueuer) checkRoutes() error {
	if e.o.routes == "" {
		return nil
	}
	prices, err := config.LoadPrices(e.cfg.PricingFile)
	if err != nil {
		return err
	}
	yaml, err := os.ReadFile(e.o.routes)
	if err != nil {
		return fmt.Errorf("--routes: %w", err)
	}
	if _, err := config.ParseRoutes(e.o.routes, bytes.NewReader(yaml), prices); err != nil {
		return fmt.Errorf("--routes: %w", err)
	}
	e.routesYAML = yaml
	return nil
}

// setRoutes stores the routes file checkRoutes read with the batch,
// content-addressed.
func (e *enqueuer) setRoutes(ctx context.Context, st *store.Store) error {
	sum, version, err := st.SetBatchRoutes(ctx, e.o.batch, filepath.Base(e.o.routes), e.routesYAML)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "batch %s: routes %s (sha256 %x, version %d)\n", e.o.batch, e.o.routes, sum[:6], version)
	return nil
}
