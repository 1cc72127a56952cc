package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/natstest"
	"github.com/promptcascade/promptcascade/internal/pgtest"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/store"
	tok "github.com/promptcascade/promptcascade/internal/tokens"
	"github.com/promptcascade/promptcascade/internal/worker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// nats.go v1.55 starts this per async-publish context and can leave
		// it waiting on a nil channel after the connection closed (a library
		// goroutine, not ours). Embedded servers need no ignore: natstest's
		// cleanup waits for every server of a test to stop.
		goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"),
	)
}

// fakeProvider is a provider whose answer the test decides per call; it
// counts calls per prompt so tests can prove nothing was paid twice.
type fakeProvider struct {
	mu     sync.Mutex
	calls  map[string]int
	block  chan struct{} // when set, calls wait for it to close (or ctx)
	answer func(req llm.Request, n int) (llm.Response, error)
}

func (f *fakeProvider) Complete(ctx context.Context, req llm.Request) (llm.Response, error) {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return llm.Response{}, &llm.Error{Class: llm.ClassTimeout, Provider: "fake", Model: req.Model, Err: ctx.Err()}
		}
	}
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[req.Prompt]++
	n := f.calls[req.Prompt]
	f.mu.Unlock()
	return f.answer(req, n)
}

func (f *fakeProvider) callsFor(p string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[p]
}

func goodAnswer(req llm.Request, _ int) (llm.Response, error) {
	return llm.Response{Text: "A long enough answer that passes the quality gate because it has plenty of words in it, sixteen or more.", FinishReason: "stop", InputTokens: 10, OutputTokens: 20}, nil
}

type bundle struct {
	t        testing.TB
	nats     *natstest.Server
	qc       *queue.Conn
	cons     jetstream.Consumer
	st       *store.Store
	dsn      string
	provider *fakeProvider
	cascade  *cascade.Cascade
	cfg      worker.Config
}

