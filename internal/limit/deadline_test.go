package limit

import (
	"testing"
	"time"
)

// The p99 is computed when the 100th answer comes and again every 64
// answers (not on every Deadline, which takes no lock); between two
// computations Deadline stays.
func TestDeadlineRecomputedEvery64Answers(t *testing.T) {
	b := setup(t, Options{})
	answer := func(d time.Duration) { b.acquire(t, Want{}).Done(Result{Kind: Answered, Latency: d}) }
	for range minSamples - 1 {
		answer(500 * time.Millisecond)
	}
	if got := b.l.Deadline(30 * time.Second); got != 30*time.Second {
		t.Fatalf("deadline after 99 answers: %v, want the timeout", got)
	}
	answer(500 * time.Millisecond)
	if got := b.l.Deadline(30 * time.Second); got != 1500*time.Millisecond {
		t.Fatalf("deadline after 100 answers of 500ms: %v, want 1.5s", got)
	}
	for range p99Every - 1 {
		answer(2 * time.Second)
	}
	if got := b.l.Deadline(30 * time.Second); got != 1500*time.Millisecond {
		t.Fatalf("deadline 63 answers after its computation: %v, want it unchanged (1.5s)", got)
	}
	answer(2 * time.Second)
	if got := b.l.Deadline(30 * time.Second); got != 6*time.Second {
		t.Fatalf("deadline 64 answers after its computation, 64 of 164 at 2s: %v, want 6s", got)
	}
}

// BenchmarkDeadline is the cost per call of the adaptive deadline: one
// Deadline and one answer's latency sample.
func BenchmarkDeadline(b *testing.B) {
	l := New("sim/bench", Options{})
	for i := range 1000 {
		p, _ := l.Acquire(b.Context(), Want{})
		p.Done(Result{Kind: Answered, Latency: time.Duration(100+i%50) * time.Millisecond})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if l.Deadline(30*time.Second) <= 0 {
			b.Fatal("no deadline")
		}
		i++
		l.mu.Lock()
		l.sample(time.Duration(100+i%50) * time.Millisecond)
		l.mu.Unlock()
	}
}
