package worker_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/worker"
)

// slowStore makes every commit take a while, so that finished prompts
// trail behind their slots for a long time.
type slowStore struct {
	worker.Store
	delay  time.Duration
	mu     sync.Mutex
	active bool // a Write is running
}

func (s *slowStore) Write(ctx context.Context, rs []prompt.Result) ([]bool, error) {
	s.mu.Lock()
	s.active = true
	s.mu.Unlock()
	time.Sleep(s.delay)
	ins, err := s.Store.Write(ctx, rs)
	s.mu.Lock()
	s.active = false
	s.mu.Unlock()
	return ins, err
}

func (s *slowStore) writing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// A slot is freed when its prompt's work ends, not when its commit and ack
// are done: while commits are slow, more prompts than there are slots are
// worked; yet no message is acked before its result is stored.
func TestSlotsFreeBeforeCommitButAckFollowsIt(t *testing.T) {
	b := setup(t, queue.Config{})
	b.cfg.Concurrency = 4
	b.cfg.CommitInterval = time.Millisecond
	jobs := b.publish("b1", 120)
	// Each call takes 10 ms; each commit 150 ms.
	var inCall, maxInCall atomic.Int64
	var startedDuringCommit atomic.Int64
	tp := newTap()
	slow := &slowStore{Store: tp.store(b.st), delay: 150 * time.Millisecond}
	b.provider.answer = func(req llm.Request, n int) (llm.Response, error) {
		c := inCall.Add(1)
		for m := maxInCall.Load(); c > m && !maxInCall.CompareAndSwap(m, c); m = maxInCall.Load() {
		}
		if slow.writing() {
			startedDuringCommit.Add(1)
		}
		time.Sleep(10 * time.Millisecond)
		inCall.Add(-1)
		return goodAnswer(req, n)
	}
	w := b.faultWorker(t, "w", tp.source(queue.NewSource(b.qc, b.cons)), slow)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	runAll(t, ctx, w)
	took := time.Since(start)

	reconcile(t, b.dsn, jobs, tp) // includes: nothing acked before it was stored
	if got := maxInCall.Load(); got > 4 {
		t.Errorf("%d calls at once with 4 slots", got)
	}
	// With slots held until the ack, no call could start while a commit
	// runs (every slot would wait for it); here most of them do.
	if n := startedDuringCommit.Load(); n < int64(len(jobs))/2 {
		t.Errorf("%d of %d calls started while a commit was running: slots wait for commits", n, len(jobs))
	}
	// 120 prompts × 10 ms on 4 slots is 0.3 s of work; commits of 150 ms
	// each would add a commit per 4 prompts (4.5 s) if slots waited.
	t.Logf("%d prompts in %v; %d calls started during a commit", len(jobs), took.Round(time.Millisecond), startedDuringCommit.Load())
}

// While every slot is busy, the worker has already fetched (and checked)
// the next prompts, so that a slot that frees starts one at once instead of
// waiting for a fetch and a Postgres round trip: during each call of a
// one-slot worker, one more message than calls so far has been fetched.
func TestNextPromptFetchedWhileSlotsAreBusy(t *testing.T) {
	b := setup(t, queue.Config{})
	b.cfg.Concurrency = 1
	jobs := b.publish("b1", 6)
	var w *worker.Worker
	var calls atomic.Int64
	var notAhead atomic.Int64
	b.provider.answer = func(req llm.Request, n int) (llm.Response, error) {
		k := calls.Add(1)
		if k < int64(len(jobs)) {
			// Wait, with a deadline, for the prefetch of the next message.
			deadline := time.Now().Add(20 * time.Second)
			for w.Stats().Fetched <= k {
				if time.Now().After(deadline) {
					notAhead.Add(1)
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
		return goodAnswer(req, n)
	}
	tp := newTap()
	w = b.faultWorker(t, "w", tp.source(queue.NewSource(b.qc, b.cons)), tp.store(b.st))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runAll(t, ctx, w)
	reconcile(t, b.dsn, jobs, tp)
	if n := notAhead.Load(); n > 0 {
		t.Errorf("during %d of %d calls the next message was not fetched: the slot waits for a fetch when it frees", n, len(jobs)-1)
	}
}

// A fetched group waits for slots heartbeated as a whole: with every slot
// held by a call that outlasts AckWait several times, the prefetched
// deliveries behind it are not redelivered (each prompt is fetched once).
func TestPrefetchedDeliveriesAreHeartbeated(t *testing.T) {
	b := setup(t, queue.Config{AckWait: time.Second})
	b.cfg.Concurrency = 8 // prefetch 2: the first group is 10, two of them wait
	b.cfg.AckWait = time.Second
	jobs := b.publish("b1", 16)
	var calls atomic.Int64
	b.provider.answer = func(req llm.Request, n int) (llm.Response, error) {
		if calls.Add(1) <= 8 {
			time.Sleep(3500 * time.Millisecond) // the first calls outlast AckWait three times
		}
		return goodAnswer(req, n)
	}
	tp := newTap()
	w := b.faultWorker(t, "w", tp.source(queue.NewSource(b.qc, b.cons)), tp.store(b.st))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runAll(t, ctx, w)
	reconcile(t, b.dsn, jobs, tp)
	if s := w.Stats(); s.Fetched != int64(len(jobs)) {
		t.Errorf("%d deliveries fetched for %d prompts: a prefetched delivery waited unheartbeated past AckWait and came again", s.Fetched, len(jobs))
	}
}

// A redelivery of a prompt this worker is still answering is not started
// a second time: it waits beside the delivery being worked and is acked
// when that one's result has committed. The consumer's AckWait (1 s) is
// far shorter than the one the worker heartbeats for (30 s), as when
// heartbeats come late under load, so the server redelivers every prompt
// while its call runs; each call waits until its message came again.
func TestRedeliveryOfAPromptBeingWorkedIsNotWorkedTwice(t *testing.T) {
	b := setup(t, queue.Config{AckWait: time.Second})
	b.cfg.Concurrency = 8
	b.cfg.AckWait = 30 * time.Second
	jobs := b.publish("b1", 3)
	var w *worker.Worker
	var notRedelivered atomic.Int64
	b.provider.answer = func(req llm.Request, n int) (llm.Response, error) {
		deadline := time.Now().Add(30 * time.Second)
		for w.Stats().Fetched <= int64(len(jobs)) {
			if time.Now().After(deadline) {
				notRedelivered.Add(1)
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		return goodAnswer(req, n)
	}
	tp := newTap()
	w = b.faultWorker(t, "w", tp.source(queue.NewSource(b.qc, b.cons)), tp.store(b.st))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runAll(t, ctx, w)
	reconcile(t, b.dsn, jobs, tp)
	if n := notRedelivered.Load(); n > 0 {
		t.Fatalf("%d calls never saw a redelivery of their message", n)
	}
	for _, j := range jobs {
		if n := b.provider.callsFor(j.Prompt); n != 1 {
			t.Errorf("prompt %s: %d model calls, want 1", j.ID, n)
		}
	}
	s := w.Stats()
	if s.Fetched <= int64(len(jobs)) || s.AlreadyDone == 0 || s.Succeeded != int64(len(jobs)) {
		t.Errorf("stats %+v: want redeliveries fetched and acked as already done, %d succeeded", s, len(jobs))
	}
	if n := b.consumerAckPending(); n != 0 {
		t.Errorf("%d deliveries left unacked", n)
	}
}
