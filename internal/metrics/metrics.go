// Package metrics exports a worker's state in the Prometheus format with the
// official client (github.com/prometheus/client_golang): prompts by batch,
// tier and status, attempts by model and outcome, cost and tokens by model,
// call and commit latency histograms, per-model limiter state, and the
// shared consumers' pending and ack-pending counts read from JetStream, by
// priority. It
// also serves /healthz and /readyz.
//
// Label values are bounded: models come from the routes, outcomes and
// statuses from fixed vocabularies, tiers are three, and the batch label
// takes the first Options.BatchLabels batch names this process sees (later
// batches share the value OtherBatch; 0 leaves it empty).
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/promptcascade/promptcascade/internal/limit"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/worker"
)

// OtherBatch is the batch label of batches past Options.BatchLabels.
const OtherBatch = "_other"

// Options say where the metrics read state that they do not count
// themselves. Nil functions leave their series out.
type Options struct {
	// BatchLabels is how many distinct batches get their own batch label
	// value; 0 leaves the label empty.
	BatchLabels int
	// Stats returns the worker's counters.
	Stats func() worker.Stats
	// Pending reads each priority consumer's pending and ack-pending
	// counts from JetStream (across every worker), at scrape time.
	Pending func(ctx context.Context) ([]queue.PriorityPending, error)
	// Limiters returns the state of each model's limiter.
	Limiters func() []limit.Snapshot
}

// Metrics is a worker's registry. It implements worker.Observer.
type Metrics struct {
	reg  *prometheus.Registry
	opts Options

	prompts   *prometheus.CounterVec
	cascaded  *prometheus.CounterVec
	attempts  *prometheus.CounterVec
	cost      *prometheus.CounterVec
	tokens    *prometheus.CounterVec
	calls     *prometheus.HistogramVec
	commits   prometheus.Histogram
	batchMu   sync.Mutex
	batchSeen map[string]bool

	// The series Settled updates, by label values (see series).
	promptSeries   series[promptKey, prometheus.Counter]
	cascadedSeries series[cascadedKey, prometheus.Counter]
	attemptSeries  series[attemptKey, prometheus.Counter]
	costSeries     series[string, prometheus.Counter]
	tokenSeries    series[tokenKey, prometheus.Counter]
	callSeries     series[string, prometheus.Observer]
}

type (
	promptKey   struct{ batch, tier, status string }
	cascadedKey struct{ batch, tier string }
	attemptKey  struct{ model, outcome string }
	tokenKey    struct{ model, direction string }
)

var _ worker.Observer = (*Metrics)(nil)

// New returns the metrics of one worker process.
func New(o Options) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), opts: o, batchSeen: map[string]bool{}}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.prompts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promptcascade_prompts_total",
		Help: "Deliveries settled by this worker after their commit, by batch, tier and status (succeeded, failed, requeued, already_done, canceled, handed_off).",
	}, []string{"batch", "tier", "status"})
	m.cascaded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promptcascade_cascaded_total",
		Help: "Succeeded prompts answered by a model other than the first one tried, by batch and tier.",
	}, []string{"batch", "tier"})
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promptcascade_attempts_total",
		Help: "Model attempts logged in request_log, by model and outcome (ok or the error class).",
	}, []string{"model", "outcome"})
	m.cost = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promptcascade_cost_usd_total",
		Help: "Money spent on model calls logged by this worker, in USD, by model.",
	}, []string{"model"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promptcascade_tokens_total",
		Help: "Billed tokens of logged model calls, by model and direction (input, output).",
	}, []string{"model", "direction"})
	m.calls = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "promptcascade_call_duration_seconds",
		Help:    "Wall time of model calls (skips excluded), by model.",
		Buckets: []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"model"})
	m.commits = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "promptcascade_commit_duration_seconds",
		Help:    "Time to commit one batch of finished prompts to Postgres, retries included.",
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5},
	})
	for _, c := range []prometheus.Collector{m.prompts, m.cascaded, m.attempts, m.cost, m.tokens, m.calls, m.commits} {
		f(c)
	}
	if o.Stats != nil {
		stat := func(name, help string, kind prometheus.ValueType, v func(worker.Stats) int64) {
			f(&funcCollector{desc: prometheus.NewDesc(name, help, nil, nil), kind: kind,
				value: func() float64 { return float64(v(o.Stats())) }})
		}
		stat("promptcascade_fetched_total", "Deliveries fetched.", prometheus.CounterValue, func(s worker.Stats) int64 { return s.Fetched })
		stat("promptcascade_dead_lettered_total", "Poison messages dead-lettered.", prometheus.CounterValue, func(s worker.Stats) int64 { return s.DeadLettered })
		stat("promptcascade_exhausted_total", "Messages settled after the server stopped delivering them (MaxDeliver).", prometheus.CounterValue, func(s worker.Stats) int64 { return s.Exhausted })
		stat("promptcascade_recovered_total", "Recoveries after the consumer or stream was found gone.", prometheus.CounterValue, func(s worker.Stats) int64 { return s.Recovered })
		stat("promptcascade_handed_off_total", "Prompts recorded for a batch-mode model's provider batch.", prometheus.CounterValue, func(s worker.Stats) int64 { return s.HandedOff })
		stat("promptcascade_commit_errors_total", "Failed commit attempts.", prometheus.CounterValue, func(s worker.Stats) int64 { return s.CommitErrors })
		stat("promptcascade_in_flight", "Deliveries held by this process.", prometheus.GaugeValue, func(s worker.Stats) int64 { return s.InFlight })
	}
	if o.Pending != nil {
		f(&pendingCollector{read: o.Pending,
			pending: prometheus.NewDesc("promptcascade_consumer_pending",
				"Messages of the shared consumer of each priority (high, normal, low) not yet delivered (JetStream consumer info; every worker reports the same value).", []string{"priority"}, nil),
			ackPending: prometheus.NewDesc("promptcascade_consumer_ack_pending",
				"Deliveries of the shared consumer of each priority (high, normal, low) not yet acknowledged, across every worker (JetStream consumer info).", []string{"priority"}, nil),
			errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "promptcascade_consumer_info_errors_total",
				Help: "Scrapes that could not read the consumer's state from JetStream."}),
		})
	}
	if o.Limiters != nil {
		f(newLimiterCollector(o.Limiters))
	}
	return m
}

