package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/store"
)

// Recoverer is an optional ability of a Source, found by type assertion:
// recreating the stream and the consumer after Fetch reported them gone
// (an error wrapping queue.ErrConsumerGone), for example because an
// operator deleted them. Recover must be idempotent: several workers
// recover at once, and it may run when nothing was gone after all (a
// server shutting down answers "no responders"). It bounds its own
// requests; it may wait, without counting as a failure, while the broker
// cannot be reached at all.
//
// A recreated consumer delivers again every message still in the stream;
// messages of a deleted stream are gone with it (cascadectl verify reports
// their prompts missing). Deliveries of the deleted consumer are not settled
// after recovery (see JetStreamSource), so a stale ack cannot remove a
// message of the new stream; their prompts come back as new deliveries and
// those already stored are acked without a model call.
type Recoverer interface {
	Recover(ctx context.Context) error
}

// ErrSourceGone is wrapped by Run's error when the consumer disappeared and
// could not be recreated within Config.RecoverTries attempts.
var ErrSourceGone = errors.New("the queue's consumer is gone and could not be recreated")

// Recovery backoff between attempts: exponential with jitter, capped.
const (
	recoverBase = 250 * time.Millisecond
	recoverMax  = 5 * time.Second
)

// recoverSource handles a fetch that found the consumer gone: it recreates
// the stream and consumer, trying up to RecoverTries times with backoff
// and logging each failure. It returns nil when the source works again or
// ctx ended, and an error wrapping ErrSourceGone when every attempt failed
// or the source cannot recover at all.
func (w *Worker) recoverSource(ctx context.Context, cause error) error {
	r, ok := w.src.(Recoverer)
	if !ok {
		return fmt.Errorf("worker: %w: %w", ErrSourceGone, cause)
	}
	w.log.Warn("the queue's consumer is gone; recreating the stream and consumer", "err", cause,
		"max_attempts", w.cfg.RecoverTries)
	for attempt := 1; ; attempt++ {
		err := r.Recover(ctx)
		if err == nil {
			w.stats.recovered.Add(1)
			w.log.Info("stream and consumer are in place; continuing", "attempt", attempt)
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if attempt >= w.cfg.RecoverTries {
			w.log.Error("could not recreate the stream and consumer; giving up", "attempt", attempt, "err", err)
			return fmt.Errorf("worker: %w: %d attempts failed; last: %w", ErrSourceGone, attempt, err)
		}
		delay := backoff(attempt, recoverBase, recoverMax)
		w.log.Warn("recreating the stream and consumer failed; retrying", "attempt", attempt,
			"max_attempts", w.cfg.RecoverTries, "err", err, "retry_in", delay.Round(time.Millisecond))
		if !sleep(ctx, delay) {
			return nil
		}
	}
}

// consumerGone says whether a fetch error means the consumer or its stream
// no longer exists.
func consumerGone(err error) bool { return errors.Is(err, queue.ErrConsumerGone) }

// existing asks the store which prompts are already answered. A transient
// failure (database down or restarting, connection killed) is retried with
// backoff while the deliveries are held and kept alive by heartbeats:
// handing them back would spend one of their MaxDeliver deliveries per try,
// and an outage outlasting MaxDeliver naks would fail prompts that never
// reached a model. Fetching waits meanwhile (this runs on the fetch loop).
// It gives up on a permanent error, or when ctx ends (a soft stop).
func (w *Worker) existing(ctx, workCtx context.Context, keys []store.Key, ds []Delivery) (map[store.Key]bool, error) {
	var held []*task
	defer func() {
		for _, t := range held {
			w.untrack(t)
		}
	}()
	for attempt := 1; ; attempt++ {
		dbCtx, cancel := context.WithTimeout(workCtx, 30*time.Second)
		m, err := w.store.Existing(dbCtx, keys)
		cancel()
		if err == nil || !store.IsTransient(err) || ctx.Err() != nil {
			return m, err
		}
		if held == nil {
			for _, d := range ds {
				t := &task{d: d}
				w.track(t)
				held = append(held, t)
			}
		}
		delay := backoff(attempt, 100*time.Millisecond, 5*time.Second)
		w.log.Warn("checking for existing results failed; retrying", "err", err, "prompts", len(keys),
			"retry_in", delay.Round(time.Millisecond))
		if !sleep(ctx, delay) {
			return nil, err
		}
	}
}
