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
//
// A delivery is claimed as soon as it is fetched and decoded, before the
// checks that precede its work (is it answered already, is its batch
// running: a Postgres round trip). A slot that frees while a delivery of a
// higher priority than every waiting one is claimed stays free for it:
// without claims, each slot that freed during a high delivery's checks went
// to a normal one fetched earlier. Claims of a priority never hold back
// waiters of the same priority.
type slotGate struct {
	mu      sync.Mutex
	size    int
	free    int
	waiting [3][]chan struct{} // by priority: high, normal, low
	claims  [3]int             // claimed deliveries not yet at acquire, by priority
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

// claim records a fetched delivery of the given priority on its way to
// acquire. Every claim ends in exactly one acquire(claimed: true) or one
// unclaim.
func (g *slotGate) claim(priority string) {
	g.mu.Lock()
	g.claims[rank(priority)]++
	g.mu.Unlock()
}

// unclaim drops the claim of a delivery that will not be worked.
func (g *slotGate) unclaim(priority string) {
	g.mu.Lock()
	g.claims[rank(priority)]--
	g.dispatchLocked()
	g.mu.Unlock()
}

// claimedAbove is how many claimed deliveries rank before r.
func (g *slotGate) claimedAbove(r int) int {
	n := 0
	for _, c := range g.claims[:r] {
		n += c
	}
	return n
}

// acquire takes a slot for a delivery of the given priority, waiting until
// one frees or either context ends (false: no slot taken). claimed ends
// the delivery's claim.
func (g *slotGate) acquire(ctx, workCtx context.Context, priority string, claimed bool) bool {
	r := rank(priority)
	g.mu.Lock()
	if claimed {
		g.claims[r]--
	}
	// dispatchLocked leaves no waiter it could serve: a waiter of rank r
	// or higher means free <= claimedAbove(r) here, so this takes no slot
	// one of them should have, and a waiter that takes none leaves none
	// another could now take.
	if g.free > g.claimedAbove(r) {
		g.free--
		g.mu.Unlock()
		return true
	}
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

// release frees a slot: to the first waiter of the highest priority, unless
// a delivery of a higher priority than it is claimed (then, and without
// waiters, to the pool).
func (g *slotGate) release() {
	g.mu.Lock()
	g.releaseLocked()
	g.mu.Unlock()
}

func (g *slotGate) releaseLocked() {
	g.free++
	g.dispatchLocked()
}

// dispatchLocked hands free slots to waiters, highest priority first, while
// more slots are free than claimed deliveries of a higher priority than the
// waiter's.
func (g *slotGate) dispatchLocked() {
	for r := range g.waiting {
		for len(g.waiting[r]) > 0 {
			if g.free <= g.claimedAbove(r) {
				return
			}
			g.free--
			close(g.waiting[r][0])
			g.waiting[r] = g.waiting[r][1:]
		}
	}
}
