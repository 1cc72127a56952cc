package worker

import (
	"context"
	"math/rand/v2"
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
	if !g.acquire(ctx, ctx, "", false) {
		t.Fatal("a free slot was not taken")
	}
	got := make(chan string, 3)
	waiters := []string{queue.PriorityLow, "", queue.PriorityHigh}
	for i, p := range waiters {
		go func() {
			if g.acquire(ctx, ctx, p, false) {
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
	go func() { done <- g.acquire(stop, ctx, "", false) }()
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

// state is how many slots are free and how many deliveries of rank r wait.
func (g *slotGate) state(r int) (free, waiting int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.free, len(g.waiting[r])
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
		w.slots.acquire(ctx, ctx, "", false)
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

// A slot that frees while a delivery of a higher priority than every
// waiting one is claimed (fetched, still in its checks) stays free for it;
// when the claim is dropped, the slot goes to the waiter.
func TestSlotGateKeepsFreedSlotForClaimedHigher(t *testing.T) {
	t.Parallel()
	g := newSlotGate(1)
	ctx := context.Background()
	if !g.acquire(ctx, ctx, "", false) {
		t.Fatal("a free slot was not taken")
	}
	g.claim("") // the normal waiter's own claim, ended by its acquire
	normal := make(chan bool, 1)
	go func() { normal <- g.acquire(ctx, ctx, "", true) }()
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.waiting[1]) == 1 })

	g.claim(queue.PriorityHigh)
	g.release()
	if free, waiting := g.state(1); free != 1 || waiting != 1 {
		t.Fatalf("after the release: %d free, %d normal waiting; want the slot kept free (1, 1) for the claimed high delivery", free, waiting)
	}
	if !g.acquire(ctx, ctx, queue.PriorityHigh, true) {
		t.Fatal("the claimed high delivery did not get the slot kept for it")
	}
	g.release()
	if !<-normal {
		t.Fatal("the normal waiter did not get the slot after the high one")
	}

	// A dropped claim hands the slot on at once.
	g.claim("")
	low := make(chan bool, 1)
	go func() { low <- g.acquire(ctx, ctx, queue.PriorityLow, false) }()
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.waiting[2]) == 1 })
	g.release()
	if free, waiting := g.state(2); free != 1 || waiting != 1 {
		t.Fatalf("after the release: %d free, %d low waiting; want the slot kept free (1, 1) for the claimed normal delivery", free, waiting)
	}
	g.unclaim("")
	if !<-low {
		t.Fatal("the low waiter did not get the slot once the claim was dropped")
	}
	g.release()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.free != 1 || g.claims != [3]int{} {
		t.Errorf("free %d, claims %v after the last release; want 1 and none", g.free, g.claims)
	}
}

// Claims of the same priority do not hold back its waiters: a batch of one
// priority works exactly as without claims.
func TestSlotGateSamePriorityClaimsDoNotWait(t *testing.T) {
	t.Parallel()
	g := newSlotGate(2)
	ctx := context.Background()
	for range 3 {
		g.claim("")
	}
	for i := range 2 {
		if !g.acquire(ctx, ctx, "", true) {
			t.Fatalf("acquire %d of 2 free slots failed", i+1)
		}
	}
	done := make(chan bool, 1)
	go func() { done <- g.acquire(ctx, ctx, "", true) }()
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.waiting[1]) == 1 })
	g.release()
	if !<-done {
		t.Fatal("the third delivery did not get the freed slot")
	}
}

// dispatchLocked leaves no waiter it could serve (acquire's fast path
// relies on it): after it, the first rank with waiters has no more slots
// free than claimed deliveries of higher ranks; a slot went to a rank only
// while every higher rank's waiters were served, and never out of the
// slots kept for claimed deliveries of higher ranks.
func TestSlotGateDispatchLeavesNoServableWaiter(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		g := newSlotGate(8)
		g.free = rng.IntN(9)
		var before [3]int
		for r := range g.waiting {
			g.claims[r] = rng.IntN(3)
			for range rng.IntN(4) {
				g.waiting[r] = append(g.waiting[r], make(chan struct{}))
			}
			before[r] = len(g.waiting[r])
		}
		free0 := g.free
		g.dispatchLocked()
		served := 0
		for r := range g.waiting {
			served += before[r] - len(g.waiting[r])
			if len(g.waiting[r]) < before[r] && g.free < g.claimedAbove(r) {
				t.Fatalf("rank %d was served into slots kept for %d claimed deliveries above it (%d free left)", r, g.claimedAbove(r), g.free)
			}
			if len(g.waiting[r]) > 0 {
				if g.free > g.claimedAbove(r) {
					t.Fatalf("rank %d still waits with %d free and %d claimed above it", r, g.free, g.claimedAbove(r))
				}
				for lower := r + 1; lower < len(g.waiting); lower++ {
					if len(g.waiting[lower]) < before[lower] {
						t.Fatalf("rank %d was served while rank %d still waits", lower, r)
					}
				}
				break
			}
		}
		if served != free0-g.free {
			t.Fatalf("%d waiters served, but %d slots were taken", served, free0-g.free)
		}
	}
}
