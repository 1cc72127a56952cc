package queue

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// JobMsgID is the Nats-Msg-Id of job: MsgID(batch, id), plus
// "/resume-<position>" for a job republished after a provider batch round,
// so that JetStream's duplicate window drops a repeated republish but not
// the round itself.
func JobMsgID(job prompt.Job) string {
	id := MsgID(job.BatchID, job.ID)
	if job.Resume != nil {
		id += "/resume-" + strconv.Itoa(job.Resume.Position)
	}
	return id
}

// jobMsgIDLen is len(JobMsgID(job)), without making the id.
func jobMsgIDLen(job prompt.Job) int {
	n := len(job.BatchID) + 1 + len(job.ID)
	if job.Resume != nil {
		n += len("/resume-") + len(strconv.Itoa(job.Resume.Position))
	}
	return n
}

// PublishJob publishes one job and waits for the stream's ack: the
// provider batch poller uses it to hand a prompt back to the workers, and
// records the hand-back only after this returns nil.
func (c *Conn) PublishJob(ctx context.Context, job prompt.Job) error {
	if job.EnqueuedAt.IsZero() {
		job.EnqueuedAt = time.Now().UTC()
	}
	m, err := EncodeJob(job, c.MessageLimit())
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: PrioritySubject(c.cfg.SubjectPrefix, m.Priority, m.Batch), Data: m.Body,
		Header: nats.Header{jetstream.MsgIDHeader: []string{m.MsgID}}}
	if _, err := c.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("queue: publish %s: %w", m.MsgID, err)
	}
	return nil
}

// PublishAck is the stream's answer to one publish.
type PublishAck struct {
	Stream    string // the stream that stored the message
	Sequence  uint64
	Duplicate bool // the stream had a message with this Nats-Msg-Id in its duplicate window
}

// PublishRaw publishes payload to subject as it is (cascadectl dlq replay),
// with Nats-Msg-Id msgID and the extra headers, and waits for the stream's
// ack, at most 10 s.
func (c *Conn) PublishRaw(ctx context.Context, subject string, payload []byte, msgID string, header map[string]string) (PublishAck, error) {
	msg := &nats.Msg{Subject: subject, Data: payload, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	for k, v := range header {
		msg.Header.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := c.js.PublishMsg(ctx, msg)
	if err != nil {
		return PublishAck{}, err
	}
	return PublishAck{Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}
