package cascade

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/promptcascade/promptcascade/internal/limit"
)

// errCut is the cause of a call cut at a deadline its model learned while
// the call ran (callContext).
var errCut = fmt.Errorf("cut at the model's adaptive deadline, learned while the call ran: %w", context.DeadlineExceeded)

// callContext is the context of one call on lim's model that started at
// t0. It ends at the model's adaptive deadline (limit.Limiter.Deadline),
// never later than timeout.
//
// A call that starts before its model has answered enough calls for the
// deadline to adapt gets the whole timeout. Such a call is looked at again
// as the model learns: at limit.MinDeadline, then each time it has run
// twice as long, and at the learned deadline once there is one; it is cut
// as soon as it has run past the deadline as it is then. Without that, a
// call that hangs in a worker's first second holds its prompt, and the
// batch's end, for the whole timeout (issue 8: tails).
//
// stretch doubles the learned deadline that many times (never past timeout):
// see run.stretch.
//
// stop releases the context and reports whether the call's deadline ended
// it (its timeout, a cut, or the deadline of ctx); a cancellation of ctx
// (shutdown, a lost hedge) is not a timeout.
func callContext(ctx context.Context, lim *limit.Limiter, timeout time.Duration, t0 time.Time, stretch int) (actx context.Context, stop func() (timedOut bool)) {
	d := min(lim.Deadline(timeout)<<stretch, timeout)
	tctx, cancelT := context.WithTimeout(ctx, d)
	if d < timeout || d <= limit.MinDeadline {
		// Learned already (or too short to cut sooner): the deadline stands.
		return tctx, func() bool {
			timedOut := errors.Is(context.Cause(tctx), context.DeadlineExceeded)
			cancelT()
			return timedOut
		}
	}
	return watchedCall(tctx, cancelT, lim, timeout, t0, stretch)
}

// watchedCall is callContext for a call that starts before its model's
// deadline has adapted: it is looked at again as the model learns. (Apart,
// so that the common case allocates none of its state.)
func watchedCall(tctx context.Context, cancelT context.CancelFunc, lim *limit.Limiter, timeout time.Duration, t0 time.Time, stretch int) (context.Context, func() bool) {
	deadline := func() time.Duration { return min(lim.Deadline(timeout)<<stretch, timeout) }
	cctx, cancelC := context.WithCancelCause(tctx)
	var (
		mu      sync.Mutex
		timer   *time.Timer
		stopped bool
		check   func()
	)
	check = func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		ran := time.Since(t0)
		if d := deadline(); ran >= d {
			cancelC(errCut)
		} else {
			timer = time.AfterFunc(min(d-ran, ran), check)
		}
	}
	mu.Lock()
	timer = time.AfterFunc(limit.MinDeadline-time.Since(t0), check)
	mu.Unlock()
	return cctx, func() bool {
		mu.Lock()
		stopped = true
		timer.Stop()
		mu.Unlock()
		timedOut := errors.Is(context.Cause(cctx), context.DeadlineExceeded)
		cancelC(nil)
		cancelT()
		return timedOut
	}
}

// maxStretch bounds run.stretch: 2^16 times any learned deadline is past
// every timeout.
const maxStretch = 16

// stretch is how many times the deadline of this prompt's next call on t
// doubles: once for each of its calls on t that timed out in this delivery
// (a cut call is retried under max_retries), and once for each earlier
// delivery. A model's deadline is learned on the answers of all its
// prompts; a prompt whose answer is much longer than most (a long essay in
// a batch of short answers, or a batch of long answers after one of short
// ones) would otherwise be cut at every try and pushed to the next, pricier
// model or failed, though the model would have answered it within its
// timeout. A call that really hangs still costs its prompt no more than
// one deadline, then two, and so on.
func (r *run) stretch(t *target) int {
	return min(r.cuts[t]+max(r.out.Result.Delivery-1, 0), maxStretch)
}

// cut counts a call of this prompt on t that timed out (see stretch).
func (r *run) cut(t *target) {
	if r.cuts == nil {
		r.cuts = make(map[*target]int, 1)
	}
	r.cuts[t]++
}
