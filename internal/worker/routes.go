package worker

import (
	"context"
	"encoding/hex"
	"sync"
	"time"
)

// BatchRoutes builds the classifier and cascade of a batch's own routes
// (stored by hash; see store.SetBatchRoutes). An error means this worker
// cannot work the batch (its routes need a provider key the worker lacks,
// say): its prompts are handed back for another worker.
type BatchRoutes func(ctx context.Context, sum []byte) (Classifier, Runner, error)

// routesRetry is how long a worker waits before it tries routes it could
// not build again, and the delay of the prompts it hands back meanwhile.
const routesRetry = time.Minute

type routeSet struct {
	cl     Classifier
	runner Runner
	err    error
	at     time.Time
}

// batchRoutes caches the routes of batches that have their own, by hash.
type batchRoutes struct {
	build BatchRoutes
	mu    sync.Mutex
	sets  map[string]*routeSet
}

// forBatch returns the classifier and runner of job's batch: its own
// routes when it has some, else the worker's.
func (w *Worker) forBatch(ctx context.Context, batch string) (Classifier, Runner, error) {
	if w.routes == nil || w.ctl == nil {
		return w.class, w.runner, nil
	}
	ctl, err := w.ctl.control(ctx, batch)
	if err != nil || ctl.Routes == nil {
		return w.class, w.runner, nil // a state read failure is handled by the call gate
	}
	key := hex.EncodeToString(ctl.Routes)
	br := w.routes
	br.mu.Lock()
	defer br.mu.Unlock()
	if rs, ok := br.sets[key]; ok && (rs.err == nil || time.Since(rs.at) < routesRetry) {
		return rs.cl, rs.runner, rs.err
	}
	cl, runner, err := br.build(ctx, ctl.Routes)
	br.sets[key] = &routeSet{cl: cl, runner: runner, err: err, at: time.Now()}
	if err != nil {
		// Once per batch routes and minute: in the log and in `cascadectl status`.
		note := "cannot work this batch: " + err.Error() + "; its prompts are handed back for another worker"
		w.log.Warn("cannot work batch with its own routes; handing its prompts back", "batch", batch, "routes", key[:12], "err", err)
		if nerr := w.ctl.src.NoteBatch(ctx, batch, w.cfg.WorkerID, note); nerr != nil {
			w.log.Warn("recording the note failed", "batch", batch, "err", nerr)
		}
		return nil, nil, err
	}
	w.log.Info("batch routes loaded", "batch", batch, "routes", key[:12])
	return cl, runner, nil
}
