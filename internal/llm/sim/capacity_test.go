package sim

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
)

func rateLimited(t *testing.T, err error) *llm.Error {
	t.Helper()
	var le *llm.Error
	if !errors.As(err, &le) || le.Class != llm.ClassRateLimited || le.HTTPStatus != 429 {
		t.Fatalf("got %v, want a 429 over capacity", err)
	}
	return le
}

func TestCapacityRPM(t *testing.T) {
	t.Parallel()
	p := New(map[string]Model{"m": {Capability: 1, RPM: 120}}) // 2 a second, 2 at once
	ctx := context.Background()
	for i := range 2 {
		if _, err := p.Complete(ctx, llm.Request{Model: "m", Prompt: simplePrompt, Seed: uint64(i)}); err != nil {
			t.Fatalf("call %d within capacity: %v", i, err)
		}
	}
	le := rateLimited(t, func() error {
		_, err := p.Complete(ctx, llm.Request{Model: "m", Prompt: simplePrompt, Seed: 3})
		return err
	}())
	if le.RetryAfter <= 0 || le.RetryAfter > 500*time.Millisecond {
		t.Fatalf("retry-after %v, want the time until the next request fits (≤ 500ms)", le.RetryAfter)
	}
	time.Sleep(le.RetryAfter)
	if _, err := p.Complete(ctx, llm.Request{Model: "m", Prompt: simplePrompt, Seed: 4}); err != nil {
		t.Fatalf("after the retry-after: %v", err)
	}
}

func TestCapacityTPM(t *testing.T) {
	t.Parallel()
	// 600 tokens a minute: 10 a second. The prompt alone is 7 tokens and
	// every answer is longer than 3, so the second call does not fit.
	p := New(map[string]Model{"m": {Capability: 1, TPM: 600}})
	ctx := context.Background()
	if _, err := p.Complete(ctx, llm.Request{Model: "m", Prompt: simplePrompt, MaxTokens: 20}); err != nil {
		t.Fatal(err)
	}
	le := rateLimited(t, func() error {
		_, err := p.Complete(ctx, llm.Request{Model: "m", Prompt: simplePrompt, MaxTokens: 20, Seed: 1})
		return err
	}())
	if le.RetryAfter <= 0 {
		t.Fatalf("retry-after %v, want the time until the tokens fit", le.RetryAfter)
	}
}

func TestCapacityMaxConcurrency(t *testing.T) {
	t.Parallel()
	// The two calls within max_concurrency last until the test ends them,
	// so the third call meets both in progress however slow the machine.
	p := New(map[string]Model{"m": {Capability: 1, Latency: time.Hour, MaxConcurrency: 2}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { _, errs[i] = p.Complete(ctx, llm.Request{Model: "m", Prompt: simplePrompt, Seed: uint64(i)}) })
	}
	m := p.models["m"]
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		m.mu.Lock()
		n := m.inflight
		m.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls in progress after 30s, want 2", n)
		}
	}
	le := rateLimited(t, func() error {
		_, err := p.Complete(context.Background(), llm.Request{Model: "m", Prompt: simplePrompt, Seed: 9})
		return err
	}())
	if le.RetryAfter != 0 {
		t.Fatalf("retry-after %v: a full max_concurrency gives no hint", le.RetryAfter)
	}
	cancel()
	wg.Wait()
	for i, err := range errs {
		// Admitted (not a 429), then ended by the test.
		var e *llm.Error
		if !errors.As(err, &e) || e.Class == llm.ClassRateLimited {
			t.Fatalf("call %d within capacity: %v, want it admitted and ended by its context", i, err)
		}
	}
	// Both slots are free again: a call is admitted.
	if _, over := m.admit(1); over {
		t.Fatal("after the calls ended a call is still over max_concurrency")
	}
	m.leave()
}
