package main

import (
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/limit"
)

func TestLimitMetricsAndSummary(t *testing.T) {
	snaps := []limit.Snapshot{
		{Model: "sim/a", Limit: 24, InFlight: 20, Waiting: 3, Rate: 41.5, Paused: 120 * time.Millisecond, Calls: 900, RateLimited: 12},
		{Model: "sim/b", Limit: 8},
	}
	var b strings.Builder
	writeLimitMetrics(&b, snaps)
	for _, want := range []string{
		"# TYPE promptcascade_model_limit gauge\n",
		`promptcascade_model_limit{model="sim/a"} 24` + "\n",
		`promptcascade_model_waiting{model="sim/a"} 3` + "\n",
		`promptcascade_model_rate{model="sim/a"} 41.5` + "\n",
		`promptcascade_model_paused_seconds{model="sim/a"} 0.12` + "\n",
		`promptcascade_model_rate_limited_total{model="sim/a"} 12` + "\n",
		`promptcascade_model_limit{model="sim/b"} 8` + "\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
	got := limitsSummary(snaps)
	if want := "sim/a limit 24 in_flight 20 waiting 3 rate 41.5/s paused 120ms 429s 12"; got != want {
		t.Errorf("summary %q, want %q (models never called are left out)", got, want)
	}
}
