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
	// told holds the batches this worker has told about these routes: a
	// note when they failed to build, the note cleared when they built.
	told map[string]bool
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
	rs, ok := br.sets[key]
	if !ok || (rs.err != nil && time.Since(rs.at) >= routesRetry) {
		cl, runner, err := br.build(ctx, ctl.Routes)
		if err != nil {
			w.log.Warn("cannot work batch with its own routes; handing its prompts back", "batch", batch, "routes", key[:12], "err", err)
		} else {
			w.log.Info("batch routes loaded", "batch", batch, "routes", key[:12])
		}
		told := map[string]bool{}
		if ok && (rs.err == nil) == (err == nil) {
			told = rs.told // the same news: nobody needs telling again
		}
		rs = &routeSet{cl: cl, runner: runner, err: err, at: time.Now(), told: told}
		br.sets[key] = rs
	}
	if !rs.told[batch] {
		// Once per batch and outcome, in `cascadectl status`: why this
		// worker hands the batch's prompts back, or (an empty note) that
		// it no longer does, after a restart with the key, say.
		note := ""
		if rs.err != nil {
			note = "cannot work this batch: " + rs.err.Error() + "; its prompts are handed back for another worker"
		}
		if nerr := w.ctl.src.NoteBatch(ctx, batch, w.cfg.WorkerID, note); nerr != nil {
			w.log.Warn("recording the note failed", "batch", batch, "err", nerr)
		} else {
			rs.told[batch] = true
		}
	}
	return rs.cl, rs.runner, rs.err
}
