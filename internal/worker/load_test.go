package worker_test

import (
	"context"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/limit"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/store"
	"github.com/promptcascade/promptcascade/internal/worker"
)

// The worker reports, per batch, the prompts it has in a model call
// (in flight) and those waiting for the model's capacity in its limiter
// (waiting), then deletes its rows once the batch is done and when it
// stops.
func TestWorkerReportsLoadPerBatch(t *testing.T) {
	b := setup(t, queue.Config{})
	block := make(chan struct{})
	b.provider.block = block
	// The prompt of batch b2 is answered only once the worker is stopping.
	hold := make(chan struct{})
	b.provider.answer = func(req llm.Request, n int) (llm.Response, error) {
		if strings.Contains(req.Prompt, "1000 plus") {
			<-hold
		}
		return goodAnswer(req, n)
	}
	reg := llm.NewRegistry()
	reg.Register("fake", b.provider)
	models := []string{"fake/a"}
	cas, err := cascade.New(cascade.Settings{
		Tiers: map[prompt.Tier][]string{prompt.TierSimple: models, prompt.TierModerate: models, prompt.TierComplex: models},
		Models: map[string]cascade.ModelPolicy{"fake/a": {Model: "fake/a", Timeout: time.Minute,
			Price: pricing.Price{InputPerMTok: 1, OutputPerMTok: 2}, Caps: limit.Caps{MaxConcurrency: 2}}},
		RateLimit: cascade.RateLimit{OnRateLimit: cascade.WaitOnRateLimit, MaxWait: time.Hour},
	}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.publish("b1", 6)
	cfg := b.cfg
	cfg.ExitWhenIdle = false
	cfg.Concurrency = 8
	cfg.Load = b.st
	cfg.LoadInterval = 100 * time.Millisecond
	cfg.DrainTimeout = 100 * time.Millisecond
	w := worker.New(cfg, queue.NewSource(b.qc, b.cons), b.st, classify.Default(), cas, slog.New(slog.DiscardHandler))
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		stop()
		<-done
	}()
	release := sync.OnceFunc(func() { close(hold) })
	defer release() // first: the answer it holds ignores the stop

	load := func() map[string]store.BatchLoadSum {
		got, err := b.st.LoadByBatch(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	// Two prompts hold fake/a's two slots; four wait for one.
	want := map[string]store.BatchLoadSum{"b1": {InFlight: 2, Waiting: 4, Workers: 1}}
	waitFor(t, func() bool { return reflect.DeepEqual(load(), want) })

	close(block)
	waitFor(t, func() bool { return b.count(`SELECT count(*) FROM results WHERE batch_id = 'b1'`) == 6 })
	// Nothing held: the row is deleted at the next report.
	waitFor(t, func() bool { return b.count(`SELECT count(*) FROM worker_batch_load`) == 0 })

	// Held again, then stopped: the clean exit leaves no row behind.
	pub := queue.NewPublisher(b.qc, 1)
	if err := pub.Publish(ctx, numberedJob("b2", 1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		return b.count(`SELECT count(*) FROM worker_batch_load WHERE batch_id = 'b2' AND in_flight = 1 AND waiting = 0`) == 1
	})
	stop()
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil
	if n := b.count(`SELECT count(*) FROM worker_batch_load`); n != 0 {
		t.Fatalf("%d worker_batch_load rows after the worker stopped", n)
	}
}
