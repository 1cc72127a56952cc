package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/promptcascade/promptcascade/internal/backoff"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/store"
)

// Recoverer is the part of a Source that recreates the stream and the
// consumer after Fetch reported them gone (an error wrapping
// queue.ErrConsumerGone), for example because an operator deleted them. Recover must be idempotent: several workers
// recover at once, and it may run when nothing was gone after all (a
// server shutting down answers "no responders"). It returns by ctx's
// deadline (Config.RecoverTimeout); the worker tries again, without limit
// while the broker is down, RecoverTries times for a failure that waiting
// cannot fix (queue.Permanent).
//
// A recreated consumer delivers again every message still in the stream;
// messages of a deleted stream are gone with it (cascadectl verify reports
// their prompts missing). Deliveries of the deleted consumer are not settled
// after recovery (see queue.Source), so a stale ack cannot remove a
// message of the new stream; their prompts come back as new deliveries and
// those already stored are acked without a model call.
type Recoverer interface {
	Recover(ctx context.Context) error
}

// ErrSourceGone is wrapped by Run's error when the consumer disappeared and
// cannot be recreated: Recover failed Config.RecoverTries times with an
// error that waiting cannot fix (queue.Permanent: a stream in the way with
// other settings, a closed connection, refused credentials).
var ErrSourceGone = errors.New("the queue's consumer is gone and could not be recreated")

// Recovery backoff between attempts: exponential with jitter, capped (for
// a down broker, at Config.RecoverMaxWait).
const (
	recoverBase = 250 * time.Millisecond
	recoverMax  = 5 * time.Second
)

// outageLogEvery spaces the log lines of a failure that goes on.
const outageLogEvery = time.Minute

// outage throttles the log of a failure that repeats: the first failure,
// then one line a minute.
type outage struct {
	now           func() time.Time
	start, logged time.Time
	failures      int
}

// failed counts a failure and reports whether to log it.
func (o *outage) failed() bool {
	o.failures++
	now := o.now()
	if o.start.IsZero() {
		o.start, o.logged = now, now
		return true
	}
	if now.Sub(o.logged) >= outageLogEvery {
		o.logged = now
		return true
	}
	return false
}

func (o *outage) since() time.Duration { return o.now().Sub(o.start).Round(time.Second) }

// recoverSource handles a fetch that found the consumer gone: it recreates
// the stream and consumer, each attempt bounded by RecoverTimeout. A broker
// that is down (unreachable, restarting, JetStream unavailable) is waited
// for without limit, with backoff capped at RecoverMaxWait and a log line a
// minute. A failure that waiting cannot fix (queue.Permanent) is tried
// RecoverTries times, each logged, before Run fails. It returns nil when the
// source works again or ctx ended, and an error wrapping ErrSourceGone when
// the source cannot be recreated.
func (w *Worker) recoverSource(ctx context.Context, cause error) error {
	r := w.src
	w.log.Warn("the queue's consumer is gone; recreating the stream and consumer", "err", cause)
	down := outage{now: w.cfg.Now}
	permanent := 0
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, w.cfg.RecoverTimeout)
		err := r.Recover(actx)
		cancel()
		if err == nil {
			w.stats.recovered.Add(1)
			w.log.Info("stream and consumer are in place; continuing", "attempts", attempt)
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		var delay time.Duration
		if queue.Permanent(err) {
			permanent++
			if permanent >= w.cfg.RecoverTries {
				w.log.Error("could not recreate the stream and consumer; giving up", "attempt", permanent, "err", err)
				return fmt.Errorf("worker: %w: %d attempts failed; last: %w", ErrSourceGone, permanent, err)
			}
			delay = backoff.Policy{Base: recoverBase, Max: recoverMax}.Delay(permanent)
			w.log.Warn("recreating the stream and consumer failed; retrying", "attempt", permanent,
				"max_attempts", w.cfg.RecoverTries, "err", err, "retry_in", delay.Round(time.Millisecond))
		} else {
			delay = backoff.Policy{Base: min(recoverBase, w.cfg.RecoverMaxWait), Max: w.cfg.RecoverMaxWait}.Delay(attempt)
			if down.failed() {
				w.log.Warn("the broker is not answering; waiting for it to recreate the stream and consumer (logged once a minute)",
					"attempts", down.failures, "down_for", down.since(), "err", err)
			}
		}
		if backoff.Sleep(ctx, delay) != nil {
			return nil
		}
	}
}

// consumerGone says whether a fetch error means the consumer or its stream
// no longer exists.
func consumerGone(err error) bool { return errors.Is(err, queue.ErrConsumerGone) }

// existing asks the store which prompts are already answered. A transient
// failure (database down or restarting, connection killed) is waited out by
// holdRetry. It gives up on a permanent error, or when ctx ends (a soft stop).
func (w *Worker) existing(ctx, workCtx context.Context, keys []store.Key, ds []Delivery) (map[store.Key]bool, error) {
	var m map[store.Key]bool
	err := w.holdRetry(ctx, workCtx, ds, "checking for existing results", len(keys), func(dbCtx context.Context) error {
		var err error
		m, err = w.store.Existing(dbCtx, keys)
		return err
	})
	return m, err
}

// holdRetry runs f until it succeeds, fails permanently, or ctx ends. A
// transient failure (database down or restarting, connection killed) is
// retried with backoff while the deliveries ds are held and kept alive by
// heartbeats: handing them back would spend one of their MaxDeliver
// deliveries per try, and an outage outlasting MaxDeliver naks would fail
// prompts that never reached a model. Fetching waits meanwhile (this runs on
// the fetch loop).
func (w *Worker) holdRetry(ctx, workCtx context.Context, ds []Delivery, what string, n int, f func(context.Context) error) error {
	var held []*task
	defer func() {
		for _, t := range held {
			w.untrack(t)
		}
	}()
	return retryTransient(ctx, func() error {
		dbCtx, cancel := context.WithTimeout(workCtx, 30*time.Second)
		defer cancel()
		return f(dbCtx)
	}, func(err error, delay time.Duration) {
		if held == nil {
			for _, d := range ds {
				t := &task{d: d}
				w.track(t)
				held = append(held, t)
			}
		}
		w.log.Warn(what+" failed; retrying", "err", err, "prompts", n,
			"retry_in", delay.Round(time.Millisecond))
	})
}

// dbRetry spaces the retries of a database operation that failed
// transiently (commits, existence checks, batch states).
var dbRetry = backoff.Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second}

// retryTransient runs f until it succeeds, fails with an error that is not
// transient (store.IsTransient), or ctx ends; before each retry it calls
// onRetry (may be nil) and sleeps dbRetry's delay. It returns f's last error.
func retryTransient(ctx context.Context, f func() error, onRetry func(err error, delay time.Duration)) error {
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || !store.IsTransient(err) || ctx.Err() != nil {
			return err
		}
		delay := dbRetry.Delay(attempt)
		if onRetry != nil {
			onRetry(err, delay)
		}
		if backoff.Sleep(ctx, delay) != nil {
			return err
		}
	}
}
