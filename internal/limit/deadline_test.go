package limit

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"
)

// nth is the p99's selection: it must pick what sorting and indexing
// picks, for any input (runs of equal values, sorted, reversed).
func FuzzNthMatchesSort(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, uint16(3))
	f.Add(make([]byte, 64), uint16(5))
	f.Add([]byte{9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 9, 8, 7, 6, 5, 4}, uint16(15))
	f.Fuzz(func(t *testing.T, data []byte, k uint16) {
		var s []time.Duration
		for len(data) >= 2 {
			s = append(s, time.Duration(binary.LittleEndian.Uint16(data))%97) // many equal values
			data = data[2:]
		}
		if len(s) == 0 {
			return
		}
		i := int(k) % len(s)
		want := slices.Clone(s)
		slices.Sort(want)
		if got := nth(slices.Clone(s), i); got != want[i] {
			t.Fatalf("nth(%v, %d) = %v, want %v", s, i, got, want[i])
		}
	})
}

func TestNthShapes(t *testing.T) {
	for name, gen := range map[string]func(i int) time.Duration{
		"sorted":   func(i int) time.Duration { return time.Duration(i) },
		"reversed": func(i int) time.Duration { return time.Duration(latencySamples - i) },
		"equal":    func(int) time.Duration { return 7 },
		"two":      func(i int) time.Duration { return time.Duration(i % 2) },
		"sawtooth": func(i int) time.Duration { return time.Duration(i % 37) },
	} {
		s := make([]time.Duration, latencySamples)
		for i := range s {
			s[i] = gen(i)
		}
		want := slices.Clone(s)
		slices.Sort(want)
		for _, k := range []int{0, 1, 255, 506, 510, 511} {
			if got := nth(slices.Clone(s), k); got != want[k] {
				t.Errorf("%s: nth(k=%d) = %v, want %v", name, k, got, want[k])
			}
		}
	}
}

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
