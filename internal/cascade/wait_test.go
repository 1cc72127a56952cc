package cascade

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/limit"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

// A Run tells its CapacityWait when it waits for a model's capacity and
// when the wait ends: a prompt held up by max_concurrency is seen waiting
// until the slot is free, then not; a call with capacity at once never
// waited and is not told.
func TestCapacityWaitTold(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	b := setup(t, map[string][]step{"a": {{block: true, enter: entered}, ok(goodText)}}, func(s *Settings) {
		s.RateLimit = RateLimit{OnRateLimit: WaitOnRateLimit, MaxWait: time.Hour}
		s.Models["fake/a"] = ModelPolicy{Model: "fake/a", Timeout: time.Hour, Price: price, Caps: limit.Caps{MaxConcurrency: 1}}
	})
	var firstWaiting, secondWaiting, firstTold atomic.Int64
	tell := func(n, told *atomic.Int64) CapacityWait {
		return func(w bool) {
			if told != nil {
				told.Add(1)
			}
			if w {
				n.Add(1)
			} else {
				n.Add(-1)
			}
		}
	}
	holdCtx, release := context.WithCancel(WithCapacityWait(context.Background(), tell(&firstWaiting, &firstTold)))
	defer release()
	first := make(chan Outcome, 1)
	go func() { first <- b.c.Run(holdCtx, job("hold"), prompt.TierSimple, prompt.Signals{}, 1) }()
	<-entered
	if n, told := firstWaiting.Load(), firstTold.Load(); n != 0 || told != 0 {
		t.Fatalf("the first prompt, in its call: waiting %d after %d calls of its CapacityWait; want 0 after none (it had capacity at once)", n, told)
	}
	second := make(chan Outcome, 1)
	go func() {
		second <- b.c.Run(WithCapacityWait(context.Background(), tell(&secondWaiting, nil)), job("hi"), prompt.TierSimple, prompt.Signals{}, 1)
	}()
	for deadline := time.Now().Add(30 * time.Second); secondWaiting.Load() != 1 || b.c.targets[0].lim.Snapshot().Waiting != 1; {
		if time.Now().After(deadline) {
			t.Fatal("the second prompt was never told it waits for fake/a's capacity")
		}
		time.Sleep(time.Millisecond)
	}
	release()
	<-first
	out := <-second
	if out.Result.Status != prompt.StatusSucceeded {
		t.Fatalf("second prompt: %+v", out.Result)
	}
	if n := secondWaiting.Load(); n != 0 {
		t.Fatalf("the second prompt is still counted waiting (%d) after its answer", n)
	}
}
