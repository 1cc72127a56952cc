package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/queue"
)

// BenchmarkWorkerPipeline measures the whole worker on real JetStream and
// Postgres with a model that answers at once: fetch, decode, classify, count
// tokens, cascade, batched commit of a results row and a request_log row,
// ack. It reports prompts/s; DESIGN.md puts the bare pipeline (consume +
// COPY + ack) at about 40k/s on a 2-core machine.
func BenchmarkWorkerPipeline(b *testing.B) {
	bb := setup(b, queue.Config{MaxAckPending: 50000})
	bb.cfg.Concurrency = 1024
	n := max(b.N, 2000)
	bb.publish("bench", n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.ResetTimer()
	start := time.Now()
	w := bb.run(ctx)
	el := time.Since(start)
	b.StopTimer()
	if s := w.Stats(); s.Succeeded != int64(n) {
		b.Fatalf("succeeded %d of %d", s.Succeeded, n)
	}
	b.ReportMetric(float64(n)/el.Seconds(), "prompts/s")
}
