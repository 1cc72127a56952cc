package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/promptcascade/promptcascade/internal/store"
)

// LoadStore keeps what each worker holds of each batch, for `cascadectl
// status` (store.Store implements it).
type LoadStore interface {
	// ReportLoad replaces workerID's rows with loads (nil: none), counting
	// for ttl.
	ReportLoad(ctx context.Context, workerID string, loads []store.BatchLoad, ttl time.Duration) error
}

// DefaultLoadInterval is how often a worker reports its load per batch;
// a report counts for LoadTTLIntervals of them.
const (
	DefaultLoadInterval = 2 * time.Second
	LoadTTLIntervals    = 3
)

// batchLoad counts one batch's prompts held by this worker: in flight
// (worked: in a model call or in the cascade) and waiting (delivered and
// not started, or waiting for a model's capacity in its limiter). Updated
// with atomics on the hot path; read by the flusher.
type batchLoad struct {
	inFlight, waiting atomic.Int64
	wait              func(bool) // capacityWait, made once (a method value allocates)
}

// delivered counts a prompt fetched and not started yet.
func (l *batchLoad) delivered() *batchLoad { l.waiting.Add(1); return l }

// dropped uncounts a delivered prompt settled without being worked.
func (l *batchLoad) dropped() { l.waiting.Add(-1) }

// begin moves a delivered prompt to in flight; end ends it.
func (l *batchLoad) begin() {
	l.waiting.Add(-1)
	l.inFlight.Add(1)
}

func (l *batchLoad) end() { l.inFlight.Add(-1) }

// capacityWait is the cascade's CapacityWait: a prompt in flight waits for
// a model's capacity (true) or goes on (false).
func (l *batchLoad) capacityWait(waiting bool) {
	if waiting {
		l.inFlight.Add(-1)
		l.waiting.Add(1)
	} else {
		l.waiting.Add(-1)
		l.inFlight.Add(1)
	}
}

// loads holds the batchLoad of every batch this worker has held a prompt
// of (a handful per process: entries are kept, a batch at 0/0 is simply
// not reported).
type loads struct{ m sync.Map }

func (ls *loads) of(batch string) *batchLoad {
	if v, ok := ls.m.Load(batch); ok {
		return v.(*batchLoad)
	}
	l := new(batchLoad)
	l.wait = l.capacityWait
	v, _ := ls.m.LoadOrStore(batch, l)
	return v.(*batchLoad)
}

// snapshot returns the batches with prompts held now.
func (ls *loads) snapshot() []store.BatchLoad {
	var out []store.BatchLoad
	ls.m.Range(func(k, v any) bool {
		l := v.(*batchLoad)
		f, w := l.inFlight.Load(), l.waiting.Load()
		if f > 0 || w > 0 {
			out = append(out, store.BatchLoad{BatchID: k.(string), InFlight: int(max(f, 0)), Waiting: int(max(w, 0))})
		}
		return true
	})
	return out
}

// loadLoop reports the load per batch every LoadInterval until stop, then
// deletes this worker's rows. Nothing is written while the worker holds
// no prompt and has nothing reported; a failed report is retried at the
// next tick.
func (w *Worker) loadLoop(stop <-chan struct{}) {
	st := w.cfg.Load
	if st == nil {
		return
	}
	ttl := LoadTTLIntervals * w.cfg.LoadInterval
	reported := false
	report := func(ls []store.BatchLoad) {
		ctx, cancel := context.WithTimeout(context.Background(), w.cfg.LoadInterval)
		defer cancel()
		if err := st.ReportLoad(ctx, w.cfg.WorkerID, ls, ttl); err != nil {
			w.log.Debug("reporting the load per batch failed", "err", err)
			return
		}
		reported = len(ls) > 0
	}
	tick := time.NewTicker(w.cfg.LoadInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			if reported {
				report(nil)
			}
			return
		case <-tick.C:
		}
		if ls := w.load.snapshot(); len(ls) > 0 || reported {
			report(ls)
		}
	}
}
