package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

// estimate prices every prompt at its tier's models with the tokens the
// worker would count: checked here against `cascadectl classify`'s tiers
// and token counts for the same file.
func TestBatchEstimate(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, 2*time.Minute)
	routes := writeFile(t, "est.yaml", `
tiers:
  simple:   [sim/a, sim/b]
  moderate: [sim/b]
  complex:  [sim/b, sim/a]
models:
  sim/a: {latency: 100ms, input_cost_per_mtok: 1, output_cost_per_mtok: 2, rpm: 60}
  sim/b: {latency: 1s, input_cost_per_mtok: 10, output_cost_per_mtok: 30}
`)
	file := firstLines(t, b.root, 300)
	out := b.runWant(t, ctx, 0, "cascadectl", []string{"ROUTES_FILE=" + routes}, "classify", file)
	maxTok := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(readFile(t, file)), "\n") {
		var j struct {
			ID        string `json:"id"`
			MaxTokens int    `json:"max_tokens"`
		}
		if err := json.Unmarshal([]byte(l), &j); err != nil {
			t.Fatal(err)
		}
		maxTok[j.ID] = j.MaxTokens
	}
	var wantLow, wantHigh float64
	n, simple, complexN := 0, 0, 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var c struct {
			ID         string `json:"id"`
			Tier       string `json:"tier"`
			TokenCount int    `json:"token_count"`
		}
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatal(err)
		}
		n++
		outTok := 150.0 // prompts without max_tokens
		if mt := maxTok[c.ID]; mt > 0 {
			outTok = float64(mt)
		}
		in := float64(c.TokenCount)
		a, bb := (in*1+outTok*2)/1e6, (in*10+outTok*30)/1e6
		switch c.Tier {
		case "simple":
			simple++
			wantLow, wantHigh = wantLow+a, wantHigh+a+bb
		case "moderate":
			wantLow, wantHigh = wantLow+bb, wantHigh+bb
		case "complex":
			complexN++
			wantLow, wantHigh = wantLow+bb, wantHigh+bb+a
		}
	}
	js := b.ctl(t, ctx, 0, "estimate", "--routes", routes, "--format", "json", "--workers", "2", "--concurrency", "10", file)
	var got struct {
		Total struct {
			Prompts     int     `json:"prompts"`
			CostLowUSD  float64 `json:"cost_low_usd"`
			CostHighUSD float64 `json:"cost_high_usd"`
		} `json:"total"`
		WallLow  float64 `json:"wall_time_low_seconds"`
		WallHigh float64 `json:"wall_time_high_seconds"`
		Wall     struct {
			Low, High struct {
				Seconds float64 `json:"seconds"`
				Binds   string  `json:"binds"`
			}
		} `json:"wall_time"`
	}
	if err := json.Unmarshal([]byte(js), &got); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	if got.Total.Prompts != n || n != 300 || math.Abs(got.Total.CostLowUSD-wantLow) > 1e-9 || math.Abs(got.Total.CostHighUSD-wantHigh) > 1e-9 {
		t.Errorf("estimate total = %+v; want %d prompts, $%.9f to $%.9f", got.Total, n, wantLow, wantHigh)
	}
	// sim/a's rpm 60 per worker binds: each of its calls takes
	// 60 s / (2 workers × 60) = 0.5 s of the wall time; it answers the simple prompts first
	// (low) and the complex ones last (high). The slots (2 × 10, calls of
	// 0.1 s and 1 s) allow 300 prompts in well under that.
	if wl, wh := 0.5*float64(simple), 0.5*float64(simple+complexN); got.WallLow != wl || got.WallHigh != wh ||
		got.Wall.Low.Binds != "sim/a rpm" || got.Wall.High.Binds != "sim/a rpm" || got.Wall.High.Seconds != wh {
		t.Errorf("wall time %v (%+v) to %v (%+v); want %v to %v, both bound by sim/a rpm", got.WallLow, got.Wall.Low, got.WallHigh, got.Wall.High, wl, wh)
	}
	text := b.ctl(t, ctx, 0, "estimate", "--routes", routes, file)
	if !strings.Contains(text, fmt.Sprintf("estimate for %d prompts", n)) || !strings.Contains(text, "no model called") ||
		!strings.Contains(text, "(first models answer; bound by sim/a rpm)") {
		t.Errorf("text estimate:\n%s", text)
	}
	// enqueue --budget auto takes the upper estimate as the batch's budget.
	out = b.runWant(t, ctx, 0, "enqueue", []string{"ROUTES_FILE=" + routes}, "--batch", "auto", "--budget", "auto", "--quiet", file)
	if want := fmt.Sprintf("batch auto: budget $%.6f (auto: every prompt cascading", wantHigh); !strings.Contains(out, want) {
		t.Errorf("enqueue --budget auto printed:\n%s\nwant %q", out, want)
	}
	var budget float64
	if err := b.pg(t, ctx).QueryRow(ctx, `SELECT budget_usd::float8 FROM batches WHERE batch_id = 'auto'`).Scan(&budget); err != nil ||
		math.Abs(budget-wantHigh) > 1e-9 {
		t.Errorf("stored budget %v (%v), want %v", budget, err, wantHigh)
	}

	// No model, no broker and no database is needed.
	b.runWant(t, ctx, 0, "cascadectl", []string{"DATABASE_URL=postgres://nobody@127.0.0.1:1/none", "NATS_URL=nats://127.0.0.1:1"},
		"estimate", "--routes", routes, file)
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
