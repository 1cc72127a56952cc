package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// PurgeBatch removes every message of batchID from the stream, queued or
// delivered and not yet acked, and returns how many there were. A stream
// that does not exist holds nothing.
func (c *Conn) PurgeBatch(ctx context.Context, batchID string) (uint64, error) {
	if err := ValidBatchName(batchID); err != nil {
		return 0, fmt.Errorf("queue: purge: %w", err)
	}
	subject := Subject(c.cfg.SubjectPrefix, batchID)
	s, err := c.js.Stream(ctx, c.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("queue: purge %s: stream %s: %w", subject, c.cfg.Stream, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0, fmt.Errorf("queue: purge %s: %w", subject, err)
	}
	n := info.State.Subjects[subject]
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
		return 0, fmt.Errorf("queue: purge %s: %w", subject, err)
	}
	return n, nil
}
