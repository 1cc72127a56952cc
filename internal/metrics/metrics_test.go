package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/promptcascade/promptcascade/internal/limit"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/worker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func result(batch string, tier prompt.Tier, used string, as ...prompt.Attempt) *prompt.Result {
	return &prompt.Result{Job: prompt.Job{BatchID: batch, ID: "x"}, Tier: tier, ModelUsed: used, Attempts: as}
}

func TestSettledCountsWithBoundedBatchLabels(t *testing.T) {
	t.Parallel()
	m := New(Options{BatchLabels: 2})
	ok := prompt.Attempt{Model: "sim/a", Outcome: prompt.OutcomeOK, CostUSD: 0.25, InputTokens: 10, OutputTokens: 5, Latency: 300 * time.Millisecond, HTTPStatus: 200}
	bad := prompt.Attempt{Model: "sim/a", Outcome: prompt.OutcomeQualityFailed, CostUSD: 0.5, InputTokens: 10, OutputTokens: 1, Latency: time.Second, HTTPStatus: 200}
	skip := prompt.Attempt{Model: "sim/b", Outcome: prompt.OutcomeCooldownSkip}
	okB := prompt.Attempt{Model: "sim/b", Outcome: prompt.OutcomeOK, CostUSD: 1, Latency: 2 * time.Second, HTTPStatus: 200}
	m.Settled(worker.SettledSucceeded, result("b1", prompt.TierSimple, "sim/a", ok))
	m.Settled(worker.SettledSucceeded, result("b2", prompt.TierSimple, "sim/b", bad, skip, okB))
	m.Settled(worker.SettledFailed, result("b3", prompt.TierComplex, "sim/a", bad))
	m.Settled(worker.SettledRequeued, result("b4", prompt.TierComplex, "", skip))
	m.Settled(worker.SettledAlreadyDone, nil)
	m.Committed(3, 20*time.Millisecond)

	want := `
# HELP promptcascade_prompts_total Deliveries settled by this worker after their commit, by batch, tier and status (succeeded, failed, requeued, already_done, canceled, handed_off).
# TYPE promptcascade_prompts_total counter
promptcascade_prompts_total{batch="",status="already_done",tier=""} 1
promptcascade_prompts_total{batch="_other",status="failed",tier="complex"} 1
promptcascade_prompts_total{batch="_other",status="requeued",tier="complex"} 1
promptcascade_prompts_total{batch="b1",status="succeeded",tier="simple"} 1
promptcascade_prompts_total{batch="b2",status="succeeded",tier="simple"} 1
# HELP promptcascade_cascaded_total Succeeded prompts answered by a model other than the first one tried, by batch and tier.
# TYPE promptcascade_cascaded_total counter
promptcascade_cascaded_total{batch="b2",tier="simple"} 1
# HELP promptcascade_attempts_total Model attempts logged in request_log, by model and outcome (ok or the error class).
# TYPE promptcascade_attempts_total counter
promptcascade_attempts_total{model="sim/a",outcome="ok"} 1
promptcascade_attempts_total{model="sim/a",outcome="quality_failed"} 2
promptcascade_attempts_total{model="sim/b",outcome="cooldown_skip"} 2
promptcascade_attempts_total{model="sim/b",outcome="ok"} 1
# HELP promptcascade_cost_usd_total Money spent on model calls logged by this worker, in USD, by model.
# TYPE promptcascade_cost_usd_total counter
promptcascade_cost_usd_total{model="sim/a"} 1.25
promptcascade_cost_usd_total{model="sim/b"} 1
# HELP promptcascade_tokens_total Billed tokens of logged model calls, by model and direction (input, output).
# TYPE promptcascade_tokens_total counter
promptcascade_tokens_total{direction="input",model="sim/a"} 30
promptcascade_tokens_total{direction="output",model="sim/a"} 7
`
	// sim/b billed no tokens: it has no token series.
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"promptcascade_prompts_total", "promptcascade_cascaded_total", "promptcascade_attempts_total", "promptcascade_cost_usd_total",
		"promptcascade_tokens_total"); err != nil {
		t.Error(err)
	}
	// Skips are not calls: 3 calls of sim/a (ok, bad, bad), 1 of sim/b.
	if n := testutil.CollectAndCount(m.calls); n != 2 {
		t.Errorf("call histograms: %d series, want 2", n)
	}
	if got := histCount(t, m, "promptcascade_call_duration_seconds", "sim/a"); got != 3 {
		t.Errorf("sim/a calls observed = %d, want 3", got)
	}
	if got := histCount(t, m, "promptcascade_call_duration_seconds", "sim/b"); got != 1 {
		t.Errorf("sim/b calls observed = %d, want 1", got)
	}
	if got := histCount(t, m, "promptcascade_commit_duration_seconds", ""); got != 1 {
		t.Errorf("commits observed = %d, want 1", got)
	}
}

