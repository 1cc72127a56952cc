package config

import (
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/pricing"
)

func parseBatch(t *testing.T, models string) (*Routes, error) {
	t.Helper()
	src := "tiers:\n  simple: [openai/gpt-4o-mini, sim/large]\n  moderate: [sim/large]\n  complex: [sim/large]\nmodels:\n" + models
	return ParseRoutes("routes.yaml", strings.NewReader(src), pricing.Builtin())
}

func TestBatchKey(t *testing.T) {
	t.Parallel()
	rt, err := parseBatch(t, "  openai/gpt-4o-mini:\n    batch: true\n  sim/large:\n    batch: false\n")
	if err != nil {
		t.Fatal(err)
	}
	got := rt.Models["openai/gpt-4o-mini"].Batch
	want := BatchMode{MaxRequests: 50_000, MaxBytes: 200 << 20, FlushAfter: 5 * time.Minute, PollEvery: time.Minute}
	if got == nil || *got != want {
		t.Fatalf("batch: true = %+v, want the OpenAI defaults %+v", got, want)
	}
	if rt.Models["sim/large"].Batch != nil {
		t.Errorf("batch: false turned batch mode on")
	}
	if bm := rt.BatchModels(); len(bm) != 1 {
		t.Errorf("BatchModels = %d, want 1", len(bm))
	}

	src := "tiers:\n  simple: [gemini/gemini-2.5-flash, sim/large]\n  moderate: [sim/large]\n  complex: [sim/large]\nmodels:\n  gemini/gemini-2.5-flash:\n    batch: true\n"
	rt, err = ParseRoutes("routes.yaml", strings.NewReader(src), pricing.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	want = BatchMode{MaxRequests: 10_000, MaxBytes: 2_000_000_000, FlushAfter: 5 * time.Minute, PollEvery: time.Minute}
	if got := rt.Models["gemini/gemini-2.5-flash"].Batch; got == nil || *got != want {
		t.Errorf("gemini batch: true = %+v, want the Files API's 2 GB %+v", got, want)
	}

	rt, err = parseBatch(t, "  openai/gpt-4o-mini:\n    batch: {max_requests: 500, max_bytes: 1000000, flush_after: 30s, poll_every: 10s}\n"+
		"  sim/large:\n    batch: {delay: 2s, expire_rate: 0.1}\n")
	if err != nil {
		t.Fatal(err)
	}
	want = BatchMode{MaxRequests: 500, MaxBytes: 1_000_000, FlushAfter: 30 * time.Second, PollEvery: 10 * time.Second}
	if got := rt.Models["openai/gpt-4o-mini"].Batch; got == nil || *got != want {
		t.Errorf("map form = %+v, want %+v", got, want)
	}
	if got := rt.Models["sim/large"].Batch; got == nil || got.SimDelay != 2*time.Second || got.SimExpireRate != 0.1 || got.MaxRequests != 100_000 {
		t.Errorf("sim batch = %+v", got)
	}
}

func TestBatchKeyErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ models, want string }{
		{"  openai/gpt-4o-mini:\n    batch: {max_requests: 50001}\n", "routes.yaml:7: models.openai/gpt-4o-mini.batch.max_requests: must be between 1 and openai's limit of 50000, got 50001"},
		{"  openai/gpt-4o-mini:\n    batch: {max_bytes: 300000000}\n", "models.openai/gpt-4o-mini.batch.max_bytes: must be between 1 and openai's limit of 209715200"},
		{"  openai/gpt-4o-mini:\n    batch: {flush_after: 0s}\n", "batch.flush_after: must be > 0"},
		{"  gemini/gemini-2.5-flash:\n    batch: {max_bytes: 2000000001}\n", "models.gemini/gemini-2.5-flash.batch.max_bytes: must be between 1 and gemini's limit of 2000000000, got 2000000001"},
		{"  gemini/gemini-2.5-flash:\n    batch: {max_requests: 10001}\n", "models.gemini/gemini-2.5-flash.batch.max_requests: must be between 1 and gemini's limit of 10000, got 10001"},
		{"  openai/gpt-4o-mini:\n    batch: {timout: 1s}\n", `batch: unknown key "timout"`},
		{"  openai/gpt-4o-mini:\n    batch: {flush_afer: 1s}\n", `batch: unknown key "flush_afer" (did you mean "flush_after"?)`},
		{"  openai/gpt-4o-mini:\n    batch: sometimes\n", `batch: want true or false, got "sometimes"`},
		{"  openai/gpt-4o-mini:\n    batch: {delay: 1s}\n", "models.openai/gpt-4o-mini.batch.delay: only simulated (sim/) models take this key"},
		{"  sim/large:\n    batch: {expire_rate: 2}\n", "models.sim/large.batch.expire_rate: must be between 0 and 1, got 2"},
	} {
		_, err := parseBatch(t, tc.models)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want one containing %q", tc.models, err, tc.want)
		}
	}
	src := "tiers:\n  simple: [groq/llama-3.3-70b-versatile]\n  moderate: [sim/large]\n  complex: [sim/large]\nmodels:\n  groq/llama-3.3-70b-versatile:\n    batch: true\n"
	if _, err := ParseRoutes("routes.yaml", strings.NewReader(src), pricing.Builtin()); err == nil || !strings.Contains(err.Error(), `provider "groq" has no batch API`) {
		t.Errorf("batch on groq: err = %v", err)
	}
}
