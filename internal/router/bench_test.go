package router_test

import (
	"testing"
)

// BenchmarkScore measures scoring speed on GSM8K prompts (about 240 bytes
// each); the goal is >= 100,000 prompts/s per core.
func BenchmarkScore(b *testing.B) {
	r := trainedRouter(b)
	n := 0
	bytes := 0
	for _, it := range gsm8kItems {
		bytes += len(it.Prompt)
	}
	b.SetBytes(int64(bytes / len(gsm8kItems)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.Score(gsm8kItems[n%len(gsm8kItems)].Prompt)
		n++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "prompts/s")
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
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		cl.Classify(gsm8kItems[n%len(gsm8kItems)].Prompt)
		n++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "prompts/s")
}
