package e2e

// Issue 12: a tier whose first model is batch-mode (OpenAI's Batch API,
// Anthropic's Message Batches or Gemini Batch Mode, played by batchfake in
// this process) and whose next model is synchronous (sim). The real
// binaries run against it; some workers are killed at the batch fault
// points.

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/http/httptest"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/providerbatch/batchfake"
)

const batchKey = "sk-e2e-batch-key-0001"

// batchProvider is a provider batch API the tests run against: the fake's
// protocol, the batch-mode model of the routes, its batch price per MTok
// (half the price table's), and the variables that point the binaries at
// the fake.
type batchProvider struct {
	proto     batchfake.Protocol
	model     string
	in, out   float64
	envPrefix string
}

var (
	openaiBatch    = batchProvider{batchfake.OpenAI, "openai/gpt-4o-mini", 0.075, 0.30, "OPENAI"}
	anthropicBatch = batchProvider{batchfake.Anthropic, "anthropic/claude-haiku-4-5", 0.5, 2.5, "ANTHROPIC"}
	geminiBatch    = batchProvider{batchfake.Gemini, "gemini/gemini-2.5-flash", 0.15, 1.25, "GEMINI"}
)

// batchRoutes: simple prompts go to openai/gpt-4o-mini in batch mode, then
// to sim/steady; the other tiers use sim/steady only.
func batchRoutes(maxRequests int, flushAfter string) string {
	return openaiBatch.routes(maxRequests, flushAfter)
}

// routes: simple prompts go to p's model in batch mode, then to
// sim/steady; the other tiers use sim/steady only.
func (p batchProvider) routes(maxRequests int, flushAfter string) string {
	return fmt.Sprintf(`
tiers:
  simple:   [%[1]s, sim/steady]
  moderate: [sim/steady]
  complex:  [sim/steady]
models:
  %[1]s:
    batch: {max_requests: %[2]d, flush_after: %[3]s, poll_every: 100ms}
  sim/steady:
    latency: 5ms
    timeout: 5s
    max_retries: 1
    error_rate: 0.0
    rate_limit_rate: 0.0
    timeout_rate: 0.0
    weak_rate: 0.0
    capability: 1.0
    input_cost_per_mtok: 2.5
    output_cost_per_mtok: 10
cooldown:
  failures: 0
`, p.model, maxRequests, flushAfter)
}

// batchServer starts the fake OpenAI Batch API (see server).
func batchServer(t *testing.T) (*batchfake.Server, []string) {
	t.Helper()
	return openaiBatch.server(t)
}

