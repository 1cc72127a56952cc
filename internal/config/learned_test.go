package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/router"
)

// writeRouter trains a small router and writes it to dir/name.
func writeRouter(t *testing.T, dir, name string) string {
	t.Helper()
	var ex []router.Example
	for i := range 60 {
		hard := i%3 == 0
		p := fmt.Sprintf("what is %d plus %d", i, i+1)
		if hard {
			p = fmt.Sprintf("prove that the series %d converges and analyze its rate, then compare with %d other series", i, i+2)
		}
		ex = append(ex, router.Example{Prompt: p, Strong: hard, Weight: 1})
	}
	r, err := router.Train(ex, router.TrainOptions{Seed: 1, Meta: router.Meta{Cheap: "sim/small", Strong: "sim/large"}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := r.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

const learnedTiers = `tiers:
  simple: [sim/small]
  moderate: [sim/medium]
  complex: [sim/large]
`

func parseIn(t *testing.T, dir, body string) (*config.Routes, error) {
	t.Helper()
	path := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return config.LoadRoutes(path, pricing.Builtin())
}

func TestLearnedClassifier(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeRouter(t, dir, "router.json")
	r, err := parseIn(t, dir, learnedTiers+`classifier:
  kind: learned
  model: router.json
  shares: {simple: 0.5, moderate: 0.3, complex: 0.2}
shadow: {share: 0.02, judge: sim/gpt-4o}
`)
	if err != nil {
		t.Fatal(err)
	}
	l := r.Learned
	if l == nil || l.Path != filepath.Join(dir, "router.json") || l.Shares == nil || l.Router.Meta.Cheap != "sim/small" {
		t.Fatalf("learned = %+v", l)
	}
	if c := l.Cutoffs; c.Moderate != l.Router.Quantile(0.5) || c.Complex != l.Router.Quantile(0.8) {
		t.Errorf("cutoffs %+v, want the 50%% and 80%% training quantiles", c)
	}
	if r.Shadow.Share != 0.02 || r.Shadow.Judge != "sim/gpt-4o" {
		t.Errorf("shadow = %+v", r.Shadow)
	}
	if _, ok := r.Models["sim/gpt-4o"]; !ok {
		t.Error("the judge model is not resolved with the tiers' models")
	}

	r, err = parseIn(t, dir, learnedTiers+"classifier: {kind: learned, model: router.json, thresholds: {moderate: 0.35, complex: 0.7}}\n")
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Learned.Cutoffs; c.Moderate != 0.35 || c.Complex != 0.7 || r.Learned.Shares != nil {
		t.Errorf("thresholds: cutoffs %+v", c)
	}
	if r, err := parseIn(t, dir, learnedTiers); err != nil || r.Learned != nil || r.Shadow.Share != 0 {
		t.Errorf("no classifier section: learned %v, shadow %+v, %v", r.Learned, r.Shadow, err)
	}
}

func TestLearnedClassifierErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeRouter(t, dir, "router.json")
	corrupt := filepath.Join(dir, "corrupt.json")
	b, _ := os.ReadFile(filepath.Join(dir, "router.json"))
	os.WriteFile(corrupt, []byte(strings.Replace(string(b), `"seed":1,`, `"seed":2,`, 1)), 0o644)
	routes := func(s string) string { return learnedTiers + s }
	for _, tc := range []struct{ body, want string }{
		{routes("classifier:\n  kind: learned\n  model: missing.json\n  shares: {simple: 0.5, moderate: 0.3, complex: 0.2}\n"),
			"routes.yaml:7: classifier.model: router file " + filepath.Join(dir, "missing.json") + ": open"},
		{routes("classifier:\n  kind: learned\n  model: corrupt.json\n  thresholds: {moderate: 0.3, complex: 0.6}\n"),
			"routes.yaml:7: classifier.model: router file " + corrupt + ": checksum mismatch"},
		{routes("classifier:\n  kind: learned\n  shares: {simple: 0.5, moderate: 0.3, complex: 0.2}\n"),
			"routes.yaml:6: classifier.model: required when classifier.kind is learned"},
		{routes("classifier:\n  kind: learned\n  model: router.json\n"),
			"routes.yaml:6: classifier: kind learned needs shares"},
		{routes("classifier:\n  kind: learned\n  model: router.json\n  shares: {simple: 0.5, moderate: 0.3, complex: 0.3}\n"),
			"routes.yaml:8: classifier.shares: shares must add up to 1"},
		{routes("classifier:\n  kind: learned\n  model: router.json\n  shares: {simple: 1}\n  thresholds: {moderate: 0.3, complex: 0.6}\n"),
			"routes.yaml:9: classifier.thresholds: give shares or thresholds, not both"},
		{routes("classifier:\n  kind: learned\n  model: router.json\n  thresholds: {moderate: 0.8, complex: 0.6}\n"),
			"routes.yaml:8: classifier.thresholds: want 0 <= moderate <= complex <= 1"},
		{routes("classifier:\n  kind: learned\n  model: router.json\n  thresholds: {moderate: 0.3}\n"),
			"routes.yaml:8: classifier.thresholds: set both moderate and complex"},
		{routes("classifier:\n  kind: learnd\n"), `routes.yaml:6: classifier.kind: "learnd" is not heuristic or learned`},
		{routes("classifier:\n  model: router.json\n"), "routes.yaml:6: classifier.model: only for classifier.kind: learned"},
		{routes("classifier:\n  shares: {simple: 1}\n"), "routes.yaml:6: classifier.shares: only for classifier.kind: learned"},
		{routes("classifier:\n  sharse: {simple: 1}\n"), `routes.yaml:6: classifier: unknown key "sharse" (did you mean "shares"?)`},
		{routes("shadow: {share: 0.1}\n"), "routes.yaml:5: shadow.judge: required when shadow.share is set"},
		{routes("shadow: {share: 2, judge: sim/large}\n"), "routes.yaml:5: shadow.share: must be between 0 and 1, got 2"},
		{routes("shadow: {share: 0.1, judge: sim/nope}\n"), `routes.yaml:5: shadow.judge: unknown model "sim/nope"`},
	} {
		_, err := parseIn(t, dir, tc.body)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("routes\n%s\nerror %v\nwant %q", tc.body, err, tc.want)
		}
	}
}

func TestExampleRoutesLearnLoads(t *testing.T) {
	t.Parallel()
	r, err := config.LoadRoutes("../../routes/learn.yaml", pricing.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	if r.Learned != nil || r.Shadow.Share != 0.05 || r.Shadow.Judge != "sim/large" {
		t.Errorf("learn.yaml: learned %v, shadow %+v; want the heuristic with 5%% shadowed, judged by sim/large", r.Learned, r.Shadow)
	}
}
