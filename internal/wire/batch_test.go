package wire_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/wire"
)

// batch: turns into batch-mode cascade policies and batch clients with the
// routes' limits; the simulated model gets its delay.
func TestBatchModels(t *testing.T) {
	t.Parallel()
	src := `
tiers:
  simple: [sim/small, openai/gpt-4o-mini, sim/large]
  moderate: [sim/large]
  complex: [sim/large]
models:
  sim/small:
    batch: {max_requests: 10, flush_after: 2s, poll_every: 1s, delay: 1h}
  openai/gpt-4o-mini:
    batch: true
`
	rt, err := config.ParseRoutes("routes.yaml", strings.NewReader(src), pricing.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := wire.Registry(rt, config.ProviderKeys{OpenAIKey: "sk-test"}, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ms, err := wire.BatchModels(rt, reg)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Name != "openai/gpt-4o-mini" || ms[1].Name != "sim/small" {
		t.Fatalf("batch models = %+v", ms)
	}
	if l := ms[1].Limits; l.MaxRequests != 10 || l.FlushAfter != 2*time.Second || l.PollEvery != time.Second {
		t.Errorf("sim/small limits = %+v", l)
	}
	if l := ms[0].Limits; l.MaxRequests != 50_000 || l.MaxBytes != 200<<20 {
		t.Errorf("openai limits = %+v, want the documented ones", l)
	}
	s := wire.CascadeSettings(rt, 1)
	if !s.Models["sim/small"].Batch || !s.Models["openai/gpt-4o-mini"].Batch || s.Models["sim/large"].Batch {
		t.Errorf("cascade policies do not follow batch:")
	}
	// The sim batch delay reached the provider: a batch is still running.
	b, err := ms[1].Client.SubmitBatch(context.Background(), "l", "small", []llm.BatchRequest{{CustomID: "a", Request: llm.Request{Prompt: "hi"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := ms[1].Client.GetBatch(context.Background(), b.ID); got.State != llm.BatchRunning {
		t.Errorf("sim batch with delay 1h is %s, want running", got.State)
	}
}