// Settled from many goroutines at once counts every prompt and attempt once
// (the series cache creates each series once, under -race too).
func TestSettledConcurrent(t *testing.T) {
	t.Parallel()
	m := New(Options{BatchLabels: 4})
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				model := fmt.Sprint("sim/m", (g+i)%3)
				a := prompt.Attempt{Model: model, Outcome: prompt.OutcomeOK, CostUSD: 0.5, InputTokens: 2, OutputTokens: 1, Latency: time.Millisecond, HTTPStatus: 200}
				m.Settled(worker.SettledSucceeded, result(fmt.Sprint("b", i%6), prompt.TierSimple, model, a))
			}
		})
	}
	wg.Wait()
	var prompts, attempts, cost, in float64
	for _, b := range []string{"b0", "b1", "b2", "b3", OtherBatch} {
		prompts += testutil.ToFloat64(m.prompts.WithLabelValues(b, "simple", "succeeded"))
	}
	for i := range 3 {
		model := fmt.Sprint("sim/m", i)
		attempts += testutil.ToFloat64(m.attempts.WithLabelValues(model, "ok"))
		cost += testutil.ToFloat64(m.cost.WithLabelValues(model))
		in += testutil.ToFloat64(m.tokens.WithLabelValues(model, "input"))
	}
	const n = goroutines * each
	if prompts != n || attempts != n || cost != n*0.5 || in != 2*n {
		t.Errorf("prompts %v, attempts %v, cost %v, input tokens %v; want %d, %d, %v, %d", prompts, attempts, cost, in, n, n, n*0.5, 2*n)
	}
	if got := testutil.CollectAndCount(m.prompts); got != 5 {
		t.Errorf("prompt series: %d, want 5 (4 batches and %s)", got, OtherBatch)
	}
}

// BenchmarkSettled is the worker's per-prompt metrics cost: one settled
// prompt with one called attempt.
func BenchmarkSettled(b *testing.B) {
	m := New(Options{BatchLabels: 100})
	a := prompt.Attempt{Model: "sim/simple-a", Outcome: prompt.OutcomeOK, CostUSD: 1e-5, InputTokens: 40, OutputTokens: 120, Latency: 200 * time.Millisecond, HTTPStatus: 200}
	r := result("bench-batch", prompt.TierSimple, a.Model, a)
	b.ReportAllocs()
	for b.Loop() {
		m.Settled(worker.SettledSucceeded, r)
	}
}

func histCount(t *testing.T, m *Metrics, name, model string) uint64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			if model == "" || (len(s.GetLabel()) == 1 && s.GetLabel()[0].GetValue() == model) {
				return s.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}

func TestBatchLabelOff(t *testing.T) {
	t.Parallel()
	m := New(Options{})
	m.Settled(worker.SettledSucceeded, result("b1", prompt.TierSimple, "sim/a"))
	if got := testutil.ToFloat64(m.prompts.WithLabelValues("", "simple", "succeeded")); got != 1 {
		t.Errorf("with BatchLabels 0 the batch label is empty; got %v", got)
	}
}

