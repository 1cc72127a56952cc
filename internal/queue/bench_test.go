package queue

import (
	"context"
	"testing"
	"time"
)

// BenchmarkPublish measures enqueue throughput: async publish with 4096
// pending acks to a file-backed work-queue stream, waiting for every ack.
func BenchmarkPublish(b *testing.B) {
	bb := setup(b, Config{})
	ctx := context.Background()
	if _, err := bb.conn.EnsureStream(ctx); err != nil {
		b.Fatal(err)
	}
	p := NewPublisher(bb.conn, 4096)
	jobs := make([]int, 0, b.N)
	for i := range b.N {
		jobs = append(jobs, i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for _, i := range jobs {
		if err := p.Publish(ctx, job("bench", i)); err != nil {
			b.Fatal(err)
		}
	}
	st, err := p.Wait(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if st.Published != int64(b.N) {
		b.Fatalf("published %+v, want %d", st, b.N)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkFetchAck measures the consuming side: Fetch in batches of 256
// and Ack each delivery, as the worker's hot path does around its work.
func BenchmarkFetchAck(b *testing.B) {
	bb := setup(b, Config{})
	ctx := context.Background()
	if _, err := bb.conn.EnsureStream(ctx); err != nil {
		b.Fatal(err)
	}
	cons, err := bb.conn.EnsureConsumer(ctx)
	if err != nil {
		b.Fatal(err)
	}
	publishN(b, bb.conn, "bench", b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var got int
	for got < b.N {
		ds, err := bb.conn.Fetch(ctx, cons, 256, time.Second)
		if err != nil {
			b.Fatal(err)
		}
		if len(ds) == 0 {
			b.Fatalf("stream ran dry after %d of %d", got, b.N)
		}
		got += len(ds)
		for i, d := range ds {
			ack := d.Ack
			if got == b.N && i == len(ds)-1 {
				// Acks are fire-and-forget; one confirmed ack after them
				// all means the server has processed them.
				ack = func() error { return d.AckSync(ctx) }
			}
			if err := ack(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
