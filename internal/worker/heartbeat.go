package worker

import (
	"time"

	"github.com/promptcascade/promptcascade/internal/store"
)

func (w *Worker) track(t *task) {
	w.stats.inflight.Add(1)
	w.hbMu.Lock()
	w.hb[t] = struct{}{}
	w.hbMu.Unlock()
}

// untrack stops heartbeating t. It returns the redeliveries of t's
// message that arrived while t was worked (follow); the caller settles
// them after t (settleFollowers).
func (w *Worker) untrack(t *task) []*task {
	w.stats.inflight.Add(-1)
	w.hbMu.Lock()
	w.forgetLocked(t)
	fl := t.followers
	t.followers = nil
	w.hbMu.Unlock()
	return fl
}

// forgetLocked takes t out of the heartbeats and, if it is the delivery
// worked for its prompt, out of working. w.hbMu is held.
func (w *Worker) forgetLocked(t *task) {
	delete(w.hb, t)
	if t.keyed && w.working[t.key] == t {
		delete(w.working, t.key)
	}
}

// untrackAll is untrack for every task of a committed batch, under one
// lock instead of one each; settle then finds them untracked.
func (w *Worker) untrackAll(batch []*task) {
	w.stats.inflight.Add(-int64(len(batch)))
	w.hbMu.Lock()
	for _, t := range batch {
		w.forgetLocked(t)
		t.untracked = true
	}
	w.hbMu.Unlock()
}

// trackWorking tracks t, a delivery about to be worked, as the one this
// worker works for key, unless another delivery of the same prompt is
// already worked here: a redelivery (the server gave the message up on
// this worker: heartbeats later than AckWait under load or a pause) would
// otherwise start the prompt a second time and pay for it twice. Then the
// redelivery follows the delivery worked: it is heartbeated, and settled
// when that one is (settleFollowers), and trackWorking returns false.
func (w *Worker) trackWorking(t *task, key store.Key) bool {
	w.stats.inflight.Add(1)
	w.hbMu.Lock()
	defer w.hbMu.Unlock()
	w.hb[t] = struct{}{}
	if orig, ok := w.working[key]; ok {
		orig.followers = append(orig.followers, t)
		return false
	}
	t.key, t.keyed = key, true
	w.working[key] = t
	return true
}

// settleFollowers settles the redeliveries that followed a delivery now
// settled: acked when that delivery's result (or its attempts, for a
// prompt answered elsewhere, parked or canceled) committed and it was
// acked, handed back otherwise (the next delivery finds the result if
// there is one). Each frees its credit.
func (w *Worker) settleFollowers(fl []*task, acked bool) {
	for _, f := range fl {
		w.untrack(f)
		if f.load != nil {
			f.load.dropped()
		}
		var err error
		if acked {
			w.stats.already.Add(1)
			w.cfg.Observer.Settled(SettledAlreadyDone, nil)
			err = f.d.Ack()
		} else {
			w.stats.naked.Add(1)
			err = f.d.NakWithDelay(w.cfg.NakBase)
		}
		if err != nil {
			w.log.Debug("settling a redelivery failed; it will be redelivered", "stream_seq", f.d.StreamSeq(), "err", err)
		}
		w.credits <- struct{}{}
	}
}

// heartbeatLoop tells the server that the deliveries held here are being
// worked on, so that none is redelivered to another worker while its model
// call or commit is running. It looks every twelfth of AckWait and beats
// the deliveries the server last heard of a quarter of AckWait ago or more
// (their fetch, or their last beat): each beat comes at most a third of
// AckWait after the one before (or after the fetch), as when every
// delivery held was beaten every third of AckWait, so that one lost beat
// still leaves a third of AckWait; and a delivery held for less than a
// quarter of AckWait is never beaten. (Beating every delivery held every
// third of AckWait sent an InProgress for most of them though their prompt
// was done within 200 ms: at 5,000 slots, prefetch and commit trail
// included, some 11k publishes a round.)
//
// A round sends under hbMu, so untrack waits for a round in progress: no
// InProgress of a delivery goes out once it is being settled. A late one
// would reach the server after the delivery's NakWithDelay and reset the
// nak's delay to a whole AckWait (nats-server's progressUpdate restarts the
// pending timer), so a retry meant for 50 ms came after 30 s.
func (w *Worker) heartbeatLoop(stop <-chan struct{}) {
	tick := time.NewTicker(beatEvery(w.cfg.AckWait))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		w.beatRound(time.Now())
	}
}

// beatRound is one round of heartbeatLoop at now.
func (w *Worker) beatRound(now time.Time) {
	// A round later than AckWait means the server may have redelivered
	// what this worker holds (the process was stopped or starved): every
	// delivery held now checks before its next model call.
	late := now.Sub(time.Unix(0, w.lastBeat.Swap(now.UnixNano()))) > w.cfg.AckWait
	due := now.Add(-beatAfter(w.cfg.AckWait)).UnixNano()
	overdue := now.Add(-w.cfg.AckWait).UnixNano()
	w.hbMu.Lock()
	held := len(w.hb)
	for t := range w.hb {
		at := t.beatAt.Load()
		if late || at < overdue {
			t.suspect.Store(true)
		}
		if at > due {
			continue // the server heard of it less than a quarter of AckWait ago
		}
		if err := t.d.InProgress(); err != nil {
			w.log.Debug("heartbeat failed", "stream_seq", t.d.StreamSeq(), "err", err)
			continue // tried again next round
		}
		t.beatAt.Store(now.UnixNano())
	}
	w.hbMu.Unlock()
	if late {
		w.log.Warn("heartbeats were late; deliveries held may have gone to another worker", "held", held)
	}
}

// beatAfter is how long after the server last heard of a delivery it is
// beaten; beatEvery is how often heartbeatLoop looks. Their sum is a third
// of AckWait: the longest time between two beats of a delivery.
func beatAfter(ackWait time.Duration) time.Duration { return ackWait / 4 }
func beatEvery(ackWait time.Duration) time.Duration { return ackWait / 12 }
