package worker_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/worker"
	"github.com/promptcascade/promptcascade/internal/worker/workertest"
)

// beatSource hands out deliveries whose first heartbeat blocks until the
// test releases it, and records every heartbeat that reached a delivery
// already settled.
type beatSource struct {
	*workertest.Source
	blocking atomic.Bool   // a heartbeat is held (once)
	blocked  chan struct{} // closed when it is
	release  chan struct{} // closed by the test to let it go on
	mu       sync.Mutex
	stale    []string // heartbeats after their delivery was settled
}

func (s *beatSource) Fetch(ctx context.Context, n int, maxWait time.Duration) ([]worker.Delivery, error) {
	ds, err := s.Source.Fetch(ctx, n, maxWait)
	for i, d := range ds {
		ds[i] = &beatDelivery{Delivery: d, src: s}
	}
	return ds, err
}

type beatDelivery struct {
	worker.Delivery
	src *beatSource
}

func (d *beatDelivery) InProgress() error {
	if d.src.blocking.CompareAndSwap(false, true) {
		close(d.src.blocked)
		<-d.src.release
	}
	err := d.Delivery.InProgress()
	if errors.Is(err, workertest.ErrNotHeld) {
		d.src.mu.Lock()
		d.src.stale = append(d.src.stale, fmt.Sprintf("message %d delivery %d", d.StreamSeq(), d.NumDelivered()))
		d.src.mu.Unlock()
	}
	return err
}

// transientFirst fails every prompt's first delivery transiently once the
// heartbeat is held, and answers later ones.
type transientFirst struct{ blocked <-chan struct{} }

func (r transientFirst) Run(ctx context.Context, job prompt.Job, _ prompt.Tier, _ prompt.Signals, delivery int) cascade.Outcome {
	if delivery == 1 {
		select {
		case <-r.blocked:
		case <-ctx.Done():
		}
		return cascade.Outcome{Transient: true, Result: prompt.Result{Job: job}}
	}
	return cascade.Outcome{Result: prompt.Result{Job: job, Status: prompt.StatusSucceeded, ModelUsed: "fake/a", Response: "answer to " + job.ID}}
}

// TestNoHeartbeatAfterSettle: a heartbeat round that is sending while the
// deliveries it snapshotted are settled must not reach them afterwards.
// On JetStream an InProgress after a NakWithDelay resets the nak's delay
// to a whole AckWait: under load a retry meant for 50 ms came after 30 s
// (TestProvidersNeverLeakAPIKeys timed out in go test -count=3 ./... at
// load 40). The heartbeat is held inside its first InProgress while both
// prompts fail transiently and are naked; once released, it must find no
// delivery it beats already settled.
func TestNoHeartbeatAfterSettle(t *testing.T) {
	t.Parallel()
	src := &beatSource{Source: workertest.NewSource(), blocked: make(chan struct{}), release: make(chan struct{})}
	var seqs []uint64
	for i := range 2 {
		seq, err := src.PublishJob(numberedJob("beat", i))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	w := worker.New(worker.Config{WorkerID: "beat", Concurrency: 2, ExitWhenIdle: true, FetchMaxWait: 10 * time.Millisecond,
		AckWait: 90 * time.Millisecond, CommitInterval: time.Millisecond, NakBase: time.Millisecond, NakMax: time.Millisecond},
		src, workertest.NewStore(), classify.Default(), transientFirst{blocked: src.blocked}, testLog(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	<-src.blocked
	// Give the naks every chance to overtake the held heartbeat: wait until
	// both first deliveries are settled, or a second (they cannot be while
	// a round holds them, which is the point).
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if len(src.History(seqs[0])) > 0 && len(src.History(seqs[1])) > 0 {
			break
		}
	}
	close(src.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if len(src.stale) > 0 {
		t.Errorf("heartbeats reached settled deliveries: %v (on JetStream each would reset a nak's delay to AckWait)", src.stale)
	}
	for _, seq := range seqs {
		if h := src.History(seq); len(h) < 2 || h[0] != workertest.Naked {
			t.Errorf("message %d settled %v; want naked once, then answered", seq, h)
		}
	}
}
