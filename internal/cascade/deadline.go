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
// stop releases the context and reports whether the call's deadline ended
// it (its timeout, a cut, or the deadline of ctx); a cancellation of ctx
// (shutdown, a lost hedge) is not a timeout.
func callContext(ctx context.Context, lim *limit.Limiter, timeout time.Duration, t0 time.Time) (actx context.Context, stop func() (timedOut bool)) {
	d := lim.Deadline(timeout)
	tctx, cancelT := context.WithTimeout(ctx, d)
	if d < timeout || d <= limit.MinDeadline {
		// Learned already (or too short to cut sooner): the deadline stands.
		return tctx, func() bool {
			timedOut := errors.Is(context.Cause(tctx), context.DeadlineExceeded)
			cancelT()
			return timedOut
		}
	}
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
		if d := lim.Deadline(timeout); ran >= d {
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
