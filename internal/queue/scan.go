package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// scan reads the messages stored on subject (a filter) from sequence from
// on, in stream order, one request each (a work-queue stream allows no
// second consumer on its subjects, so messages are read by sequence: the
// next one on the subject), calling visit for each until visit returns
// false or none is left. It is the one stream scan: the exhausted-delivery
// sweep (Source.Exhausted) and verify (Conn.ReadBatch) both use it.
func scan(ctx context.Context, s jetstream.Stream, subject string, from uint64, visit func(*jetstream.RawStreamMsg) bool) error {
	for seq := max(from, 1); ; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("stream %s: read %s from sequence %d: %w", s.CachedInfo().Config.Name, subject, seq, err)
		}
		if !visit(m) {
			return nil
		}
		seq = m.Sequence + 1
	}
}

// BatchQueue is what the stream holds of one batch (cascadectl verify).
type BatchQueue struct {
	StreamMissing   bool     // the stream does not exist
	ConsumerMissing bool     // the consumer does not exist (a worker creates it at start)
	ConsumerIdle    bool     // the consumer has nothing to deliver and nothing awaiting ack
	Messages        uint64   // messages stored on the batch's subject (queued or in flight)
	IDs             []string // prompt ids of those messages, when Scanned
	Scanned         bool     // IDs is complete
}

// ReadBatch counts the messages stored on batch's subject, asks the
// consumer whether it still has anything to deliver, and, when there are
// at most scanLimit messages, reads them to learn their prompt ids
// (scanLimit 0: count only).
func (c *Conn) ReadBatch(ctx context.Context, batch string, scanLimit int) (BatchQueue, error) {
	var bq BatchQueue
	s, err := c.js.Stream(ctx, c.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		bq.StreamMissing, bq.Scanned = true, true
		return bq, nil
	}
	if err != nil {
		return bq, fmt.Errorf("stream %s: %w", c.cfg.Stream, err)
	}
	// The batch's messages are on one subject per priority (a retry may
	// use another priority than enqueue did).
	subjects := BatchSubjects(c.cfg.SubjectPrefix, batch) // in Priorities' order
	firstSeq := make([]uint64, len(subjects))
	lastSeq := make([]uint64, len(subjects)) // the batch's last message on each subject
	for i, subject := range subjects {
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			return bq, fmt.Errorf("stream %s: info for %s: %w", c.cfg.Stream, subject, err)
		}
		bq.Messages += info.State.Subjects[subject]
		if info.State.Subjects[subject] == 0 {
			continue
		}
		firstSeq[i] = max(info.State.FirstSeq, 1)
		m, err := s.GetLastMsgForSubject(ctx, subject)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound): // taken since
		case err != nil:
			return bq, fmt.Errorf("stream %s: last message on %s: %w", c.cfg.Stream, subject, err)
		default:
			lastSeq[i] = m.Sequence
		}
	}
	// After the stream: a message still stored then and not acked since is
	// either pending at its consumer or never to be delivered again. A
	// consumer is idle only once it has also delivered the batch's last
	// message on its subject: nats-server acks a publish before it tells
	// the consumers (on a goroutine of its own), so for a moment a consumer
	// counts nothing pending for a message just published, which verify
	// would have called stranded.
	bq.ConsumerIdle = true
	for i, p := range Priorities {
		name := priorityConsumer(c.cfg.Consumer, p)
		cons, err := c.js.Consumer(ctx, c.cfg.Stream, name)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			bq.ConsumerMissing = true
		case err != nil:
			return bq, fmt.Errorf("consumer %s: %w", name, err)
		default:
			ci, err := cons.Info(ctx)
			if err != nil {
				return bq, fmt.Errorf("consumer %s: info: %w", name, err)
			}
			bq.ConsumerIdle = bq.ConsumerIdle && ci.NumPending == 0 && ci.NumAckPending == 0 && ci.Delivered.Stream >= lastSeq[i]
		}
	}
	if bq.ConsumerMissing {
		bq.ConsumerIdle = false
	}
	if bq.Messages == 0 {
		bq.Scanned = true
		return bq, nil
	}
	if scanLimit <= 0 || bq.Messages > uint64(scanLimit) {
		return bq, nil
	}
	read, growing := 0, false
	for i, subject := range subjects {
		if firstSeq[i] == 0 {
			continue
		}
		err = scan(ctx, s, subject, firstSeq[i], func(m *jetstream.RawStreamMsg) bool {
			if read++; read > 2*scanLimit { // the subjects keep growing: count only
				growing = true
				return false
			}
			if id, ok := JobID(m.Data, batch); ok {
				bq.IDs = append(bq.IDs, id)
			}
			return true
		})
		if err != nil {
			return bq, err
		}
		if growing {
			bq.IDs = nil
			return bq, nil
		}
	}
	bq.Scanned = true
	return bq, nil
}

// JobID returns the prompt id of a message body that is a job of batch.
// Workers go by the body, not by the Nats-Msg-Id header (replayed dead
// letters carry dlq/... ids), and so does verify.
func JobID(data []byte, batch string) (string, bool) {
	var j struct {
		Batch string `json:"batch"`
		ID    string `json:"id"`
	}
	if json.Unmarshal(data, &j) != nil || j.Batch != batch || j.ID == "" {
		return "", false
	}
	return j.ID, true
}
