package queue_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
)

// Enqueue a batch: ensure the stream, publish with back-pressure, wait for
// every ack.
func ExamplePublisher() {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	conn, err := queue.Connect(ctx, queue.Config{URL: os.Getenv("NATS_URL")}, log)
	if err != nil {
		log.Error("connect", "err", err) // e.g. "nats-server 2.9.10 at ... is too old"
		return
	}
	defer conn.Close()
	if _, err := conn.EnsureStream(ctx); err != nil {
		log.Error("stream", "err", err)
		return
	}
	pub := queue.NewPublisher(conn, 4096)
	for i, text := range []string{"Summarize this paragraph.", "Compare and analyze these designs."} {
		job := prompt.Job{BatchID: "demo", ID: fmt.Sprint(i + 1), Prompt: text}
		if err := pub.Publish(ctx, job); err != nil {
			log.Error("rejected", "id", job.ID, "err", err)
		}
	}
	st, err := pub.Wait(ctx)
	fmt.Printf("published=%d duplicates=%d failed=%d err=%v\n", st.Published, st.Duplicates, st.Failed, err)
}

// Consume: fetch as many deliveries as there are free slots, ack after the
// result is stored, nak with a delay on transient failure, term poison.
func ExampleConn_Fetch() {
	ctx := context.Background()
	conn, err := queue.Connect(ctx, queue.Config{URL: os.Getenv("NATS_URL")}, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	cons, err := conn.EnsureConsumer(ctx)
	if err != nil {
		return
	}
	for {
		ds, err := conn.Fetch(ctx, cons, 64, 5*time.Second)
		if errors.Is(err, queue.ErrConsumerGone) {
			if cons, err = conn.EnsureConsumer(ctx); err != nil {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		if len(ds) == 0 {
			pending, ackPending, _ := conn.Pending(ctx, cons)
			if pending == 0 && ackPending == 0 {
				return // idle
			}
			continue
		}
		for _, d := range ds {
			job, err := queue.DecodeJob(d.Data(), 0)
			if err != nil {
				_ = d.TermWithReason(err.Error()) // after a dead_letters row
				continue
			}
			_ = job // ... classify, cascade, store ...
			_ = d.Ack()
		}
	}
}