// server starts p's fake batch API: of the requests, by their prompt text,
// about 4% error, 3% expire and 3% get a refusal (which fails the quality
// gate); the rest get a good answer. It returns the fake and the
// environment that points the binaries at it.
func (p batchProvider) server(t *testing.T) (*batchfake.Server, []string) {
	t.Helper()
	fake := &batchfake.Server{Protocol: p.proto, APIKey: batchKey, Fate: func(r batchfake.Request) batchfake.Fate {
		h := fnv.New32a()
		h.Write([]byte(r.Prompt))
		switch v := h.Sum32() % 100; {
		case v < 4:
			return batchfake.Fate{Kind: batchfake.Error, Class: "server"}
		case v < 7:
			return batchfake.Fate{Kind: batchfake.Expire}
		case v < 10:
			return batchfake.Fate{Kind: batchfake.Answer, Text: "I cannot help with that request."}
		}
		return batchfake.Fate{Kind: batchfake.Answer, Text: batchfake.DefaultAnswer(r.Prompt)}
	}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, []string{p.envPrefix + "_BASE_URL=" + srv.URL, p.envPrefix + "_API_KEY=" + batchKey}
}

// checkProviderBatch checks a finished run against the OpenAI fake (see
// checkProviderBatchOf).
func (b *bundle) checkProviderBatch(t *testing.T, ctx context.Context, fake *batchfake.Server, batch string, n int) {
	t.Helper()
	b.checkProviderBatchOf(t, ctx, openaiBatch, fake, batch, n)
}

// checkProviderBatchOf checks a finished batch-mode run against p: every
// prompt answered once (reconcile), every simple prompt sent to the
// provider exactly once, batch answers at the batch price, the rest
// answered by the next model in a later round, and every provider batch
// ingested.
func (b *bundle) checkProviderBatchOf(t *testing.T, ctx context.Context, p batchProvider, fake *batchfake.Server, batch string, n int) {
	t.Helper()
	rec := b.reconcile(t, ctx, batch, n)
	conn := b.pg(t, ctx)
	simple := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = $1 AND tier = 'simple'`, batch)
	if simple < n/4 {
		t.Fatalf("only %d simple prompts of %d: the test did not test batch mode", simple, n)
	}
	// Nothing submitted twice: one provider request per simple prompt, each
	// custom id once, one batch attempt per simple prompt.
	reqs := fake.Requests()
	if len(reqs) != simple {
		t.Errorf("the provider got %d requests for %d simple prompts", len(reqs), simple)
	}
	for id, k := range fake.Submitted() {
		if k != 1 {
			t.Errorf("custom id %s submitted %d times", id, k)
		}
	}
	if bad := queryInt(t, ctx, conn, `SELECT count(*) FROM results r WHERE r.batch_id = $1 AND r.tier = 'simple'
		AND (SELECT count(*) FROM request_log l WHERE l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id
		     AND l.model = $2 AND l.provider_batch_id IS NOT NULL AND l.attempt = 1) <> 1`, batch, p.model); bad != 0 {
		t.Errorf("%d simple prompts without exactly one batch attempt", bad)
	}
	// Batch answers cost the batch price (half of the price table's).
	byBatch := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = $1 AND model_used = $2`, batch, p.model)
	if byBatch < simple*8/10 {
		t.Errorf("%d of %d simple prompts answered by the batch model, want about 90%%", byBatch, simple)
	}
	if bad := queryInt(t, ctx, conn, `SELECT count(*) FROM request_log WHERE batch_id = $1 AND model = $2
		AND cost_usd <> round((input_tokens * $3::numeric + output_tokens * $4::numeric) / 1e6, 10)`, batch, p.model, p.in, p.out); bad != 0 {
		t.Errorf("%d batch attempts not at the batch price", bad)
	}
	if paid := queryInt(t, ctx, conn, `SELECT count(*) FROM request_log WHERE batch_id = $1 AND model = $2 AND outcome = 'ok' AND cost_usd > 0`,
		batch, p.model); paid != byBatch {
		t.Errorf("%d batch answers with a positive cost, want %d", paid, byBatch)
	}
	if bad := queryInt(t, ctx, conn, `SELECT count(*) FROM results r WHERE r.batch_id = $1 AND r.model_used = $2
		AND r.cost_usd <> (SELECT sum(cost_usd) FROM request_log l WHERE l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id)`, batch, p.model); bad != 0 {
		t.Errorf("%d batch-answered results whose cost is not their attempts' cost", bad)
	}
	// The others crossed a round: their batch attempt failed (error,
	// expiry, quality gate; Gemini reports an expiry as DEADLINE_EXCEEDED,
	// a timeout), then sim/steady answered as attempt 2.
	crossed := queryInt(t, ctx, conn, `SELECT count(*) FROM results r WHERE r.batch_id = $1 AND r.tier = 'simple'
		AND r.model_used = 'sim/steady' AND r.attempts >= 2
		AND EXISTS (SELECT 1 FROM request_log l WHERE l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id
		            AND l.model = $2 AND l.outcome IN ('server_error', 'batch_expired', 'timeout', 'quality_failed'))
		AND EXISTS (SELECT 1 FROM request_log l WHERE l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id
		            AND l.model = 'sim/steady' AND l.attempt = 2)`, batch, p.model)
	if crossed+byBatch != simple-queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = $1 AND tier = 'simple' AND status = 'failed'`, batch) {
		t.Errorf("simple prompts: %d answered by batch, %d in a second round; want every answered simple prompt in one of the two (of %d)", byBatch, crossed, simple)
	}
	if crossed == 0 {
		t.Errorf("no prompt crossed to the synchronous model: the test did not test the cascade across rounds")
	}
	if open := queryInt(t, ctx, conn, `SELECT count(*) FROM provider_batches WHERE state <> 'done'`); open != 0 {
		t.Errorf("%d provider batches not ingested", open)
	}
	if open := queryInt(t, ctx, conn, `SELECT count(*) FROM provider_batch_items WHERE state NOT IN ('done', 'handed_off')`); open != 0 {
		t.Errorf("%d provider batch items still open", open)
	}
	t.Logf("%d prompts: %d simple, %d answered at the batch price, %d crossed to sim/steady; %d provider batches; %d crash redeliveries",
		n, simple, byBatch, crossed, fake.Batches(), rec.CrashRedelivered)
}

func TestProviderBatch2000Prompts(t *testing.T) {
	b, ctx := setup(t, 3*time.Minute)
	const n = 2000
	fake, env := batchServer(t)
	b.enqueueFile(t, ctx, "pb", genPrompts(t, b.root, n))
	env = append(env, routesEnv(t, batchRoutes(400, "1s")), "WORKER_CONCURRENCY=32", "WORKER_EXIT_WHEN_IDLE=true")

	w1 := b.startWorker(t, ctx, "w1", env...)
	w2 := b.startWorker(t, ctx, "w2", env...)
	// While prompts wait at the provider, status and verify say so.
	waitUntil(t, ctx, "a provider batch to be submitted", func() bool { return fake.Batches() > 0 })
	if out, _ := b.run(t, ctx, "cascadectl", nil, "status", "pb"); !strings.Contains(out, "wait at provider batches: openai/gpt-4o-mini") &&
		fake.Batches() < 3 {
		t.Logf("status while batches run (may already be done):\n%s", out)
	}
	// verify during the run: prompts at the provider or handed back to the
	// stream are waiting, never lost (exit 3 or 0, not 1).
	for !w1.exited() || !w2.exited() {
		out, code := b.run(t, ctx, "cascadectl", nil, "verify", "pb")
		if code != 0 && code != 3 {
			t.Fatalf("cascadectl verify during the run: exit %d\n%s", code, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	w1.waitOK(t, 2*time.Minute)
	w2.waitOK(t, 2*time.Minute)
	b.checkProviderBatch(t, ctx, fake, "pb", n)
	if fake.Batches() < 3 {
		t.Errorf("%d provider batches for about 1,000 simple prompts with max_requests 400, want at least 3", fake.Batches())
	}
	out := b.ctl(t, ctx, 0, "batches", "list")
	if !strings.Contains(out, "openai/gpt-4o-mini") || !strings.Contains(out, "done") {
		t.Errorf("batches list:\n%s", out)
	}
	out = b.ctl(t, ctx, 0, "batches", "show", "1")
	if !strings.Contains(out, "state            done") || !strings.Contains(out, "done (ok)") {
		t.Errorf("batches show 1:\n%s", out)
	}
}

// The submitting worker dies after the provider accepted its batch and
// before the batch id was stored; the next workers find the batch with the
// provider's list endpoint and submit nothing twice.
func TestProviderBatchKillAfterCreate(t *testing.T) {
	b, ctx := setup(t, 3*time.Minute)
	const n = 1000
	fake, env := batchServer(t)
	b.enqueueFile(t, ctx, "pbk", genPrompts(t, b.root, n))
	// AckWait 2s: the dead worker's deliveries come back quickly.
	env = append(env, routesEnv(t, batchRoutes(300, "1s")), "NATS_ACK_WAIT=2s", "WORKER_CONCURRENCY=32", "WORKER_EXIT_WHEN_IDLE=true")

	faulty := b.startWorker(t, ctx, "faulty", append(env, "WORKER_FAULT=batch-after-create")...)
	if code := faulty.wait(t, time.Minute); code != 137 {
		t.Fatalf("faulty worker exited %d, want 137; output:\n%s", code, faulty.out)
	}
	conn := b.pg(t, ctx)
	lost := queryInt(t, ctx, conn, `SELECT count(*) FROM provider_batches WHERE state = 'submitting' AND provider_batch_id IS NULL`)
	if lost != 1 || fake.Batches() != 1 {
		t.Fatalf("after the crash: %d intents without an id, %d batches at the provider; want 1 and 1", lost, fake.Batches())
	}
	w1 := b.startWorker(t, ctx, "w1", env...)
	w2 := b.startWorker(t, ctx, "w2", env...)
	w1.waitOK(t, 2*time.Minute)
	w2.waitOK(t, 2*time.Minute)
	if !strings.Contains(w1.out.String()+w2.out.String(), "found a batch whose id was not recorded") {
		t.Errorf("no worker reported finding the unrecorded batch")
	}
	b.checkProviderBatch(t, ctx, fake, "pbk", n)
}

// The ingesting worker dies after the first committed chunk of a batch's
// results; the next workers ingest only the rest.
func TestProviderBatchKillMidIngest(t *testing.T) {
	b, ctx := setup(t, 3*time.Minute)
	const n = 1500
	fake, env := batchServer(t)
	b.enqueueFile(t, ctx, "pbi", genPrompts(t, b.root, n))
	// About 700 simple prompts: a first batch of 600 (ingested in chunks
	// of 500), the rest once flush_after passes.
	env = append(env, routesEnv(t, batchRoutes(600, "4s")), "NATS_ACK_WAIT=2s", "WORKER_CONCURRENCY=32", "WORKER_EXIT_WHEN_IDLE=true")

	faulty := b.startWorker(t, ctx, "faulty", append(env, "WORKER_FAULT=batch-mid-ingest")...)
	if code := faulty.wait(t, time.Minute); code != 137 {
		t.Fatalf("faulty worker exited %d, want 137; output:\n%s", code, faulty.out)
	}
	conn := b.pg(t, ctx)
	settled := queryInt(t, ctx, conn, `SELECT count(*) FROM provider_batch_items WHERE state IN ('done', 'handing_off', 'handed_off')`)
	waiting := queryInt(t, ctx, conn, `SELECT count(*) FROM provider_batch_items WHERE state = 'submitted'`)
	if settled == 0 || waiting == 0 {
		t.Fatalf("after the crash: %d items settled, %d still submitted; want some of each (the test did not test a crash mid-ingest)", settled, waiting)
	}
	w1 := b.startWorker(t, ctx, "w1", env...)
	w2 := b.startWorker(t, ctx, "w2", env...)
	w1.waitOK(t, 2*time.Minute)
	w2.waitOK(t, 2*time.Minute)
	b.checkProviderBatch(t, ctx, fake, "pbi", n)
}

// cascadectl batches cancel asks the provider to cancel a batch that is
// still running; the poller ingests it, and the cancelled prompts are
// answered by the next model.
func TestProviderBatchCancel(t *testing.T) {
	b, ctx := setup(t, 2*time.Minute)
	const n = 300
	fake, env := batchServer(t)
	fake.SetHold(true)
	b.enqueueFile(t, ctx, "pbc", genPrompts(t, b.root, n))
	env = append(env, routesEnv(t, batchRoutes(1000, "2s")), "WORKER_CONCURRENCY=32", "WORKER_EXIT_WHEN_IDLE=true")
	w := b.startWorker(t, ctx, "w1", env...)
	conn := b.pg(t, ctx)
	waitUntil(t, ctx, "a submitted provider batch", func() bool {
		return queryInt(t, ctx, conn, `SELECT count(*) FROM provider_batches WHERE id = 1 AND state = 'submitted'`) == 1
	})
	out := b.runWant(t, ctx, 0, "cascadectl", env, "batches", "cancel", "1")
	if !strings.Contains(out, "cancellation requested") {
		t.Errorf("batches cancel: %s", out)
	}
	fake.SetHold(false) // later batches run
	w.waitOK(t, time.Minute)
	if got := queryInt(t, ctx, conn, `SELECT count(*) FROM request_log WHERE batch_id = 'pbc' AND outcome = 'batch_canceled'`); got == 0 {
		t.Errorf("no request was logged as batch_canceled")
	}
	if got := queryInt(t, ctx, conn, `SELECT count(*) FROM request_log WHERE batch_id = 'pbc' AND outcome = 'ok'
		AND provider_batch_id = (SELECT provider_batch_id FROM provider_batches WHERE id = 1)`); got != 0 {
		t.Errorf("%d prompts answered by a batch that was cancelled before it ran", got)
	}
	b.checkBatch(t, ctx, "pbc", n)
	out = b.runWant(t, ctx, 1, "cascadectl", env, "batches", "cancel", "1")
	if !strings.Contains(out, "only a submitted batch can be cancelled") {
		t.Errorf("cancelling a done batch: %s", out)
	}
}

// A batch-mode first model at Anthropic and at Gemini, a synchronous next
// model: the same run as the OpenAI one, smaller.
func TestProviderBatchAnthropicAndGemini(t *testing.T) {
	for _, p := range []batchProvider{anthropicBatch, geminiBatch} {
		t.Run(string(p.proto), func(t *testing.T) {
			t.Parallel()
			b, ctx := setup(t, 3*time.Minute)
			const n = 400
			fake, env := p.server(t)
			b.enqueueFile(t, ctx, "pb", genPrompts(t, b.root, n))
			env = append(env, routesEnv(t, p.routes(100, "1s")), "WORKER_CONCURRENCY=32", "WORKER_EXIT_WHEN_IDLE=true")
			w1 := b.startWorker(t, ctx, "w1", env...)
			w2 := b.startWorker(t, ctx, "w2", env...)
			w1.waitOK(t, 2*time.Minute)
			w2.waitOK(t, 2*time.Minute)
			b.checkProviderBatchOf(t, ctx, p, fake, "pb", n)
			if fake.Batches() < 2 {
				t.Errorf("%d provider batches for about 200 simple prompts with max_requests 100, want at least 2", fake.Batches())
			}
			if out := b.ctl(t, ctx, 0, "batches", "list"); !strings.Contains(out, p.model) {
				t.Errorf("batches list:\n%s", out)
			}
		})
	}
}

// cascadectl cancel of a batch whose prompts wait at the provider, with no
// worker running: cascadectl itself cancels the provider batch holding only
// its prompts, once; the next worker ingests it; nothing of it is stored as
// an answer, nothing was submitted twice, and verify says complete
// (canceled).
func TestProviderBatchCanceledBatch(t *testing.T) {
	b, ctx := setup(t, 2*time.Minute)
	const n = 300
	fake, env := anthropicBatch.server(t)
	fake.SetHold(true)
	b.enqueueFile(t, ctx, "pbx", genPrompts(t, b.root, n))
	env = append(env, routesEnv(t, anthropicBatch.routes(1000, "1s")), "WORKER_CONCURRENCY=32", "WORKER_EXIT_WHEN_IDLE=true")
	w := b.startWorker(t, ctx, "w1", env...)
	conn := b.pg(t, ctx)
	waitUntil(t, ctx, "every prompt answered or at the provider", func() bool {
		return queryInt(t, ctx, conn, `SELECT (SELECT count(*) FROM results WHERE batch_id = 'pbx')
			+ (SELECT count(*) FROM provider_batch_items i JOIN provider_batches pb ON pb.id = i.provider_batch
			   WHERE i.batch_id = 'pbx' AND i.state = 'submitted' AND pb.state = 'submitted')`) == n
	})
	w.signal(t, syscall.SIGTERM)
	w.waitOK(t, time.Minute)
	atProvider := queryInt(t, ctx, conn, `SELECT count(*) FROM provider_batch_items WHERE batch_id = 'pbx' AND state = 'submitted'`)
	if atProvider < n/4 || fake.Cancels() != 0 {
		t.Fatalf("%d prompts at the provider, %d cancel calls before the cancel (the test did not test anything)", atProvider, fake.Cancels())
	}
	// Usually one provider batch; more when handing the prompts off took
	// longer than flush_after (1 s), as on a loaded machine (3 in a run at
	// load 40). Each is cancelled once.
	pbs := queryInt(t, ctx, conn, `SELECT count(DISTINCT provider_batch) FROM provider_batch_items WHERE batch_id = 'pbx' AND state = 'submitted'`)

	out := b.runWant(t, ctx, 0, "cascadectl", env, "cancel", "pbx")
	t.Logf("cascadectl cancel:\n%s", out)
	if !strings.Contains(out, fmt.Sprintf("%d at a provider, 0 of them in provider batches shared", atProvider)) ||
		!strings.Contains(out, "cancelled at the provider: msgbatch_") || fake.Cancels() != pbs {
		t.Errorf("cancel did not cancel the %d provider batch(es) once each (%d cancel calls):\n%s", pbs, fake.Cancels(), out)
	}
	fake.SetHold(false)
	b.startWorker(t, ctx, "w2", env...).waitOK(t, time.Minute)
	if fake.Cancels() != pbs {
		t.Errorf("%d cancel calls, want %d: the worker cancelled a batch cascadectl had cancelled", fake.Cancels(), pbs)
	}
	if got := queryInt(t, ctx, conn, `SELECT count(*) FROM provider_batches WHERE cancel_requested_at IS NOT NULL`); got != pbs {
		t.Errorf("%d provider batches with a recorded cancel, want %d", got, pbs)
	}
	if got := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'pbx' AND model_used = $1`, anthropicBatch.model); got != 0 {
		t.Errorf("%d answers of the cancelled provider batch stored", got)
	}
	if got := queryInt(t, ctx, conn, `SELECT count(*) FROM request_log WHERE batch_id = 'pbx' AND model = $1 AND outcome = 'batch_canceled' AND cost_usd = 0`,
		anthropicBatch.model); got != atProvider {
		t.Errorf("%d cancelled requests logged at no cost, want %d", got, atProvider)
	}
	for id, k := range fake.Submitted() {
		if k != 1 {
			t.Errorf("custom id %s submitted %d times", id, k)
		}
	}
	if got := queryInt(t, ctx, conn, `SELECT count(*) FROM provider_batch_items WHERE batch_id = 'pbx' AND NOT (state = 'done' AND outcome = 'canceled')`); got != 0 {
		t.Errorf("%d provider batch items of the canceled batch not settled as canceled", got)
	}
	v := b.ctl(t, ctx, 0, "verify", "pbx")
	if !strings.Contains(v, "complete (canceled)") || !regexp.MustCompile(fmt.Sprintf(`canceled +%d `, atProvider)).MatchString(v) {
		t.Errorf("verify of the canceled batch (%d canceled at the provider):\n%s", atProvider, v)
	}
	if show := b.ctl(t, ctx, 0, "batches", "show", "1"); !strings.Contains(show, "cancel requested") {
		t.Errorf("batches show 1:\n%s", show)
	}
}
