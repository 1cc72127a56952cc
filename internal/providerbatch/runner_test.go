package providerbatch

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/anthropic"
	"github.com/promptcascade/promptcascade/internal/llm/gemini"
	"github.com/promptcascade/promptcascade/internal/llm/openai"
	"github.com/promptcascade/promptcascade/internal/llm/sim"
	"github.com/promptcascade/promptcascade/internal/pgtest"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/providerbatch/batchfake"
	"github.com/promptcascade/promptcascade/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const key = "sk-test-providerbatch-1"

// longPrompt makes a prompt of more than 20 words: the gate then wants an
// answer of at least 15 words.
func longPrompt(i int, tag string) string {
	return fmt.Sprintf("Prompt number %d %s: please explain in plain words how a cascade of language models picks the cheapest model for this question", i, tag)
}

type fakePub struct {
	mu   sync.Mutex
	jobs []prompt.Job
}

func (p *fakePub) PublishJob(_ context.Context, j prompt.Job) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.jobs = append(p.jobs, j)
	return nil
}

type bundle struct {
	st   *store.Store
	cas  *cascade.Cascade
	fake *batchfake.Server
	pub  *fakePub
	cli  Client
	name string
}

// setup: a migrated store; tier simple is [<proto>/m (batch), sim/large],
// complex is [sim/large]; the batch model talks to a batchfake server.
func setup(t *testing.T, proto batchfake.Protocol) bundle {
	t.Helper()
	st, err := store.Open(t.Context(), pgtest.Schema(t), store.WithMaxConns(6))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	fake := &batchfake.Server{Protocol: proto, APIKey: key, Fate: func(r batchfake.Request) batchfake.Fate {
		switch {
		case strings.Contains(r.Prompt, "FAIL"):
			return batchfake.Fate{Kind: batchfake.Error, Class: "server"}
		case strings.Contains(r.Prompt, "EXPIRE"):
			return batchfake.Fate{Kind: batchfake.Expire}
		case strings.Contains(r.Prompt, "WEAK"):
			return batchfake.Fate{Kind: batchfake.Answer, Text: "Too short."}
		}
		return batchfake.Fate{Kind: batchfake.Answer, Text: batchfake.DefaultAnswer(r.Prompt)}
	}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	var cli Client
	name := string(proto) + "/m"
	switch proto {
	case batchfake.OpenAI:
		cli, err = openai.New(openai.Config{BaseURL: srv.URL, APIKey: key, HTTPClient: srv.Client()})
	case batchfake.Anthropic:
		cli, err = anthropic.New(anthropic.Config{BaseURL: srv.URL, APIKey: key, HTTPClient: srv.Client()})
	case batchfake.Gemini:
		// Every batch as an input file: the Files API path end to end.
		cli, err = gemini.New(gemini.Config{BaseURL: srv.URL, APIKey: key, HTTPClient: srv.Client(), BatchInlineBytes: -1})
	}
	if err != nil {
		t.Fatal(err)
	}
	reg := llm.NewRegistry()
	reg.Register(string(proto), openaiUnused{})
	reg.Register("sim", sim.New(map[string]sim.Model{"large": {Capability: 1}}))
	cas, err := cascade.New(cascade.Settings{
		Tiers: map[prompt.Tier][]string{prompt.TierSimple: {name, "sim/large"}, prompt.TierModerate: {"sim/large"}, prompt.TierComplex: {"sim/large"}},
		Models: map[string]cascade.ModelPolicy{
			name:        {Model: name, Batch: true, Price: pricing.Price{InputPerMTok: 1, OutputPerMTok: 4}},
			"sim/large": {Model: "sim/large", Price: pricing.Price{InputPerMTok: 3, OutputPerMTok: 9}},
		},
	}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return bundle{st: st, cas: cas, fake: fake, pub: &fakePub{}, cli: cli, name: name}
}

// openaiUnused stands in for the batch model's synchronous side, which a
// batch-mode model never uses.
type openaiUnused struct{}

func (openaiUnused) Complete(context.Context, llm.Request) (llm.Response, error) {
	return llm.Response{}, &llm.Error{Class: llm.ClassBadRequest, Message: "a batch-mode model was called synchronously"}
}

func (b bundle) runner(t *testing.T, limits Limits, hooks Hooks) *Runner {
	t.Helper()
	r, err := New(Config{Models: []Model{{Name: b.name, Client: b.cli, Price: pricing.Price{InputPerMTok: 1, OutputPerMTok: 4}, Limits: limits}},
		WorkerID: "test", IngestChunk: 7, Hooks: hooks}, b.st.Pool(), b.st, b.cas, b.pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// handOff records n prompts as a worker whose cascade reached the batch
// model would: one transaction per call, with a first-round attempt for
// none of them.
func (b bundle) handOff(t *testing.T, prompts []string) {
	t.Helper()
	var rs []prompt.Result
	for i, p := range prompts {
		rs = append(rs, prompt.Result{Job: prompt.Job{BatchID: "b1", ID: fmt.Sprintf("p%03d", i), Prompt: p, EnqueuedAt: time.Now()},
			Tier: prompt.TierSimple, Delivery: 1, Handoff: &prompt.Handoff{Model: b.name, Position: 0}})
	}
	if _, err := b.st.Write(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
}

var fast = Limits{MaxRequests: 10, MaxBytes: 1 << 30, FlushAfter: time.Hour, PollEvery: time.Millisecond}

// drain steps the runner until no item is queued, submitted or handing off.
func (b bundle) drain(t *testing.T, r *Runner) {
	t.Helper()
	for range 50 {
		if _, err := r.StepOnce(t.Context(), b.name); err != nil {
			t.Fatalf("step: %v", err)
		}
		var open int
		if err := b.st.Pool().QueryRow(t.Context(), `SELECT count(*) FROM provider_batch_items
			WHERE state IN ('queued', 'submitted', 'handing_off')`).Scan(&open); err != nil {
			t.Fatal(err)
		}
		if open == 0 {
			return
		}
	}
	t.Fatal("items still open after 50 steps")
}

type tally struct{ succeeded, failed, logRows, logBatch int }

func (b bundle) tally(t *testing.T) tally {
	t.Helper()
	var c tally
	err := b.st.Pool().QueryRow(t.Context(), `SELECT
		(SELECT count(*) FROM results WHERE status = 'succeeded'), (SELECT count(*) FROM results WHERE status = 'failed'),
		(SELECT count(*) FROM request_log), (SELECT count(*) FROM request_log WHERE provider_batch_id IS NOT NULL)`).
		Scan(&c.succeeded, &c.failed, &c.logRows, &c.logBatch)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (b bundle) checkSubmittedOnce(t *testing.T, want int) {
	t.Helper()
	sub := b.fake.Submitted()
	if len(sub) != want {
		t.Errorf("%d custom ids submitted, want %d", len(sub), want)
	}
	for id, n := range sub {
		if n != 1 {
			t.Errorf("custom id %s submitted %d times", id, n)
		}
	}
}

// mixedPrompts returns n prompts of which, in every ten, one errs at the
// provider, one expires and one gets a weak answer; the rest are answered.
func mixedPrompts(n int) []string {
	var prompts []string
	for i := range n {
		tag := "ok"
		switch i % 10 {
		case 1:
			tag = "FAIL"
		case 2:
			tag = "EXPIRE"
		case 3:
			tag = "WEAK"
		}
		prompts = append(prompts, longPrompt(i, tag))
	}
	return prompts
}

func TestFlowAnswersAtBatchPriceAndHandsBackTheRest(t *testing.T) {
	t.Parallel()
	b := setup(t, batchfake.OpenAI)
	b.handOff(t, mixedPrompts(30))
	r := b.runner(t, fast, Hooks{})
	b.drain(t, r)

	if n := b.fake.Batches(); n != 3 {
		t.Errorf("%d provider batches, want 3 (30 prompts, max_requests 10)", n)
	}
	b.checkSubmittedOnce(t, 30)
	c := b.tally(t)
	if c.succeeded != 21 || c.failed != 0 || c.logRows != 30 || c.logBatch != 30 {
		t.Errorf("tally %+v, want 21 answered, 30 request_log rows all with a provider batch id", c)
	}
	// Every answer costs the batch price of its usage: half of $1/$4 per MTok.
	var bad int
	if err := b.st.Pool().QueryRow(t.Context(), `SELECT count(*) FROM request_log
		WHERE outcome = 'ok' AND cost_usd <> round((input_tokens * 0.5 + output_tokens * 2.0) / 1e6, 10)`).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Errorf("%d answers not at the batch price", bad)
	}
	var resCost, logCost float64
	if err := b.st.Pool().QueryRow(t.Context(), `SELECT (SELECT sum(cost_usd) FROM results)::float8,
		(SELECT sum(cost_usd) FROM request_log WHERE outcome = 'ok')::float8`).Scan(&resCost, &logCost); err != nil {
		t.Fatal(err)
	}
	if resCost <= 0 || resCost != logCost {
		t.Errorf("results cost %v, answered attempts cost %v: want equal and positive", resCost, logCost)
	}
	// The 9 others went back to the queue for sim/large, with their attempt.
	outcomes := map[string]string{}
	rows, _ := b.st.Pool().Query(t.Context(), `SELECT prompt_id, outcome FROM request_log WHERE outcome <> 'ok'`)
	for rows.Next() {
		var id, o string
		_ = rows.Scan(&id, &o)
		outcomes[id] = o
	}
	if len(b.pub.jobs) != 9 {
		t.Fatalf("%d jobs handed back, want 9", len(b.pub.jobs))
	}
	want := map[string]string{"FAIL": "server_error", "EXPIRE": "batch_expired", "WEAK": "quality_failed"}
	for _, j := range b.pub.jobs {
		if j.Resume == nil || *j.Resume != (prompt.Resume{Tier: prompt.TierSimple, Position: 1, Attempts: 1}) {
			t.Errorf("%s handed back with resume %+v, want simple/1/1", j.ID, j.Resume)
		}
		for tag, o := range want {
			if strings.Contains(j.Prompt, tag) && outcomes[j.ID] != o {
				t.Errorf("%s (%s): logged outcome %q, want %q", j.ID, tag, outcomes[j.ID], o)
			}
		}
	}
	var handed int
	_ = b.st.Pool().QueryRow(t.Context(), `SELECT count(*) FROM provider_batch_items WHERE state = 'handed_off' AND job IS NULL`).Scan(&handed)
	if handed != 9 {
		t.Errorf("%d items handed off, want 9", handed)
	}
}

// The submitter dies after the provider accepted a batch and before its id
// was stored: the next holder finds the batch by its label (OpenAI) or by
// time and size (Anthropic), stores the id, and submits nothing twice.
func TestCrashBetweenCreateAndRecord(t *testing.T) {
	t.Parallel()
	for _, proto := range []batchfake.Protocol{batchfake.OpenAI, batchfake.Anthropic} {
		t.Run(string(proto), func(t *testing.T) {
			t.Parallel()
			b := setup(t, proto)
			var prompts []string
			for i := range 20 {
				prompts = append(prompts, longPrompt(i, "ok"))
			}
			b.handOff(t, prompts)
			ctx, crash := context.WithCancel(t.Context())
			dying := b.runner(t, fast, Hooks{AfterCreate: func(string, string) { crash() }})
			if _, err := dying.StepOnce(ctx, b.name); err == nil {
				t.Fatal("the step whose process died reported success")
			}
			var submitting int
			_ = b.st.Pool().QueryRow(t.Context(), `SELECT count(*) FROM provider_batches WHERE state = 'submitting' AND provider_batch_id IS NULL`).Scan(&submitting)
			if submitting != 1 || b.fake.Batches() != 1 {
				t.Fatalf("after the crash: %d intents without an id, %d provider batches; want 1 and 1 (the test did not test anything)", submitting, b.fake.Batches())
			}
			b.drain(t, b.runner(t, fast, Hooks{}))
			b.checkSubmittedOnce(t, 20)
			if n := b.fake.Batches(); n != 2 {
				t.Errorf("%d provider batches, want 2", n)
			}
			if c := b.tally(t); c.succeeded != 20 || c.logRows != 20 {
				t.Errorf("tally %+v, want 20 answers and 20 attempts", c)
			}
		})
	}
}

// The ingester dies after its first chunk: the next one settles only the
// rest, and every prompt has one results row and one attempt.
func TestCrashMidIngest(t *testing.T) {
	t.Parallel()
	b := setup(t, batchfake.OpenAI)
	var prompts []string
	for i := range 10 {
		prompts = append(prompts, longPrompt(i, "ok"))
	}
	b.handOff(t, prompts)
	ctx, crash := context.WithCancel(t.Context())
	chunks := 0
	dying := b.runner(t, fast, Hooks{AfterIngestChunk: func(string, int) { chunks++; crash() }})
	for range 10 {
		if _, err := dying.StepOnce(ctx, b.name); err != nil {
			break
		}
	}
	if c := b.tally(t); chunks != 1 || c.succeeded != 7 {
		t.Fatalf("after the crash: %d chunks, %d answers; want 1 chunk of 7 (the test did not test anything)", chunks, c.succeeded)
	}
	b.drain(t, b.runner(t, fast, Hooks{}))
	if c := b.tally(t); c.succeeded != 10 || c.logRows != 10 {
		t.Errorf("tally %+v, want 10 answers and 10 attempts", c)
	}
	var state string
	_ = b.st.Pool().QueryRow(t.Context(), `SELECT state FROM provider_batches`).Scan(&state)
	if state != "done" {
		t.Errorf("provider batch state %q, want done", state)
	}
}

// One submitter per model: while another session holds the model's lock,
// a runner does nothing; once it is released, the runner works.
func TestOneSubmitterPerModel(t *testing.T) {
	t.Parallel()
	b := setup(t, batchfake.OpenAI)
	b.handOff(t, []string{longPrompt(1, "ok")})
	conn, err := b.st.Pool().Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), "SELECT pg_advisory_lock("+lockKey+")", b.name); err != nil {
		t.Fatal(err)
	}
	r := b.runner(t, Limits{MaxRequests: 1, MaxBytes: 1 << 20, FlushAfter: time.Hour, PollEvery: time.Millisecond}, Hooks{})
	if ran, err := r.StepOnce(t.Context(), b.name); ran || err != nil {
		t.Fatalf("StepOnce while another holds the lock = %v, %v; want false", ran, err)
	}
	if b.fake.Batches() != 0 {
		t.Fatal("a batch was submitted without the lock")
	}
	_, _ = conn.Exec(t.Context(), "SELECT pg_advisory_unlock("+lockKey+")", b.name)
	conn.Release()
	if ran, err := r.StepOnce(t.Context(), b.name); !ran || err != nil {
		t.Fatalf("StepOnce after release = %v, %v; want true", ran, err)
	}
	if b.fake.Batches() != 1 {
		t.Errorf("%d batches after the lock was free, want 1", b.fake.Batches())
	}
}

// flush_after sends a batch smaller than max_requests once its oldest
// prompt has waited long enough, and not before.
func TestFlushAfter(t *testing.T) {
	t.Parallel()
	b := setup(t, batchfake.OpenAI)
	b.handOff(t, []string{longPrompt(1, "ok"), longPrompt(2, "ok")})
	r := b.runner(t, Limits{MaxRequests: 100, MaxBytes: 1 << 20, FlushAfter: 300 * time.Millisecond, PollEvery: time.Millisecond}, Hooks{})
	if _, err := r.StepOnce(t.Context(), b.name); err != nil {
		t.Fatal(err)
	}
	if b.fake.Batches() != 0 {
		t.Fatal("2 prompts were flushed before flush_after passed")
	}
	time.Sleep(350 * time.Millisecond)
	if _, err := r.StepOnce(t.Context(), b.name); err != nil {
		t.Fatal(err)
	}
	if b.fake.Batches() != 1 {
		t.Fatalf("%d batches after flush_after, want 1", b.fake.Batches())
	}
}

// Two workers run the loops; the first dies right after its first create.
// The survivor takes the model over, and every prompt is answered once.
func TestTakeoverWhenTheHolderDies(t *testing.T) {
	t.Parallel()
	b := setup(t, batchfake.OpenAI)
	var prompts []string
	for i := range 25 {
		prompts = append(prompts, longPrompt(i, "ok"))
	}
	b.handOff(t, prompts)
	ctxA, killA := context.WithCancel(t.Context())
	var once sync.Once
	// 25 prompts, max_requests 10: the last 5 go when flush_after passes.
	lim := fast
	lim.FlushAfter = 100 * time.Millisecond
	a := b.runner(t, lim, Hooks{AfterCreate: func(string, string) { once.Do(killA) }})
	a.cfg.Tick = 20 * time.Millisecond
	doneA := make(chan struct{})
	go func() { defer close(doneA); _ = a.Run(ctxA) }()
	<-ctxA.Done()
	<-doneA

	ctxB, stopB := context.WithCancel(t.Context())
	bb := b.runner(t, lim, Hooks{})
	bb.cfg.Tick = 20 * time.Millisecond
	doneB := make(chan struct{})
	go func() { defer close(doneB); _ = bb.Run(ctxB) }()
	deadline := time.Now().Add(20 * time.Second)
	for b.tally(t).succeeded < 25 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stopB()
	<-doneB
	if c := b.tally(t); c.succeeded != 25 || c.logRows != 25 {
		t.Fatalf("tally %+v, want 25 answers and 25 attempts", c)
	}
	b.checkSubmittedOnce(t, 25)
}

// Gemini with every batch sent as an input file: upload, create from the
// file, poll, download the responses file, ingest; answers at the batch
// price, the rest handed back.
func TestGeminiFileBatchFlow(t *testing.T) {
	t.Parallel()
	b := setup(t, batchfake.Gemini)
	b.handOff(t, mixedPrompts(20))
	b.drain(t, b.runner(t, fast, Hooks{}))
	if n, files := b.fake.Batches(), b.fake.FileBatches(); n != 2 || files != 2 {
		t.Errorf("%d provider batches, %d from a file; want 2 and 2", n, files)
	}
	b.checkSubmittedOnce(t, 20)
	if c := b.tally(t); c.succeeded != 14 || c.logBatch != 20 {
		t.Errorf("tally %+v, want 14 answered and 20 batch attempts", c)
	}
	if got := b.count(t, `SELECT count(*) FROM request_log WHERE outcome = 'ok'
		AND cost_usd > 0 AND cost_usd = round((input_tokens * 0.5 + output_tokens * 2.0) / 1e6, 10)`); got != 14 {
		t.Errorf("%d answers at the batch price, want 14", got)
	}
	// Gemini reports an expired request as DEADLINE_EXCEEDED (timeout).
	if got := b.count(t, `SELECT count(*) FROM request_log WHERE outcome IN ('server_error', 'timeout', 'quality_failed')`); got != 6 || len(b.pub.jobs) != 6 {
		t.Errorf("%d failed batch attempts, %d handed back; want 6 and 6", got, len(b.pub.jobs))
	}
}
