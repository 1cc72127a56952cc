package worker

import (
	"context"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/queue"
)

// A slot that frees goes to the waiting delivery of the highest priority,
// whatever the order they started waiting in; a stop hands none out.
func TestSlotGatePriorityOrder(t *testing.T) {
	t.Parallel()
	g := newSlotGate(1)
	ctx := context.Background()
	if !g.acquire(ctx, ctx, "") {
		t.Fatal("a free slot was not taken")
	}
	got := make(chan string, 3)
	waiters := []string{queue.PriorityLow, "", queue.PriorityHigh}
	for i, p := range waiters {
		go func() {
			if g.acquire(ctx, ctx, p) {
				got <- p
			}
		}()
		// Each waits before the next starts waiting.
		waitFor(t, func() bool {
			g.mu.Lock()
			defer g.mu.Unlock()
			return len(g.waiting[0])+len(g.waiting[1])+len(g.waiting[2]) == i+1
		})
	}
	for _, want := range []string{queue.PriorityHigh, "", queue.PriorityLow} {
		g.release()
		if p := <-got; p != want {
			t.Fatalf("slot went to priority %q, want %q", p, want)
		}
	}

	stop, cancel := context.WithCancel(ctx)
	done := make(chan bool)
	go func() { done <- g.acquire(stop, ctx, "") }()
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.waiting[1]) == 1 })
	cancel()
	if <-done {
		t.Error("a stopped wait took a slot")
	}
	g.release()
	if g.free != 1 {
		t.Errorf("%d slots free after the last release, want 1", g.free)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// While half the prefetch waits for slots, the fetch loop gathers freed
// credits into one larger fetch; with slots free it fetches at once.
func TestFetchGathersWhilePrefetchWaits(t *testing.T) {
	t.Parallel()
	w := New(Config{Concurrency: 64}, nil, nil, nil, nil, nil) // Prefetch 16
	ctx := context.Background()
	if got := w.gather(ctx, 1); got != 1 {
		t.Fatalf("gather with every slot free took %d credits, want 1 (fetch at once)", got)
	}
	for range 64 {
		w.slots.acquire(ctx, ctx, "")
	}
	for range cap(w.credits) {
		<-w.credits
	}
	// 80 credits held, 64 slots busy: 16 prefetched wait. 7 credits free.
	for range 7 {
		w.credits <- struct{}{}
	}
	if got := w.gather(ctx, 1); got <= 1 || got > 8 {
		t.Errorf("gather took %d credits, want 2..8 (up to half the prefetch)", got)
	}
}
