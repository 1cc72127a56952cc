package metrics

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/promptcascade/promptcascade/internal/limit"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/worker"
)

// exported returns the name of every series family the worker exports,
// with every optional source set and every labelled series touched once.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	m := New(Options{BatchLabels: 1,
		Stats: func() worker.Stats { return worker.Stats{} },
		Pending: func(context.Context) ([]queue.PriorityPending, error) {
			return []queue.PriorityPending{{Priority: "normal"}}, nil
		},
		Limiters: func() []limit.Snapshot { return []limit.Snapshot{{Model: "sim/a"}} },
	})
	m.Settled(worker.SettledSucceeded, result("b", prompt.TierSimple, "sim/b",
		prompt.Attempt{Model: "sim/a", Outcome: prompt.OutcomeServerError, CostUSD: 1, InputTokens: 1, OutputTokens: 1},
		prompt.Attempt{Model: "sim/b", Outcome: prompt.OutcomeOK, CostUSD: 1, InputTokens: 1, OutputTokens: 1}))
	m.Committed(1, time.Millisecond)
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range fams {
		out[f.GetName()] = true
	}
	return out
}

var metricName = regexp.MustCompile(`\bpromptcascade_[a-z0-9_]+`)

// referenced lists the promptcascade_ series names an expression uses
// (histogram suffixes removed).
func referenced(expr string) []string {
	var out []string
	for _, n := range metricName.FindAllString(expr, -1) {
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			if base, ok := strings.CutSuffix(n, suf); ok && strings.HasSuffix(base, "_seconds") {
				n = base
			}
		}
		out = append(out, n)
	}
	return out
}

// TestDashboardAndAlertsUseExportedMetrics reads deploy/grafana and
// deploy/prometheus and checks that every series they query is one the
// worker exports (a renamed metric would leave a panel or an alert silently
// empty), and that the dashboard has the panels the README promises.
// promtool checks the PromQL itself (make lint).
func TestDashboardAndAlertsUseExportedMetrics(t *testing.T) {
	t.Parallel()
	have := exported(t)

	raw, err := os.ReadFile("../../deploy/grafana/promptcascade.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			GridPos struct{ X, Y, W, H int }
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("promptcascade.json: %v", err)
	}
	if dash.UID != "promptcascade" {
		t.Errorf("dashboard uid %q", dash.UID)
	}
	ids := map[int]bool{}
	var titles []string
	used := map[string]bool{}
	for _, p := range dash.Panels {
		titles = append(titles, p.Title)
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
			t.Errorf("panel %q: grid position %+v", p.Title, p.GridPos)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			names := referenced(tg.Expr)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q uses no promptcascade series", p.Title, tg.Expr)
			}
			for _, n := range names {
				used[n] = true
				if !have[n] {
					t.Errorf("panel %q queries %s, which the worker does not export", p.Title, n)
				}
			}
		}
	}
	for _, want := range []string{"Throughput by tier and status", "Spend rate by model", "Cascade rate per tier",
		"Call latency p95 per model", "Errors by class", "Queue depth over time"} {
		if !slices.Contains(titles, want) {
			t.Errorf("dashboard lacks the panel %q (has %v)", want, titles)
		}
	}

	rules, err := os.ReadFile("../../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range referenced(string(rules)) {
		used[n] = true
		if !have[n] {
			t.Errorf("alerts.yml uses %s, which the worker does not export", n)
		}
	}
	for _, alert := range []string{"PromptcascadeCascadeRateHigh", "PromptcascadeSpendRateHigh",
		"PromptcascadeQueueNotDraining", "PromptcascadeModelErrorShareHigh"} {
		if !strings.Contains(string(rules), "alert: "+alert+"\n") {
			t.Errorf("alerts.yml lacks %s", alert)
		}
	}
	// The panels that show what an alert watches use the alert's own
	// expression (its recording rule): a dashboard that counted cache hits
	// as errors while the rule did not would disagree with the alert.
	var file struct {
		Groups []struct {
			Rules []struct {
				Record string `yaml:"record"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(rules, &file); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	recorded := map[string]string{}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = strings.Join(strings.Fields(r.Expr), " ")
			}
		}
	}
	for panel, record := range map[string]string{
		"Model error share":     "promptcascade:model_error_share:ratio_rate15m",
		"Cascade rate per tier": "promptcascade:cascade_rate:ratio_rate15m",
	} {
		want, ok := recorded[record]
		if !ok {
			t.Errorf("alerts.yml records no %s", record)
			continue
		}
		var exprs []string
		for _, p := range dash.Panels {
			if p.Title == panel {
				for _, tg := range p.Targets {
					exprs = append(exprs, strings.Join(strings.Fields(tg.Expr), " "))
				}
			}
		}
		// The dashboard may narrow a rule to the batches picked at the top.
		unbatched := func(e string) string {
			return strings.NewReplacer(`{batch=~"$batch"}`, "", `batch=~"$batch",`, "").Replace(e)
		}
		if len(exprs) != 1 || unbatched(exprs[0]) != want {
			t.Errorf("panel %q queries %q, but alerts.yml's %s is %q", panel, exprs, record, want)
		}
	}

	var names []string
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("series used by the dashboard and alerts: %s", strings.Join(names, " "))
}
