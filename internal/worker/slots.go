package worker

import (
	"context"
	"slices"
	"sync"

	"github.com/promptcascade/promptcascade/internal/queue"
)

// slotGate hands out the worker's slots (the prompts worked at once). A
// prefetched delivery that finds none free waits; a slot that frees goes to
// the waiting delivery of the highest priority, so that prefetching does not
// let normal prompts fetched earlier hold back a high batch.
type slotGate struct {
	mu      sync.Mutex
	size    int
	free    int
	waiting [3][]chan struct{} // by priority: high, normal, low
}

func newSlotGate(n int) *slotGate { return &slotGate{size: n, free: n} }

// rank orders a job's priority for slots: high first.
func rank(priority string) int {
	switch priority {
	case queue.PriorityHigh:
		return 0
	case queue.PriorityLow:
		return 2
	}
	return 1
}

// acquire takes a slot for a delivery of the given priority, waiting until
// one frees or either context ends (false: no slot taken).
func (g *slotGate) acquire(ctx, workCtx context.Context, priority string) bool {
	g.mu.Lock()
	if g.free > 0 {
		g.free--
		g.mu.Unlock()
		return true
	}
	r := rank(priority)
	ch := make(chan struct{})
	g.waiting[r] = append(g.waiting[r], ch)
	g.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
	case <-workCtx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if i := slices.Index(g.waiting[r], ch); i >= 0 {
		g.waiting[r] = slices.Delete(g.waiting[r], i, i+1)
		return false
	}
	// Handed a slot while stopping: give it back.
	g.releaseLocked()
	return false
}

// inUse is how many slots are taken.
func (g *slotGate) inUse() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.size - g.free
}

// release frees a slot: to the first waiter of the highest priority, or to
// the pool.
func (g *slotGate) release() {
	g.mu.Lock()
	g.releaseLocked()
	g.mu.Unlock()
}

func (g *slotGate) releaseLocked() {
	for r := range g.waiting {
		if q := g.waiting[r]; len(q) > 0 {
			close(q[0])
			g.waiting[r] = q[1:]
			return
		}
	}
	g.free++
}
