package worker

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/promptcascade/promptcascade/internal/queue"
)

// JetStreamSource adapts a queue connection and its durable consumer to Source.
func JetStreamSource(c *queue.Conn, cons jetstream.Consumer) Source {
	return &jsSource{c: c, cons: cons}
}

type jsSource struct {
	c    *queue.Conn
	cons jetstream.Consumer
}

func (s *jsSource) Fetch(ctx context.Context, n int, maxWait time.Duration) ([]Delivery, error) {
	ds, err := s.c.Fetch(ctx, s.cons, n, maxWait)
	out := make([]Delivery, len(ds))
	for i, d := range ds {
		out[i] = d
	}
	return out, err
}

func (s *jsSource) Pending(ctx context.Context) (uint64, uint64, error) {
	return s.c.Pending(ctx, s.cons)
}
