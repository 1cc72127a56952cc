package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrConsumerGone is wrapped by Fetch and Pending when the consumer (or its
// stream) no longer exists on the server, for example after an operator
// deleted it. The caller decides: EnsureStream + EnsureConsumer to recreate
// it, or exit.
var ErrConsumerGone = errors.New("consumer does not exist")

// Delivery is one delivery of one message to this worker.
type Delivery struct {
	msg  jetstream.Msg
	meta *jetstream.MsgMetadata
}

// NewDelivery wraps a message received by other means (e.g. Consume).
func NewDelivery(m jetstream.Msg) Delivery {
	meta, err := m.Metadata()
	if err != nil {
		meta = nil // not a JetStream delivery; sequence numbers read as 0
	}
	return Delivery{msg: m, meta: meta}
}

// Msg is the underlying JetStream message.
func (d Delivery) Msg() jetstream.Msg { return d.msg }

// Data is the message body.
func (d Delivery) Data() []byte { return d.msg.Data() }

// Subject is the subject the message was published to.
func (d Delivery) Subject() string { return d.msg.Subject() }

// MsgID is the Nats-Msg-Id header (batch/id), if any.
func (d Delivery) MsgID() string { return d.msg.Headers().Get(jetstream.MsgIDHeader) }

// StreamSeq is the message's sequence in the stream (0 if unknown).
func (d Delivery) StreamSeq() uint64 {
	if d.meta == nil {
		return 0
	}
	return d.meta.Sequence.Stream
}

// NumDelivered is 1 on the first delivery, 2 on the first redelivery, and so
// on (0 if unknown).
func (d Delivery) NumDelivered() uint64 {
	if d.meta == nil {
		return 0
	}
	return d.meta.NumDelivered
}

// Published is when the message was stored in the stream.
func (d Delivery) Published() time.Time {
	if d.meta == nil {
		return time.Time{}
	}
	return d.meta.Timestamp
}

// Ack acknowledges the message: the work-queue stream deletes it.
func (d Delivery) Ack() error { return d.msg.Ack() }

// AckSync acknowledges and waits for the server to confirm.
func (d Delivery) AckSync(ctx context.Context) error { return d.msg.DoubleAck(ctx) }

// Nak asks for redelivery now.
func (d Delivery) Nak() error { return d.msg.Nak() }

// NakWithDelay asks for redelivery after delay.
func (d Delivery) NakWithDelay(delay time.Duration) error { return d.msg.NakWithDelay(delay) }

// Term stops redelivery for good (poison message).
func (d Delivery) Term() error { return d.msg.Term() }

// TermWithReason is Term with a reason the server reports in its advisory.
func (d Delivery) TermWithReason(reason string) error { return d.msg.TermWithReason(reason) }

// InProgress resets the AckWait timer: the work is still going on.
func (d Delivery) InProgress() error { return d.msg.InProgress() }

// Fetch returns up to n deliveries. It returns as soon as at least one
// message is available, waiting at most maxWait (and never past ctx) when
// none is; no message is an empty slice, not an error. Messages are never
// left stranded in a half-read pull request: it asks for what is there now,
// else waits for one message and then takes what else is there.
//
// A deleted consumer or stream gives an error wrapping ErrConsumerGone.
func (c *Conn) Fetch(ctx context.Context, cons jetstream.Consumer, n int, maxWait time.Duration) ([]Delivery, error) {
	if n <= 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out, err := c.fetchNoWait(cons, n, nil)
	if err != nil || len(out) > 0 || maxWait <= 0 {
		return out, err
	}

	wctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	batch, err := cons.Fetch(1, jetstream.FetchContext(wctx))
	if err != nil {
		return nil, c.fetchErr(ctx, err)
	}
	out, err = collect(batch, out, n)
	maxWaitPassed := ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded)
	if err != nil && !maxWaitPassed {
		return out, c.fetchErr(ctx, err)
	}
	if len(out) == 0 || n == 1 {
		return out, nil
	}
	return c.fetchNoWait(cons, n-1, out)
}

func (c *Conn) fetchNoWait(cons jetstream.Consumer, n int, out []Delivery) ([]Delivery, error) {
	batch, err := cons.FetchNoWait(n)
	if err != nil {
		return out, c.fetchErr(context.Background(), err)
	}
	out, err = collect(batch, out, n)
	if err != nil {
		return out, c.fetchErr(context.Background(), err)
	}
	return out, nil
}

func collect(batch jetstream.MessageBatch, out []Delivery, n int) ([]Delivery, error) {
	for m := range batch.Messages() {
		if out == nil {
			out = make([]Delivery, 0, n)
		}
		out = append(out, NewDelivery(m))
	}
	err := batch.Error()
	if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
		err = nil
	}
	return out, err
}

// fetchErr classifies a fetch error: a missing consumer becomes
// ErrConsumerGone; the caller's cancellation is returned as is.
func (c *Conn) fetchErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if consumerGone(err) {
		return fmt.Errorf("queue: fetch from consumer %s on stream %s: %w: %w", c.cfg.Consumer, c.cfg.Stream, ErrConsumerGone, err)
	}
	return fmt.Errorf("queue: fetch from consumer %s on stream %s: %w", c.cfg.Consumer, c.cfg.Stream, err)
}

func consumerGone(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrConsumerDeleted) ||
		errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, jetstream.ErrStreamNotFound)
}

// Pending reports how many messages the consumer has not yet delivered and
// how many are delivered but not acknowledged; both zero means the queue is
// idle (for --exit-when-idle).
func (c *Conn) Pending(ctx context.Context, cons jetstream.Consumer) (numPending, numAckPending uint64, err error) {
	info, err := cons.Info(ctx)
	if err != nil {
		if consumerGone(err) {
			return 0, 0, fmt.Errorf("queue: consumer %s info: %w: %w", c.cfg.Consumer, ErrConsumerGone, err)
		}
		return 0, 0, fmt.Errorf("queue: consumer %s info: %w", c.cfg.Consumer, err)
	}
	return info.NumPending, uint64(max(info.NumAckPending, 0)), nil
}
