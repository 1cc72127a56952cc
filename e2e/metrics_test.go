package e2e

import (
	"context"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads a worker's /metrics and parses it.
func scrape(t *testing.T, ctx context.Context, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, ctx, "http://"+addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// series returns a family's values by their labels, as "k=v,k=v" (sorted
// by name as Prometheus writes them); histograms give their sample count.
func series(fams map[string]*dto.MetricFamily, name string) map[string]float64 {
	out := map[string]float64{}
	f := fams[name]
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		var ls []string
		for _, l := range m.GetLabel() {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		var v float64
		switch {
		case m.Counter != nil:
			v = m.GetCounter().GetValue()
		case m.Gauge != nil:
			v = m.GetGauge().GetValue()
		case m.Histogram != nil:
			v = float64(m.GetHistogram().GetSampleCount())
		}
		out[strings.Join(ls, ",")] = v
	}
	return out
}

func get(t *testing.T, ctx context.Context, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsAfterSmallBatch runs one worker over 120 prompts, then checks
// that its labelled metrics say what Postgres says: prompts by batch, tier
// and status; attempts by model and outcome; cost by model; one latency
// observation per call; the consumer drained (read from JetStream); and
// that /readyz follows the broker.
func TestMetricsAfterSmallBatch(t *testing.T) {
	b, ctx := setup(t, 2*time.Minute)
	const n = 120
	b.enqueueFile(t, ctx, "metrics", firstLines(t, b.root, n))
	addr := freeAddr(t)
	w := b.startWorker(t, ctx, "m1", "METRICS_ADDR="+addr, "WORKER_CONCURRENCY=32", "METRICS_BATCH_LABELS=1")
	conn := b.pg(t, ctx)
	waitUntil(t, ctx, "every prompt answered and the consumer drained", func() bool {
		time.Sleep(50 * time.Millisecond)
		if queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'metrics'`) != n {
			return false
		}
		fams := scrape(t, ctx, addr)
		return drained(series(fams, "promptcascade_consumer_pending")) && drained(series(fams, "promptcascade_consumer_ack_pending")) &&
			series(fams, "promptcascade_in_flight")[""] == 0
	})
	fams := scrape(t, ctx, addr)

	// Prompts by batch, tier and status, as in results.
	want := map[string]float64{}
	for _, row := range queryStrings(t, ctx, conn, `SELECT 'batch=metrics,status=' || status || ',tier=' || tier || ' ' || count(*)
		FROM results WHERE batch_id = 'metrics' GROUP BY tier, status`) {
		k, v, _ := strings.Cut(row, " ")
		want[k] = atof(t, v)
	}
	got := series(fams, "promptcascade_prompts_total")
	// Requeued deliveries (transient cascades, retried later) are counted too;
	// compare the final settlements only.
	for k := range got {
		if strings.Contains(k, "status=requeued") {
			delete(got, k)
		}
	}
	assertSeries(t, "promptcascade_prompts_total", got, want)

	// Attempts by model and outcome, cost by model, calls: as in request_log.
	want = map[string]float64{}
	for _, row := range queryStrings(t, ctx, conn, `SELECT 'model=' || model || ',outcome=' || outcome || ' ' || count(*)
		FROM request_log WHERE batch_id = 'metrics' GROUP BY model, outcome`) {
		k, v, _ := strings.Cut(row, " ")
		want[k] = atof(t, v)
	}
	assertSeries(t, "promptcascade_attempts_total", series(fams, "promptcascade_attempts_total"), want)
	want = map[string]float64{}
	for _, row := range queryStrings(t, ctx, conn, `SELECT 'model=' || model || ' ' || sum(cost_usd)
		FROM request_log WHERE batch_id = 'metrics' GROUP BY model HAVING sum(cost_usd) > 0`) {
		k, v, _ := strings.Cut(row, " ")
		want[k] = atof(t, v)
	}
	gotCost := series(fams, "promptcascade_cost_usd_total")
	if len(gotCost) != len(want) {
		t.Errorf("cost series %v, want %v", gotCost, want)
	}
	for k, v := range want {
		if math.Abs(gotCost[k]-v) > 1e-9 {
			t.Errorf("promptcascade_cost_usd_total{%s} = %v, request_log says %v", k, gotCost[k], v)
		}
	}
	want = map[string]float64{}
	for _, row := range queryStrings(t, ctx, conn, `SELECT 'model=' || model || ' ' || count(*)
		FROM request_log WHERE batch_id = 'metrics' AND outcome NOT IN ('cooldown_skip', 'canceled')
			AND NOT (outcome = 'context_window' AND http_status IS NULL) GROUP BY model`) {
		k, v, _ := strings.Cut(row, " ")
		want[k] = atof(t, v)
	}
	assertSeries(t, "promptcascade_call_duration_seconds", series(fams, "promptcascade_call_duration_seconds"), want)
	// Each model's limiter (read from the cascade at scrape time) let the
	// same calls through.
	assertSeries(t, "promptcascade_model_calls_total", nonZero(series(fams, "promptcascade_model_calls_total")), want)
	cascaded := queryInt(t, ctx, conn, `SELECT count(*) FROM results r JOIN prompt_attempts a USING (batch_id, prompt_id)
		WHERE r.batch_id = 'metrics' AND r.status = 'succeeded' AND r.model_used <> a.first_model`)
	total := 0.0
	for _, v := range series(fams, "promptcascade_cascaded_total") {
		total += v
	}
	if int(total) != cascaded {
		t.Errorf("promptcascade_cascaded_total sums to %v, the views say %d", total, cascaded)
	}
	if c := series(fams, "promptcascade_commit_duration_seconds")[""]; c < 1 {
		t.Errorf("commit latency histogram has %v observations", c)
	}
	// One series per priority consumer, each read from JetStream.
	for _, name := range []string{"promptcascade_consumer_pending", "promptcascade_consumer_ack_pending"} {
		got := series(fams, name)
		for _, p := range []string{"high", "normal", "low"} {
			if v, ok := got["priority="+p]; !ok || v != 0 {
				t.Errorf("%s{priority=%q} = %v (exported: %v), want 0 after the batch", name, p, v, ok)
			}
		}
		if len(got) != 3 {
			t.Errorf("%s: series %v, want one per priority", name, got)
		}
	}

	// A second batch goes past METRICS_BATCH_LABELS=1: it shares _other.
	b.enqueueLines(t, ctx, "metrics2", `{"id":"x","prompt":"What is 2+2?"}`)
	waitUntil(t, ctx, "the second batch answered", func() bool {
		time.Sleep(50 * time.Millisecond)
		return queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'metrics2'`) == 1
	})
	waitUntil(t, ctx, "the second batch counted", func() bool {
		time.Sleep(50 * time.Millisecond)
		for k := range series(scrape(t, ctx, addr), "promptcascade_prompts_total") {
			if strings.HasPrefix(k, "batch=_other,") {
				return true
			}
		}
		return false
	})

	// Ready while connected; not ready while the broker is down.
	if code, body := get(t, ctx, "http://"+addr+"/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz = %d %q", code, body)
	}
	if code, _ := get(t, ctx, "http://"+addr+"/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	b.nats.Shutdown()
	waitUntil(t, ctx, "/readyz to report the broker down", func() bool {
		time.Sleep(50 * time.Millisecond)
		code, body := get(t, ctx, "http://"+addr+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "not ready: ")
	})
	b.nats.Restart()
	waitUntil(t, ctx, "/readyz to recover", func() bool {
		time.Sleep(100 * time.Millisecond)
		code, _ := get(t, ctx, "http://"+addr+"/readyz")
		return code == 200
	})
	w.signal(t, syscall.SIGTERM)
	w.waitOK(t, 30*time.Second)
}

// drained reports whether a consumer gauge has its three priorities'
// series, each 0 (a gauge left out because JetStream could not be read is
// not drained).
func drained(byPriority map[string]float64) bool {
	if len(byPriority) != 3 {
		return false
	}
	for _, v := range byPriority {
		if v != 0 {
			return false
		}
	}
	return true
}

// nonZero drops the series of models never called (the limiters of every
// routes model are exported).
func nonZero(m map[string]float64) map[string]float64 {
	for k, v := range m {
		if v == 0 {
			delete(m, k)
		}
	}
	return m
}

func assertSeries(t *testing.T, name string, got, want map[string]float64) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: nothing to compare with: the test did not test anything", name)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s{%s} = %v, Postgres says %v", name, k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s{%s} = %v, which Postgres does not have", name, k, v)
		}
	}
}

func atof(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return f
}
