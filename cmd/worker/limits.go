package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/promptcascade/promptcascade/internal/limit"
)

// limitsSource is what the progress line and /metrics need of the cascade.
type limitsSource interface{ Limits() []limit.Snapshot }

// writeLimitMetrics writes each model's limiter state in the Prometheus text
// format, one series per model.
func writeLimitMetrics(w io.Writer, snaps []limit.Snapshot) {
	for _, m := range []struct {
		name, help, kind string
		v                func(limit.Snapshot) float64
	}{
		{"promptcascade_model_limit", "Adaptive concurrency limit of this process's calls to the model.", "gauge", func(s limit.Snapshot) float64 { return float64(s.Limit) }},
		{"promptcascade_model_in_flight", "Calls to the model running in this process.", "gauge", func(s limit.Snapshot) float64 { return float64(s.InFlight) }},
		{"promptcascade_model_waiting", "Prompts of this process waiting for the model's capacity.", "gauge", func(s limit.Snapshot) float64 { return float64(s.Waiting) }},
		{"promptcascade_model_rate", "Adaptive requests per second learned from rate limits (0: none yet).", "gauge", func(s limit.Snapshot) float64 { return s.Rate }},
		{"promptcascade_model_paused_seconds", "Time left of the model's pause after a rate limit or overload.", "gauge", func(s limit.Snapshot) float64 { return s.Paused.Seconds() }},
		{"promptcascade_model_calls_total", "Calls to the model started by this process.", "counter", func(s limit.Snapshot) float64 { return float64(s.Calls) }},
		{"promptcascade_model_rate_limited_total", "Calls to the model that ended in a rate limit (429).", "counter", func(s limit.Snapshot) float64 { return float64(s.RateLimited) }},
		{"promptcascade_model_overloaded_total", "Calls to the model that ended overloaded (529, 503 overload).", "counter", func(s limit.Snapshot) float64 { return float64(s.Overloaded) }},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.kind)
		for _, s := range snaps {
			fmt.Fprintf(w, "%s{model=%s} %g\n", m.name, strconv.Quote(s.Model), m.v(s))
		}
	}
}

// limitsSummary is the progress line's view of the models called so far:
// "sim/a limit 24 in_flight 20 waiting 3 rate 41.5/s paused 120ms; ...".
func limitsSummary(snaps []limit.Snapshot) string {
	var b strings.Builder
	for _, s := range snaps {
		if s.Calls == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s limit %d in_flight %d waiting %d", s.Model, s.Limit, s.InFlight, s.Waiting)
		if s.Rate > 0 {
			fmt.Fprintf(&b, " rate %.1f/s", s.Rate)
		}
		if s.Paused > 0 {
			fmt.Fprintf(&b, " paused %v", s.Paused.Round(1e6))
		}
		if s.RateLimited > 0 {
			fmt.Fprintf(&b, " 429s %d", s.RateLimited)
		}
	}
	return b.String()
}
