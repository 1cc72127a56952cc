package worker

import (
	"time"
)

func (w *Worker) track(t *task) {
	w.stats.inflight.Add(1)
	w.hbMu.Lock()
	w.hb[t] = struct{}{}
	w.hbMu.Unlock()
}

func (w *Worker) untrack(t *task) {
	w.stats.inflight.Add(-1)
	w.hbMu.Lock()
	delete(w.hb, t)
	w.hbMu.Unlock()
}

// heartbeatLoop tells the server, every third of AckWait, that every
// delivery still held here is being worked on, so none is redelivered to
// another worker while its model call or commit is running.
func (w *Worker) heartbeatLoop(stop <-chan struct{}) {
	tick := time.NewTicker(w.cfg.AckWait / 3)
	defer tick.Stop()
	var batch []Delivery
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		now := time.Now()
		// A beat later than AckWait means the server may have redelivered
		// what this worker holds (the process was stopped or starved):
		// every delivery held now checks before its next model call.
		late := now.Sub(time.Unix(0, w.lastBeat.Swap(now.UnixNano()))) > w.cfg.AckWait
		batch = batch[:0]
		w.hbMu.Lock()
		for t := range w.hb {
			batch = append(batch, t.d)
			if late {
				t.suspect.Store(true)
			}
		}
		w.hbMu.Unlock()
		if late {
			w.log.Warn("heartbeats were late; deliveries held may have gone to another worker", "held", len(batch))
		}
		for _, d := range batch {
			if err := d.InProgress(); err != nil {
				w.log.Debug("heartbeat failed", "stream_seq", d.StreamSeq(), "err", err)
			}
		}
	}
}
