package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/openai"
	"github.com/promptcascade/promptcascade/internal/llm/openai/openaitest"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/worker"
)

// runSharedWorkers runs n worker processes (each with its own cascade and
// limiters, as separate processes have) on one consumer until the queue is
// empty.
func runSharedWorkers(t *testing.T, b *bundle, api *openaitest.Limited, n int, policy cascade.OnRateLimit) {
	t.Helper()
	mini, _ := pricing.Builtin().Lookup("openai/gpt-4o-mini")
	pricey := pricing.Price{InputPerMTok: mini.InputPerMTok * 30, OutputPerMTok: mini.OutputPerMTok * 30}
	models := []string{"openai/cheap", "openai/pricey"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for i := range n {
		client, err := openai.New(openai.Config{BaseURL: api.URL, APIKey: "sk-test", HTTPClient: api.Client()})
		if err != nil {
			t.Fatal(err)
		}
		reg := llm.NewRegistry()
		reg.Register("openai", client)
		cas, err := cascade.New(cascade.Settings{
			Tiers: map[prompt.Tier][]string{prompt.TierSimple: models, prompt.TierModerate: models, prompt.TierComplex: models},
			Models: map[string]cascade.ModelPolicy{
				"openai/cheap":  {Model: "openai/cheap", Timeout: 10 * time.Second, MaxRetries: 1, Price: mini},
				"openai/pricey": {Model: "openai/pricey", Timeout: 10 * time.Second, MaxRetries: 1, Price: pricey},
			},
			Backoff:     cascade.Backoff{Base: 10 * time.Millisecond, Max: time.Second},
			RateLimit:   cascade.RateLimit{OnRateLimit: policy},
			MaxInFlight: 100,
		}, reg, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg := b.cfg
		cfg.WorkerID = fmt.Sprint("w", i)
		cfg.Concurrency = 100
		w := worker.New(cfg, queue.NewSource(b.qc, b.cons), b.st, classify.Default(), cas,
			slog.New(slog.DiscardHandler))
		wg.Go(func() {
			if err := w.Run(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

// TestRateLimitedProviderSharedByWorkers: three workers share a cheap
// model's capacity (100 requests/s, 429 beyond it) and an unlimited fallback
// priced 30× higher. Under on_rate_limit: wait they settle under the
// capacity without being told it: nearly every prompt is answered by the
// cheap model, most of its capacity is used, and few of its calls are 429s.
// Under cascade the fallback answers what the cheap model refuses.
func TestRateLimitedProviderSharedByWorkers(t *testing.T) {
	const prompts = 1500
	t.Run("wait", func(t *testing.T) {
		b := setup(t, queue.Config{})
		api := openaitest.NewLimited(100, 20*time.Millisecond)
		defer api.Close()
		b.publish("b1", prompts)
		start := time.Now()
		runSharedWorkers(t, b, api, 3, cascade.WaitOnRateLimit)
		c := api.Counts()
		cheapAnswers := b.count(`SELECT count(*) FROM results WHERE status = 'succeeded' AND model_used = 'openai/cheap'`)
		done := b.count(`SELECT count(*) FROM results WHERE status = 'succeeded'`)
		t.Logf("%v: %d prompts, %d by the cheap model; cheap calls %d (%d 429s, %.1f%%), pricey calls %d; capacity used %.1f%%",
			time.Since(start).Round(time.Millisecond), done, cheapAnswers, c.Cheap, c.Limited, 100*float64(c.Limited)/float64(c.Cheap), c.Other, 100*c.CapacityUsed)
		if done != prompts {
			t.Fatalf("%d prompts answered, want %d", done, prompts)
		}
		if share := float64(cheapAnswers) / prompts; share < 0.95 {
			t.Errorf("cheap model answered %.1f%% of the prompts, want >= 95%%", 100*share)
		}
		if c.CapacityUsed < 0.85 {
			t.Errorf("%.1f%% of the cheap model's capacity used, want >= 85%%", 100*c.CapacityUsed)
		}
		if share := float64(c.Limited) / float64(c.Cheap); share > 0.10 {
			t.Errorf("%.1f%% of the cheap model's calls were 429s, want <= 10%%", 100*share)
		}
		if n := b.count(`SELECT count(*) FROM request_log WHERE outcome = 'rate_limited'`); n != c.Limited {
			t.Errorf("request_log has %d rate_limited rows, the server sent %d 429s", n, c.Limited)
		}
	})
	t.Run("cascade", func(t *testing.T) {
		b := setup(t, queue.Config{})
		api := openaitest.NewLimited(100, 20*time.Millisecond)
		defer api.Close()
		b.publish("b1", prompts)
		runSharedWorkers(t, b, api, 3, cascade.CascadeOnRateLimit)
		c := api.Counts()
		pricey := b.count(`SELECT count(*) FROM results WHERE status = 'succeeded' AND model_used = 'openai/pricey'`)
		done := b.count(`SELECT count(*) FROM results WHERE status = 'succeeded'`)
		t.Logf("%d prompts, %d by the fallback; cheap calls %d (%d 429s)", done, pricey, c.Cheap, c.Limited)
		if done != prompts {
			t.Fatalf("%d prompts answered, want %d", done, prompts)
		}
		if share := float64(pricey) / prompts; share < 0.3 {
			t.Errorf("the fallback answered %.1f%% of the prompts; under cascade a rate limit falls back", 100*share)
		}
	})
}