func TestScrapeTimeState(t *testing.T) {
	t.Parallel()
	pendingErr := error(nil)
	m := New(Options{
		Stats: func() worker.Stats { return worker.Stats{Fetched: 7, InFlight: 3, DeadLettered: 1} },
		Pending: func(context.Context) ([]queue.PriorityPending, error) {
			return []queue.PriorityPending{{Priority: "high", Pending: 5, AckPending: 2}, {Priority: "normal", Pending: 40, AckPending: 12},
				{Priority: "low", Pending: 0, AckPending: 1}}, pendingErr
		},
		Limiters: func() []limit.Snapshot {
			return []limit.Snapshot{{Model: "sim/a", Limit: 16, InFlight: 5, Waiting: 9, Rate: 2.5, Paused: 1500 * time.Millisecond, Calls: 100, RateLimited: 4}}
		},
	})
	want := `
# HELP promptcascade_consumer_ack_pending Deliveries of the shared consumer of each priority (high, normal, low) not yet acknowledged, across every worker (JetStream consumer info).
# TYPE promptcascade_consumer_ack_pending gauge
promptcascade_consumer_ack_pending{priority="high"} 2
promptcascade_consumer_ack_pending{priority="low"} 1
promptcascade_consumer_ack_pending{priority="normal"} 12
# HELP promptcascade_consumer_pending Messages of the shared consumer of each priority (high, normal, low) not yet delivered (JetStream consumer info; every worker reports the same value).
# TYPE promptcascade_consumer_pending gauge
promptcascade_consumer_pending{priority="high"} 5
promptcascade_consumer_pending{priority="low"} 0
promptcascade_consumer_pending{priority="normal"} 40
# HELP promptcascade_fetched_total Deliveries fetched.
# TYPE promptcascade_fetched_total counter
promptcascade_fetched_total 7
# HELP promptcascade_in_flight Deliveries held by this process.
# TYPE promptcascade_in_flight gauge
promptcascade_in_flight 3
# HELP promptcascade_model_in_flight Calls to the model running in this process.
# TYPE promptcascade_model_in_flight gauge
promptcascade_model_in_flight{model="sim/a"} 5
# HELP promptcascade_model_waiting Prompts of this process waiting for the model's capacity.
# TYPE promptcascade_model_waiting gauge
promptcascade_model_waiting{model="sim/a"} 9
# HELP promptcascade_model_limit Adaptive concurrency limit of this process's calls to the model.
# TYPE promptcascade_model_limit gauge
promptcascade_model_limit{model="sim/a"} 16
# HELP promptcascade_model_rate Adaptive requests per second learned from rate limits (0: none yet).
# TYPE promptcascade_model_rate gauge
promptcascade_model_rate{model="sim/a"} 2.5
# HELP promptcascade_model_paused_seconds Time left of the model's pause after a rate limit or overload.
# TYPE promptcascade_model_paused_seconds gauge
promptcascade_model_paused_seconds{model="sim/a"} 1.5
# HELP promptcascade_model_rate_limited_total Calls to the model that ended in a rate limit (429).
# TYPE promptcascade_model_rate_limited_total counter
promptcascade_model_rate_limited_total{model="sim/a"} 4
`
	names := []string{"promptcascade_consumer_ack_pending", "promptcascade_consumer_pending", "promptcascade_fetched_total",
		"promptcascade_in_flight", "promptcascade_model_in_flight", "promptcascade_model_waiting",
		"promptcascade_model_limit", "promptcascade_model_rate", "promptcascade_model_paused_seconds",
		"promptcascade_model_rate_limited_total"}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// When JetStream cannot be read, no guessed value: the gauges go and
	// the error counter says so.
	pendingErr = errors.New("consumer not found")
	want = `
# HELP promptcascade_consumer_info_errors_total Scrapes that could not read the consumer's state from JetStream.
# TYPE promptcascade_consumer_info_errors_total counter
promptcascade_consumer_info_errors_total 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"promptcascade_consumer_pending", "promptcascade_consumer_ack_pending", "promptcascade_consumer_info_errors_total"); err != nil {
		t.Error(err)
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	m := New(Options{})
	notReady := errors.New("not connected to NATS")
	var ready atomic.Bool
	ready.Store(true)
	srv := httptest.NewServer(m.Handler(func(context.Context) error {
		if ready.Load() {
			return nil
		}
		return notReady
	}))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz = %d %q", code, body)
	}
	ready.Store(false)
	if code, body := get("/readyz"); code != 503 || body != "not ready: not connected to NATS\n" {
		t.Errorf("/readyz = %d %q", code, body)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "# TYPE promptcascade_commit_duration_seconds histogram") {
		t.Errorf("/metrics = %d\n%s", code, body)
	}
}
