package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/estimate"
	"github.com/promptcascade/promptcascade/internal/input"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/wire"
)

const estimateUsage = "estimate [--routes FILE] [--format text|json] [--workers N] [--concurrency N] [--latency 1s] [--output-tokens N] [--input-format F] FILE... | -"

// estimateJSON is `estimate --format json`.
type estimateJSON struct {
	Routes string `json:"routes"`
	estimate.Estimate
	Workers         int           `json:"workers"`
	Concurrency     int           `json:"concurrency"`
	WallTimeLowSec  float64       `json:"wall_time_low_seconds"`
	WallTimeHighSec float64       `json:"wall_time_high_seconds"`
	WallTime        estimate.Wall `json:"wall_time"` // per model, and which limit binds
	BadLines        int           `json:"bad_lines"`
}

func cmdEstimate(ctx context.Context, e *env, args []string) error {
	fs := newFlags("estimate", e)
	routesFile := fs.String("routes", "", "routes file to estimate with (default: ROUTES_FILE, else the built-in routes)")
	format := fs.String("format", "text", "output: text or json")
	workers := fs.Int("workers", 1, "worker processes the wall time is computed for")
	concurrency := fs.Int("concurrency", 64, "prompts in flight per worker (WORKER_CONCURRENCY)")
	latency := fs.Duration("latency", time.Second, "mean call time assumed for models that declare none (real providers)")
	outTokens := fs.Int("output-tokens", estimate.DefaultOutputTokens, "expected answer tokens of a prompt without max_tokens")
	inFormat := fs.String("input-format", "auto", "input format: auto, jsonl, openai-batch, csv or text")
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return &exitError{2, fmt.Errorf("--format: %q is not text or json", *format)}
	}
	if *workers < 1 || *concurrency < 1 || *outTokens < 1 || *latency < 0 {
		return &exitError{2, errors.New("--workers, --concurrency and --output-tokens must be positive, --latency not negative")}
	}
	f, err := input.ParseFormat(*inFormat)
	if err != nil {
		return &exitError{2, fmt.Errorf("--input-format: %w", err)}
	}
	if len(files) == 0 {
		return &exitError{2, errors.New("usage: cascadectl " + estimateUsage)}
	}
	routes, err := e.routes(ctx, *routesFile)
	if err != nil {
		return err
	}
	cl, err := routesClassifier(routes)
	if err != nil {
		return err
	}
	sims, err := wire.SimModels(routes)
	if err != nil {
		return err
	}
	plan := estimate.FromRoutes(routes, cl, func(m config.Model) time.Duration {
		if s, ok := sims[strings.TrimPrefix(m.Name, "sim/")]; ok && m.Sim != nil {
			return s.Latency
		}
		return *latency
	})
	plan.OutputTokens = *outTokens
	est, err := estimate.New(plan)
	if err != nil {
		return err
	}
	bad, err := e.eachJob(files, f, nil, func(job prompt.Job) error { est.Add(job); return nil })
	if err != nil {
		return err
	}
	res := est.Result()
	wall := res.WallTime(*workers, *concurrency)
	if *format == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(estimateJSON{Routes: routes.Source, Estimate: res, Workers: *workers, Concurrency: *concurrency,
			WallTimeLowSec: wall.Low.Seconds, WallTimeHighSec: wall.High.Seconds, WallTime: wall, BadLines: bad}); err != nil {
			return err
		}
	} else {
		printEstimate(e.stdout, routes.Source, res, wall)
	}
	if bad > 0 {
		return &exitError{1, fmt.Errorf("%d bad line(s) left out of the estimate", bad)}
	}
	return nil
}

func printEstimate(w io.Writer, routes string, res estimate.Estimate, wall estimate.Wall) {
	fmt.Fprintf(w, "estimate for %d prompts (routes: %s); no model called\n", res.Total.Prompts, routes)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "tier\tprompts\tinput_tokens\toutput_tokens\tcost if first model answers\tcost if all cascade\tfirst → last model")
	row := func(t estimate.Tier, models string) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t$%.4f\t$%.4f\t%s\n", t.Tier, t.Prompts, t.InputTokens, t.OutputTokens, t.CostLowUSD, t.CostHighUSD, models)
	}
	for _, t := range res.Tiers {
		row(t, t.FirstModel+" → "+t.LastModel)
	}
	row(res.Total, "")
	tw.Flush()
	fmt.Fprintf(w, "\nwith %d worker(s) × %d in flight; limits are per worker process\n", wall.Workers, wall.Concurrency)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "model\tlatency\tlimits\tcalls (first answers / all cascade)\ttime on its own\tbinds")
	var batchModels []string
	for i, l := range res.Models {
		mt := wall.Models[i]
		if l.CallsHigh == 0 {
			continue
		}
		lat := roundDuration(time.Duration(l.LatencySec * float64(time.Second))).String()
		if l.Batch {
			lat = "-"
			batchModels = append(batchModels, l.Model)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d / %d\t%s / %s\t%s\n", l.Model, lat, limitsText(l), l.CallsLow, l.CallsHigh,
			boundText(mt.Low), boundText(mt.High), bindsText(mt))
	}
	tw.Flush()
	if len(batchModels) > 0 {
		fmt.Fprintf(w, "%s: answered through the provider's batch API (within 24 h), not in the wall time\n", strings.Join(batchModels, ", "))
	}
	fmt.Fprintf(w, "expected wall time: %s (first models answer; bound by %s) to %s (every prompt cascades; bound by %s)\n",
		roundDuration(wall.Low.Duration()), wall.Low.Binds, roundDuration(wall.High.Duration()), wall.High.Binds)
}

// limitsText is a model's declared limits, as the routes file names them.
func limitsText(l estimate.Load) string {
	if l.Batch {
		return "batch API"
	}
	var parts []string
	for _, c := range []struct {
		key string
		n   int
	}{{"rpm", l.RPM}, {"tpm", l.TPM}, {"max_concurrency", l.MaxConcurrency}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", c.key, c.n))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// bindsText says which limit binds a model, once when both cases agree.
func bindsText(mt estimate.ModelTime) string {
	low, high := mt.Low.Binds, mt.High.Binds
	if low == "" || low == high {
		return high
	}
	return low + " / " + high
}

// boundText is a model's time on its own, "-" when it has none.
func boundText(b estimate.Bound) string {
	if b.Binds == "" || b.Binds == estimate.BindsProviderBatch {
		return "-"
	}
	return roundDuration(b.Duration()).String()
}

// roundDuration keeps a duration readable: whole seconds from 10 s, else
// hundredths.
func roundDuration(d time.Duration) time.Duration {
	if d >= 10*time.Second {
		return d.Round(time.Second)
	}
	return d.Round(10 * time.Millisecond)
}
