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
	msg := &nats.Msg{Subject: Subject(c.cfg.SubjectPrefix, m.Batch), Data: m.Body,
		Header: nats.Header{jetstream.MsgIDHeader: []string{m.MsgID}}}
	if _, err := c.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("queue: publish %s: %w", m.MsgID, err)
	}
	return nil
}
