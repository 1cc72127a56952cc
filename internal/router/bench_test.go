package router_test

import (
	"runtime"
	"testing"
)

// loopPerCPU runs body in b.Loop on a locked OS thread and reports
// prompts/s of wall time and, on Linux, cpu-prompts/s: prompts per second of
// the thread's own CPU time, which a loaded machine does not skew (the wall
// time also counts the time the thread waited for a core).
func loopPerCPU(b *testing.B, body func(i int)) {
	b.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0, ok := threadCPU()
	n := 0
	for b.Loop() {
		body(n)
		n++
	}
	c1, _ := threadCPU()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "prompts/s")
	if ok && c1 > c0 {
		b.ReportMetric(float64(n)/(c1-c0).Seconds(), "cpu-prompts/s")
	}
}

// BenchmarkScore measures scoring speed on GSM8K prompts (about 240 bytes
// each); the goal is >= 100,000 prompts/s per core.
func BenchmarkScore(b *testing.B) {
	r := trainedRouter(b)
	bytes := 0
	for _, it := range gsm8kItems {
		bytes += len(it.Prompt)
	}
	b.SetBytes(int64(bytes / len(gsm8kItems)))
	b.ReportAllocs()
	loopPerCPU(b, func(n int) { r.Score(gsm8kItems[n%len(gsm8kItems)].Prompt) })
}

// BenchmarkClassify is the learned classifier as the worker runs it:
// heuristic signals plus the router's score.
func BenchmarkClassify(b *testing.B) {
	r := trainedRouter(b)
	cut, err := r.CutoffsFor(routerShares)
	if err != nil {
		b.Fatal(err)
	}
	cl, err := newClassifier(r, cut)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	loopPerCPU(b, func(n int) { cl.Classify(gsm8kItems[n%len(gsm8kItems)].Prompt) })
}
