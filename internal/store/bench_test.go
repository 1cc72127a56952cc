package store

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// BenchmarkWrite commits batches of 256 results with 1 to 3 attempts each
// (about 2 request_log rows per result), the worker's hot path. rows/s counts
// results plus request_log rows; results/s the prompts.
func BenchmarkWrite(b *testing.B) {
	st := setup(b)
	batch, nlog := benchBatch()
	for it := 0; b.Loop(); it++ {
		for i := range batch {
			batch[i].Job.ID = fmt.Sprintf("%d-%d", it, i)
		}
		if _, err := st.Write(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
	reportRows(b, len(batch), nlog)
}

// BenchmarkWriteParallel is BenchmarkWrite with 4 concurrent writers (as a
// worker committing from several goroutines): commits share WAL flushes.
func BenchmarkWriteParallel(b *testing.B) {
	st := setup(b, WithMaxConns(4))
	var next atomic.Int64
	_, nlog := benchBatch()
	b.SetParallelism(2) // 2 x GOMAXPROCS writers
	b.RunParallel(func(pb *testing.PB) {
		batch, _ := benchBatch()
		for pb.Next() {
			it := next.Add(1)
			for i := range batch {
				batch[i].Job.ID = fmt.Sprintf("%d-%d", it, i)
			}
			if _, err := st.Write(context.Background(), batch); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRows(b, 256, nlog)
}

func reportRows(b *testing.B, size, nlog int) {
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N*(size+nlog))/secs, "rows/s")
	b.ReportMetric(float64(b.N*size)/secs, "results/s")
}

// benchBatch is 256 succeeded results with 1, 2 or 3 attempts each.
func benchBatch() ([]prompt.Result, int) {
	const size = 256
	text := strings.Repeat("Explain the difference between a process and a thread. ", 4)
	models := []string{small, medium, large}
	batch := make([]prompt.Result, size)
	nlog := 0
	for i := range batch {
		n := 1 + i%3
		atts := make([]prompt.Attempt, n)
		for j := range atts {
			out := prompt.OutcomeQualityFailed
			if j == n-1 {
				out = prompt.OutcomeOK
			}
			atts[j] = att(j+1, models[j], out, 0.00012345, 150*time.Millisecond)
		}
		r := res("bench", "", prompt.TierSimple, prompt.StatusSucceeded, 1, 150*time.Millisecond, atts...)
		r.Job.Prompt = text
		r.Response = text + text
		batch[i] = r
		nlog += n
	}
	return batch, nlog
}