// Registry returns the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) batch(b string) string {
	if m.opts.BatchLabels <= 0 {
		return ""
	}
	m.batchMu.Lock()
	defer m.batchMu.Unlock()
	if m.batchSeen[b] {
		return b
	}
	if len(m.batchSeen) < m.opts.BatchLabels {
		m.batchSeen[b] = true
		return b
	}
	return OtherBatch
}

// Settled counts a settled delivery and the attempts its commit logged.
func (m *Metrics) Settled(s worker.Settlement, r *prompt.Result) {
	if r == nil {
		m.prompt(promptKey{status: string(s)}).Inc()
		return
	}
	b := m.batch(r.Job.BatchID)
	m.prompt(promptKey{b, string(r.Tier), string(s)}).Inc()
	if s == worker.SettledSucceeded && len(r.Attempts) > 0 && r.ModelUsed != r.Attempts[0].Model {
		m.cascadedSeries.get(cascadedKey{b, string(r.Tier)}, func(k cascadedKey) prometheus.Counter {
			return m.cascaded.WithLabelValues(k.batch, k.tier)
		}).Inc()
	}
	for i := range r.Attempts {
		a := &r.Attempts[i]
		m.attemptSeries.get(attemptKey{a.Model, string(a.Outcome)}, func(k attemptKey) prometheus.Counter {
			return m.attempts.WithLabelValues(k.model, k.outcome)
		}).Inc()
		if a.CostUSD > 0 {
			m.costSeries.get(a.Model, func(model string) prometheus.Counter {
				return m.cost.WithLabelValues(model)
			}).Add(a.CostUSD)
		}
		if a.InputTokens > 0 {
			m.token(a.Model, "input").Add(float64(a.InputTokens))
		}
		if a.OutputTokens > 0 {
			m.token(a.Model, "output").Add(float64(a.OutputTokens))
		}
		if called(a) {
			m.callSeries.get(a.Model, func(model string) prometheus.Observer {
				return m.calls.WithLabelValues(model)
			}).Observe(a.Latency.Seconds())
		}
	}
}

func (m *Metrics) prompt(k promptKey) prometheus.Counter {
	return m.promptSeries.get(k, func(k promptKey) prometheus.Counter {
		return m.prompts.WithLabelValues(k.batch, k.tier, k.status)
	})
}

func (m *Metrics) token(model, direction string) prometheus.Counter {
	return m.tokenSeries.get(tokenKey{model, direction}, func(k tokenKey) prometheus.Counter {
		return m.tokens.WithLabelValues(k.model, k.direction)
	})
}

// called reports whether an attempt called its model (skips did not).
func called(a *prompt.Attempt) bool {
	switch a.Outcome {
	case prompt.OutcomeCooldownSkip, prompt.OutcomeCanceled, prompt.OutcomeCacheHit:
		return false
	case prompt.OutcomeContextWindow:
		return a.HTTPStatus != 0
	}
	return true
}

// Committed observes one commit's duration.
func (m *Metrics) Committed(_ int, d time.Duration) { m.commits.Observe(d.Seconds()) }

// Handler serves /metrics, /healthz (the process is up) and /readyz (ready
// returns nil: connected to NATS and Postgres, consumer present; otherwise
// 503 with ready's one-line reason).
func (m *Metrics) Handler(ready func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("/healthz", func(rw http.ResponseWriter, _ *http.Request) { _, _ = rw.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(rw http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), 5*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			http.Error(rw, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = rw.Write([]byte("ready\n"))
	})
	return mux
}

// funcCollector exports one value read at scrape time.
type funcCollector struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func() float64
}

func (c *funcCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c *funcCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.desc, c.kind, c.value())
}

// pendingCollector reads the consumer's state from JetStream at scrape time.
type pendingCollector struct {
	read                func(ctx context.Context) ([]queue.PriorityPending, error)
	pending, ackPending *prometheus.Desc
	errors              prometheus.Counter
}

func (c *pendingCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.ackPending
	c.errors.Describe(ch)
}

func (c *pendingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ps, err := c.read(ctx)
	if err != nil {
		// No value is better than a guessed one; the error counter tells.
		c.errors.Inc()
	} else {
		for _, p := range ps {
			ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(p.Pending), p.Priority)
			ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(p.AckPending), p.Priority)
		}
	}
	c.errors.Collect(ch)
}
