package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// PurgeBatch removes every message of batchID from the stream, queued or
// delivered and not yet acked, or parked (ParkedSubject), and returns how
// many there were. A stream that does not exist holds nothing.
func (c *Conn) PurgeBatch(ctx context.Context, batchID string) (uint64, error) {
	if err := ValidBatchName(batchID); err != nil {
		return 0, fmt.Errorf("queue: purge: %w", err)
	}
	s, err := c.js.Stream(ctx, c.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("queue: purge batch %s: stream %s: %w", batchID, c.cfg.Stream, err)
	}
	var n uint64
	for _, subject := range append(BatchSubjects(c.cfg.SubjectPrefix, batchID), ParkedSubject(c.cfg.SubjectPrefix, batchID)) {
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			return n, fmt.Errorf("queue: purge %s: %w", subject, err)
		}
		if info.State.Subjects[subject] == 0 {
			continue
		}
		if err := s.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
			return n, fmt.Errorf("queue: purge %s: %w", subject, err)
		}
		n += info.State.Subjects[subject]
	}
	return n, nil
}
