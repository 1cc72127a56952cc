package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ParkedSubject is where a paused batch's messages wait when their text
// may not be kept in Postgres (STORE_PROMPTS=false): prefix.parked.batch.
// It is in the stream (prefix.>) but no consumer's filter matches it
// (prefix.*, prefix.high.*, prefix.low.*), so a message there is kept,
// undelivered, until `cascadectl resume` republishes it or `cancel`
// purges it.
func ParkedSubject(prefix, batch string) string {
	return prefix + ".parked." + batch
}

// Park keeps a paused batch's message in the stream on ParkedSubject, as
// received (body), and waits for the stream's ack. Its Nats-Msg-Id is
// <batch>/<id>/park-<stream sequence of the delivery>, so that parking
// the same delivery again (a redelivery after a crash before its ack) is
// dropped as a duplicate.
func (c *Conn) Park(ctx context.Context, batch, id string, seq uint64, body []byte) error {
	msgID := fmt.Sprintf("%s/park-%d", MsgID(batch, id), seq)
	if _, err := c.PublishRaw(ctx, ParkedSubject(c.cfg.SubjectPrefix, batch), body, msgID, nil); err != nil {
		return fmt.Errorf("queue: park %s: %w", msgID, err)
	}
	return nil
}

// StoredMsg is one message read from the stream.
type StoredMsg struct {
	Seq  uint64
	Data []byte
}

// ParkedMessages returns up to limit of batch's parked messages (Park)
// with stream sequences above after, in stream order.
func (c *Conn) ParkedMessages(ctx context.Context, batch string, after uint64, limit int) ([]StoredMsg, error) {
	s, err := c.js.Stream(ctx, c.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("queue: parked messages of %s: stream %s: %w", batch, c.cfg.Stream, err)
	}
	var out []StoredMsg
	err = scan(ctx, s, ParkedSubject(c.cfg.SubjectPrefix, batch), after+1, func(m *jetstream.RawStreamMsg) bool {
		out = append(out, StoredMsg{Seq: m.Sequence, Data: m.Data})
		return len(out) < limit
	})
	return out, err
}

// DeleteParked removes parked messages, by stream sequence, once they are
// back on their batch's subject. One already gone is not an error.
func (c *Conn) DeleteParked(ctx context.Context, seqs []uint64) error {
	s, err := c.js.Stream(ctx, c.cfg.Stream)
	if err != nil {
		return fmt.Errorf("queue: delete parked messages: stream %s: %w", c.cfg.Stream, err)
	}
	// The server answers a sequence deleted already with a generic
	// "deletion unsuccessful": look again before calling it an error.
	gone := func(seq uint64) bool {
		_, err := s.GetMsg(ctx, seq)
		return errors.Is(err, jetstream.ErrMsgNotFound)
	}
	for _, seq := range seqs {
		if err := s.DeleteMsg(ctx, seq); err != nil && !gone(seq) {
			return fmt.Errorf("queue: delete parked message %d: %w", seq, err)
		}
	}
	return nil
}
