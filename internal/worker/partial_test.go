package worker_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/worker"
)

// cutShortSource returns its first non-empty fetch together with an error,
// as a fetch does when the broker goes away half-way through it.
type cutShortSource struct {
	worker.Source
	done atomic.Bool
}

func (s *cutShortSource) Fetch(ctx context.Context, n int, maxWait time.Duration) ([]worker.Delivery, error) {
	ds, err := s.Source.Fetch(ctx, n, maxWait)
	if err == nil && len(ds) > 0 && s.done.CompareAndSwap(false, true) {
		return ds, errors.New("nats: server shutdown")
	}
	return ds, err
}

func TestWorkerWorksDeliveriesOfAFetchCutShort(t *testing.T) {
	b := setup(t, queue.Config{})
	jobs := b.publish("b1", 40)
	src := &cutShortSource{Source: queue.NewSource(b.qc, b.cons)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w := worker.New(b.cfg, src, b.st, classify.Default(), b.cascade, nil)
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if !src.done.Load() {
		t.Fatal("the fetch was never cut short")
	}
	// Every prompt answered in this run: none of the cut-short fetch's
	// deliveries was dropped (they would only come back after AckWait).
	if got := b.count(`SELECT count(*) FROM results WHERE batch_id='b1'`); got != len(jobs) {
		t.Fatalf("results = %d, want %d", got, len(jobs))
	}
	if ctx.Err() != nil {
		t.Fatal("the worker did not find the consumer idle: a slot was lost")
	}
}

// fetchCounter wraps a Source and overrides only Fetch, as a test's or a
// metrics wrapper would.
type fetchCounter struct {
	worker.Source
	fetches atomic.Int64
}

func (s *fetchCounter) Fetch(ctx context.Context, n int, maxWait time.Duration) ([]worker.Delivery, error) {
	s.fetches.Add(1)
	return s.Source.Fetch(ctx, n, maxWait)
}

// TestWrappedSourceKeepsRecovery (issue 7): recovery and the exhausted
// sweep are part of Source, so a wrapper that overrides only Fetch still
// recreates a deleted consumer. (When they were optional abilities found
// by type assertion, such a wrapper lost them and the worker gave up.)
func TestWrappedSourceKeepsRecovery(t *testing.T) {
	b := setup(t, queue.Config{})
	b.cfg.ExitWhenIdle = false
	src := &fetchCounter{Source: queue.NewSource(b.qc, b.cons)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := worker.New(b.cfg, src, b.st, classify.Default(), b.cascade, nil)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	jobs := b.publish("a", 20)
	waitFor(t, func() bool { return w.Stats().Succeeded == int64(len(jobs)) })

	cfg := b.qc.Config()
	if err := b.qc.JetStream().DeleteConsumer(ctx, cfg.Stream, cfg.Consumer); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		select {
		case err := <-done:
			t.Fatalf("Run returned after the consumer was deleted: %v", err)
		default:
		}
		return w.Stats().Recovered == 1
	})
	more := b.publish("b", 20)
	waitFor(t, func() bool { return w.Stats().Succeeded == int64(len(jobs)+len(more)) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if src.fetches.Load() == 0 {
		t.Fatal("the wrapper's Fetch was never called: the test did not test the wrapper")
	}
}
