package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/promptcascade/promptcascade/internal/limit"
)

// limiterCollector exports each model limiter's Snapshot at scrape time,
// one series per model.
type limiterCollector struct {
	read   func() []limit.Snapshot
	series []limiterSeries
}

type limiterSeries struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(limit.Snapshot) float64
}

func newLimiterCollector(read func() []limit.Snapshot) *limiterCollector {
	s := func(name, help string, kind prometheus.ValueType, v func(limit.Snapshot) float64) limiterSeries {
		return limiterSeries{prometheus.NewDesc(name, help, []string{"model"}, nil), kind, v}
	}
	g, c := prometheus.GaugeValue, prometheus.CounterValue
	return &limiterCollector{read: read, series: []limiterSeries{
		s("promptcascade_model_limit", "Adaptive concurrency limit of this process's calls to the model.", g, func(x limit.Snapshot) float64 { return float64(x.Limit) }),
		s("promptcascade_model_in_flight", "Calls to the model running in this process.", g, func(x limit.Snapshot) float64 { return float64(x.InFlight) }),
		s("promptcascade_model_waiting", "Prompts of this process waiting for the model's capacity.", g, func(x limit.Snapshot) float64 { return float64(x.Waiting) }),
		s("promptcascade_model_rate", "Adaptive requests per second learned from rate limits (0: none yet).", g, func(x limit.Snapshot) float64 { return x.Rate }),
		s("promptcascade_model_paused_seconds", "Time left of the model's pause after a rate limit or overload.", g, func(x limit.Snapshot) float64 { return x.Paused.Seconds() }),
		s("promptcascade_model_calls_total", "Calls to the model started by this process.", c, func(x limit.Snapshot) float64 { return float64(x.Calls) }),
		s("promptcascade_model_rate_limited_total", "Calls to the model that ended in a rate limit (429).", c, func(x limit.Snapshot) float64 { return float64(x.RateLimited) }),
		s("promptcascade_model_overloaded_total", "Calls to the model that ended overloaded (529, 503 overload).", c, func(x limit.Snapshot) float64 { return float64(x.Overloaded) }),
	}}
}

func (c *limiterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range c.series {
		ch <- s.desc
	}
}

func (c *limiterCollector) Collect(ch chan<- prometheus.Metric) {
	for _, snap := range c.read() {
		for _, s := range c.series {
			ch <- prometheus.MustNewConstMetric(s.desc, s.kind, s.value(snap), snap.Model)
		}
	}
}
