package queue

import (
	"context"
	"encoding/json"
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
	if err := ValidBatchName(job.BatchID); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	if job.EnqueuedAt.IsZero() {
		job.EnqueuedAt = time.Now().UTC()
	}
	data, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("queue: encode job %s: %w", JobMsgID(job), err)
	}
	msg := &nats.Msg{Subject: Subject(c.cfg.SubjectPrefix, job.BatchID), Data: data,
		Header: nats.Header{jetstream.MsgIDHeader: []string{JobMsgID(job)}}}
	if _, err := c.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("queue: publish %s: %w", JobMsgID(job), err)
	}
	return nil
}