func setup(t testing.TB, qcfg queue.Config, natsOpts ...natstest.Option) *bundle {
	t.Helper()
	b := &bundle{t: t, nats: natstest.Start(t, natsOpts...), dsn: pgtest.Schema(t), provider: &fakeProvider{answer: goodAnswer}}
	ctx := context.Background()
	qcfg.URL = b.nats.URL()
	qc, err := queue.Connect(ctx, qcfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(qc.Close)
	if _, err := qc.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	cons, err := qc.EnsureConsumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t, ctx, b.dsn)
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	reg := llm.NewRegistry()
	reg.Register("fake", b.provider)
	price := pricing.Price{InputPerMTok: 1, OutputPerMTok: 2}
	cs, err := cascade.New(cascade.Settings{
		Tiers: map[prompt.Tier][]string{
			prompt.TierSimple: {"fake/a"}, prompt.TierModerate: {"fake/a"}, prompt.TierComplex: {"fake/a", "fake/b"},
		},
		Models: map[string]cascade.ModelPolicy{
			"fake/a": {Model: "fake/a", Timeout: 5 * time.Second, Price: price},
			"fake/b": {Model: "fake/b", Timeout: 5 * time.Second, Price: price},
		},
		Backoff: cascade.Backoff{Base: time.Millisecond, Max: 10 * time.Millisecond},
		// These tests script 429s as plain transient failures that cascade
		// and requeue; waiting for capacity is tested in internal/cascade
		// and by TestRateLimitedProviderSharedByWorkers.
		RateLimit: cascade.RateLimit{OnRateLimit: cascade.CascadeOnRateLimit},
	}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.qc, b.cons, b.st, b.cascade = qc, cons, st, cs
	b.cfg = worker.Config{WorkerID: "test", Concurrency: 32, ExitWhenIdle: true, FetchMaxWait: 100 * time.Millisecond,
		NakBase: 20 * time.Millisecond, NakMax: 50 * time.Millisecond, AckWait: qc.Config().AckWait, MaxDeliver: qc.Config().MaxDeliver,
		TokenCount: tok.Count}
	return b
}

func (b *bundle) publish(batch string, n int) []prompt.Job {
	b.t.Helper()
	return b.publishPriority(batch, "", n)
}

// publishPriority is publish for a batch of the given priority.
func (b *bundle) publishPriority(batch, priority string, n int) []prompt.Job {
	b.t.Helper()
	ctx := context.Background()
	pub := queue.NewPublisher(b.qc, 256)
	var jobs []prompt.Job
	for i := range n {
		j := numberedJob(batch, i)
		j.Priority = priority
		if err := pub.Publish(ctx, j); err != nil {
			b.t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	if _, err := pub.Wait(ctx); err != nil {
		b.t.Fatal(err)
	}
	return jobs
}

func (b *bundle) run(ctx context.Context) *worker.Worker {
	b.t.Helper()
	w := worker.New(b.cfg, queue.NewSource(b.qc, b.cons), b.st, classify.Default(), b.cascade, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err := w.Run(ctx); err != nil {
		b.t.Fatal(err)
	}
	return w
}

// numberedJob is job i of batch: id "i", a simple prompt of its own.
func numberedJob(batch string, i int) prompt.Job {
	return prompt.Job{BatchID: batch, ID: fmt.Sprint(i), Prompt: fmt.Sprintf("What is %d plus %d?", i, i), EnqueuedAt: time.Now()}
}

// openStore opens a store on dsn, closed when the test ends.
func openStore(t testing.TB, ctx context.Context, dsn string, opts ...store.Option) *store.Store {
	t.Helper()
	st, err := store.Open(ctx, dsn, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// connect opens a connection to dsn; the caller closes it.
func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// count runs a query that returns one integer on a connection of its own.
func (b *bundle) count(q string, args ...any) int {
	b.t.Helper()
	conn := connect(b.t, b.dsn)
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		b.t.Fatalf("%s: %v", q, err)
	}
	return n
}

func (b *bundle) consumerAckPending() int {
	info, err := b.cons.Info(context.Background())
	if err != nil {
		b.t.Fatal(err)
	}
	return info.NumAckPending
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWorkerAnswersEveryPromptOnce(t *testing.T) {
	b := setup(t, queue.Config{})
	jobs := b.publish("b1", 300)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := b.run(ctx)

	if got := b.count(`SELECT count(*) FROM results WHERE batch_id='b1' AND status='succeeded'`); got != len(jobs) {
		t.Fatalf("succeeded results = %d, want %d", got, len(jobs))
	}
	if got := b.count(`SELECT count(*) FROM request_log WHERE batch_id='b1' AND outcome='ok'`); got != len(jobs) {
		t.Fatalf("ok attempts = %d, want %d", got, len(jobs))
	}
	for _, j := range jobs {
		if n := b.provider.callsFor(j.Prompt); n != 1 {
			t.Fatalf("prompt %s called the model %d times", j.ID, n)
		}
	}
	if s := w.Stats(); s.Succeeded != int64(len(jobs)) || s.InFlight != 0 {
		t.Fatalf("stats = %+v", s)
	}
	info, err := b.cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumPending != 0 || info.NumAckPending != 0 {
		t.Fatalf("consumer still holds %d pending, %d unacked", info.NumPending, info.NumAckPending)
	}
}

func TestWorkerAcksAnsweredPromptWithoutCallingModel(t *testing.T) {
	b := setup(t, queue.Config{})
	jobs := b.publish("b1", 20)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.run(ctx)

	// The same prompts again, as after a crash between commit and ack (the
	// duplicate window is bypassed with new message ids by publishing raw).
	for _, j := range jobs {
		data, _ := json.Marshal(j)
		if _, err := b.qc.JetStream().Publish(ctx, queue.Subject("prompts", j.BatchID), data, jetstream.WithMsgID("again/"+j.ID)); err != nil {
			t.Fatal(err)
		}
	}
	w := b.run(ctx)
	if s := w.Stats(); s.AlreadyDone != int64(len(jobs)) || s.Succeeded != 0 {
		t.Fatalf("second run stats = %+v, want %d already done", s, len(jobs))
	}
	for _, j := range jobs {
		if n := b.provider.callsFor(j.Prompt); n != 1 {
			t.Fatalf("prompt %s called the model %d times, want 1", j.ID, n)
		}
	}
	if got := b.count(`SELECT count(*) FROM results`); got != len(jobs) {
		t.Fatalf("results = %d, want %d", got, len(jobs))
	}
}

// Every kind of undecodable message, published straight to the stream,
// gets one dead_letters row with its exact bytes, is delivered once (Term:
// no redelivery loop), and holds up nothing else.
func TestWorkerDeadLettersPoisonOnce(t *testing.T) {
	b := setup(t, queue.Config{})
	b.cfg.MaxMessageBytes = 4096
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	poison := [][]byte{
		[]byte("not json"),
		[]byte(""),
		[]byte(`{"batch":"b1","id":"x","prompt":42}`),
		[]byte(`{"batch":"b1","id":7,"prompt":"id is a number"}`),
		[]byte(`{"batch":"b1","id":"mt","prompt":"hi","max_tokens":"many"}`),
		[]byte(`{"batch":"b1","id":"neg","prompt":"hi","max_tokens":-1}`),
		[]byte(`{"batch":"b1","id":"y","prompt":"   "}`),
		[]byte(`{"batch":"b1","id":"e","prompt":""}`),
		[]byte(`{"batch":"b1","id":"np"}`),
		[]byte(`{"batch":"b1","id":"z","prompt":"hi\u0000there"}`),
		[]byte(`{"batch":"b1","prompt":"no id"}`),
		[]byte(`{"id":"nb","prompt":"no batch"}`),
		[]byte("{\"batch\":\"b1\",\"id\":\"u\",\"prompt\":\"bad \xff\xfe utf-8\"}"),
		[]byte(`{"batch":"b1","id":"big","prompt":"` + strings.Repeat("a", 4097) + `"}`),
		[]byte(`{"batch":"b1","id":"m1","prompt":"hi","metadata":"a string"}`),
		[]byte(`{"batch":"b1","id":"m2","prompt":"hi","metadata":[1,2]}`),
		[]byte(`{"batch":"b1","id":"m3","prompt":"hi","metadata":{"k":"\u0000"}}`),
		[]byte(`{"batch":"b1","id":"two","prompt":"hi"} {"batch":"b1","id":"three","prompt":"hi"}`),
		[]byte(`["batch","b1"]`),
		[]byte(`{"batch":"b1","id":"trunc","prompt":"cut off`),
	}
	var seqs []uint64
	for i, p := range poison {
		ack, err := b.qc.JetStream().Publish(ctx, "prompts.b1", p, jetstream.WithMsgID(fmt.Sprint("poison/", i)))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	good := b.publish("b1", 10)
	tp := newTap()
	w, _ := b.tapWorker(t, tp)
	runAll(t, ctx, w)
	if s := w.Stats(); s.DeadLettered != int64(len(poison)) || s.Fetched != int64(len(poison)+len(good)) {
		t.Fatalf("stats = %+v: want %d dead-lettered, %d fetched (no redelivery)", s, len(poison), len(poison)+len(good))
	}
	for i, seq := range seqs {
		if ds := tp.deliveriesOf(seq); len(ds) != 1 || ds[0] != 1 {
			t.Errorf("poison %d (%.40q) delivered %v times, want once", i, poison[i], ds)
		}
		var n int
		if err := b.st.Pool().QueryRow(ctx, `SELECT count(*) FROM dead_letters WHERE stream_seq = $1 AND payload = $2
			AND subject = 'prompts.b1' AND error <> ''`, int64(seq), poison[i]).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("poison %d (%.40q): %d dead_letters rows with its exact bytes, want 1", i, poison[i], n)
		}
	}
	if got := b.count(`SELECT count(*) FROM dead_letters`); got != len(poison) {
		t.Fatalf("dead letters = %d, want %d", got, len(poison))
	}
	if got := b.count(`SELECT count(*) FROM results WHERE status='succeeded'`); got != len(good) {
		t.Fatalf("results = %d, want %d", got, len(good))
	}
	reconcile(t, b.dsn, good, tp)
	b.queueEmpty(t)
}

func TestWorkerRequeuesTransientFailuresAndLogsEveryAttempt(t *testing.T) {
	b := setup(t, queue.Config{})
	// The first call for each prompt is rate limited; the cascade has one
	// model for simple prompts and no retries, so the delivery is naked and
	// the second delivery succeeds.
	b.provider.answer = func(req llm.Request, n int) (llm.Response, error) {
		if n == 1 {
			return llm.Response{}, &llm.Error{Class: llm.ClassRateLimited, Provider: "fake", Model: req.Model, HTTPStatus: 429}
		}
		return goodAnswer(req, n)
	}
	jobs := b.publish("b1", 25)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := b.run(ctx)
	if got := b.count(`SELECT count(*) FROM results WHERE status='succeeded' AND delivery=2 AND attempts=2`); got != len(jobs) {
		t.Fatalf("results succeeded on delivery 2 with 2 attempts = %d, want %d", got, len(jobs))
	}
	if got := b.count(`SELECT count(*) FROM request_log WHERE outcome='rate_limited' AND delivery=1 AND http_status=429`); got != len(jobs) {
		t.Fatalf("rate-limited attempts logged = %d, want %d", got, len(jobs))
	}
	if s := w.Stats(); s.Naked != int64(len(jobs)) {
		t.Fatalf("stats = %+v, want %d naked", s, len(jobs))
	}
}

func TestWorkerStoresFailureOnLastDelivery(t *testing.T) {
	b := setup(t, queue.Config{MaxDeliver: 3})
	b.provider.answer = func(req llm.Request, n int) (llm.Response, error) {
		return llm.Response{}, &llm.Error{Class: llm.ClassServerError, Provider: "fake", Model: req.Model, HTTPStatus: 503}
	}
	b.publish("b1", 5)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.run(ctx)
	if got := b.count(`SELECT count(*) FROM results WHERE status='failed' AND delivery=3 AND error LIKE 'gave up after 3 deliveries%'`); got != 5 {
		t.Fatalf("failed results on delivery 3 = %d, want 5", got)
	}
	if got := b.count(`SELECT count(*) FROM request_log WHERE outcome='server_error'`); got != 15 {
		t.Fatalf("server_error attempts = %d, want 15 (3 deliveries × 5 prompts)", got)
	}
}

func TestWorkerStoresPermanentFailure(t *testing.T) {
	b := setup(t, queue.Config{})
	b.provider.answer = func(req llm.Request, n int) (llm.Response, error) {
		return llm.Response{Text: "I cannot help with that."}, nil
	}
	b.publish("b1", 4)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.run(ctx)
	if got := b.count(`SELECT count(*) FROM results WHERE status='failed' AND delivery=1 AND error <> ''`); got != 4 {
		t.Fatalf("failed results = %d, want 4", got)
	}
	if got := b.count(`SELECT count(*) FROM request_log WHERE outcome='quality_failed'`); got != 4 {
		t.Fatalf("quality_failed attempts = %d, want 4", got)
	}
}

func TestWorkerGracefulStopHandsBackInFlight(t *testing.T) {
	b := setup(t, queue.Config{})
	release := make(chan struct{})
	b.provider.block = release
	b.cfg.ExitWhenIdle = false
	b.cfg.DrainTimeout = 300 * time.Millisecond
	b.publish("b1", 50)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.run(ctx)
	}()
	waitFor(t, func() bool { return b.consumerAckPending() == 32+8 }) // every slot busy, and the prefetch (a quarter of the slots) waiting
	cancel()                                                          // soft stop; calls hang past the drain timeout, so they are cancelled
	<-done
	close(release)
	if got := b.count(`SELECT count(*) FROM results`); got != 0 {
		t.Fatalf("results after a hard stop = %d, want 0 (nothing finished)", got)
	}
	// The hard stop's cause reaches each call's context and its attempt
	// row.
	if got := b.count(`SELECT count(*) FROM request_log WHERE outcome='canceled' AND error LIKE 'canceled: drain timeout passed%'`); got != 32 {
		t.Errorf("attempts canceled by the drain timeout = %d, want the 32 calls in flight", got)
	}
	// Everything is still there for the next worker.
	b.cfg.ExitWhenIdle, b.cfg.DrainTimeout = true, 0
	b.provider.block = nil
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	b.run(ctx2)
	if got := b.count(`SELECT count(*) FROM results WHERE status='succeeded'`); got != 50 {
		t.Fatalf("results after restart = %d, want 50", got)
	}
}
