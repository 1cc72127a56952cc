package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/sim"
)

// TestCallMeanMakesCallsAverageIt runs benchPrompt's prompts on a sim model
// with the latency callMean picks and checks that the calls, timed, average
// the mean asked for (a sleep overshoots a little under load: the bound
// above is looser). The plain setting's calls are checked to be much
// shorter, which is why callMean exists.
func TestCallMeanMakesCallsAverageIt(t *testing.T) {
	const want = 200 * time.Millisecond
	setting, err := callMean(want)
	if err != nil {
		t.Fatal(err)
	}
	if setting <= want {
		t.Fatalf("callMean(%v) = %v; benchPrompt's short answers need a longer setting", want, setting)
	}
	mean := func(latency time.Duration) time.Duration {
		p := sim.New(map[string]sim.Model{"m": {Latency: latency, Capability: 1}})
		const n = 1000
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			sum time.Duration
		)
		for i := range n {
			wg.Go(func() {
				t0 := time.Now()
				if _, err := p.Complete(context.Background(), llm.Request{Model: "m", Prompt: benchPrompt(i), Seed: uint64(7*i + 3)}); err != nil {
					t.Error(err)
				}
				d := time.Since(t0)
				mu.Lock()
				sum += d
				mu.Unlock()
			})
		}
		wg.Wait()
		return sum / n
	}
	got := mean(setting)
	t.Logf("sim latency %v: calls averaged %v", setting, got)
	if got < want*9/10 || got > want*6/5 {
		t.Errorf("calls at sim latency %v averaged %v, want about %v", setting, got, want)
	}
	plain := mean(want)
	t.Logf("sim latency %v: calls averaged %v", want, plain)
	if got := plain; got > want*4/5 {
		t.Errorf("calls at sim latency %v averaged %v; expected the short answers to make them much shorter", want, got)
	}
}
