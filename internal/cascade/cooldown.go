package cascade

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// checkShare validates the failure-share trigger of a Cooldown.
func (cd Cooldown) checkShare() error {
	s := cd.MaxFailureShare
	switch {
	case s != s || s < 0 || s >= 1: // s != s: NaN
		return fmt.Errorf("cooldown.max_failure_share: must be 0 (off) or between 0 and 1 (exclusive), got %g", s)
	case cd.MinCalls < 0:
		return fmt.Errorf("cooldown.min_calls: %d is negative", cd.MinCalls)
	case cd.Window < 0:
		return fmt.Errorf("cooldown.window: %v is negative", cd.Window)
	case s == 0:
		return nil
	case cd.Window == 0:
		return errors.New("cooldown.window: must be > 0 when cooldown.max_failure_share is set")
	case cd.Period <= 0:
		return errors.New("cooldown.period: must be > 0 when cooldown.max_failure_share is set")
	}
	return nil
}

// windowBuckets is how many buckets a failure-share window is cut into: the
// window slides in steps of a tenth of its span.
const windowBuckets = 10

// window counts one model's calls and transient failures over the last span
// of time, in buckets. Its zero value is an empty window. The lock is held
// for a few dozen instructions once per model call.
type window struct {
	mu    sync.Mutex
	slot  [windowBuckets]int64 // absolute bucket number each entry holds
	calls [windowBuckets]int
	fails [windowBuckets]int
}

// add records one call at now (failed or not) and returns the calls and
// failures in the window that ends at now.
func (w *window) add(now time.Time, span time.Duration, failed bool) (calls, fails int) {
	width := max(int64(span)/windowBuckets, 1)
	n := now.UnixNano() / width
	i := int(n % windowBuckets)
	if i < 0 {
		i += windowBuckets
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.slot[i] != n {
		w.slot[i], w.calls[i], w.fails[i] = n, 0, 0
	}
	w.calls[i]++
	if failed {
		w.fails[i]++
	}
	for j := range windowBuckets {
		if age := n - w.slot[j]; age >= 0 && age < windowBuckets {
			calls += w.calls[j]
			fails += w.fails[j]
		}
	}
	return calls, fails
}

// reset empties the window.
func (w *window) reset() {
	w.mu.Lock()
	w.calls, w.fails = [windowBuckets]int{}, [windowBuckets]int{}
	w.mu.Unlock()
}
