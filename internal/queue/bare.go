package queue

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BarePublish publishes n messages with nats.go's own async publish
// (jetstream.PublishMsgAsync, at most maxPending awaiting their ack), each
// on its batch's subject with its Nats-Msg-Id as Publisher sends it, and
// waits for every ack. It is the reference that bench/ceiling measures
// Publisher and enqueue against: no retries and no counting, and any
// failure is the error.
func (c *Conn) BarePublish(ctx context.Context, n, maxPending int, msg func(i int) (Message, error)) error {
	var failed atomic.Int64
	var firstErr atomic.Value
	js, err := jetstream.New(c.nc,
		jetstream.WithPublishAsyncMaxPending(max(maxPending, 1)),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err)
		}))
	if err != nil {
		return err
	}
	defer js.CleanupPublisher()
	// Wait for room as long as it takes, as Publisher does (nats.go gives
	// up after 200 ms by default, which a server slowed by millions of ids
	// in its duplicate window can exceed).
	stall := jetstream.WithStallWait(time.Minute)
	for i := range n {
		m, err := msg(i)
		if err != nil {
			return err
		}
		if _, err := js.PublishMsgAsync(natsMsg(c.cfg.SubjectPrefix, m), stall); err != nil {
			return fmt.Errorf("queue: bare publish %s: %w", m.MsgID, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("queue: bare publish: %d of %d messages failed, the first: %v", f, n, firstErr.Load())
	}
	return nil
}

// natsMsg is the message of m as Publisher and BarePublish send it: on its
// batch's subject (by priority), with its Nats-Msg-Id.
func natsMsg(prefix string, m Message) *nats.Msg {
	return &nats.Msg{
		Subject: PrioritySubject(prefix, m.Priority, m.Batch),
		Data:    m.Body,
		Header:  nats.Header{jetstream.MsgIDHeader: []string{m.MsgID}},
	}
}
