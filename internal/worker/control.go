package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/promptcascade/promptcascade/internal/store"
)

// BatchControls reads the state of every batch that is not running (paused
// or canceled) or has a budget (a batch absent from the map runs without
// one), and reserves a call's estimated cost against a budget.
type BatchControls interface {
	BatchControls(ctx context.Context) (map[string]store.Control, error)
	Reserve(ctx context.Context, h store.Hold) (id int64, ok bool, err error)
	NoteBatch(ctx context.Context, batchID, workerID, note string) error
}

// Errors that stop a cascade before a model call because of its batch.
var (
	errBatchPaused   = errors.New("batch paused")
	errBatchCanceled = errors.New("batch canceled")
)

// controls caches BatchControls. A state is never used when it was read
// longer than maxAge ago (store.ControlMaxAge): the caller that finds it
// stale reads it again, the others wait for that one read. So a call that
// starts more than maxAge after a state change commits obeys the change,
// which is what `cascadectl cancel` and `pause` wait for.
type controls struct {
	src    BatchControls
	maxAge time.Duration
	log    *slog.Logger

	mu     sync.RWMutex
	readAt time.Time // when the read that produced m started
	m      map[string]store.Control
	told   map[string]store.BatchState // last state logged per batch
}

func newControls(src BatchControls, log *slog.Logger) *controls {
	if src == nil {
		return nil
	}
	return &controls{src: src, maxAge: store.ControlMaxAge, log: log, told: map[string]store.BatchState{}}
}

// state returns batch's state, read at most maxAge ago.
func (c *controls) state(ctx context.Context, batch string) (store.BatchState, error) {
	ctl, err := c.control(ctx, batch)
	return ctl.State, err
}

// control returns batch's control, read at most maxAge ago. A nil controls
// runs every batch without a budget.
func (c *controls) control(ctx context.Context, batch string) (store.Control, error) {
	if c == nil {
		return store.Control{State: store.BatchRunning}, nil
	}
	if err := c.fresh(ctx); err != nil {
		return store.Control{}, err
	}
	c.mu.RLock()
	ctl := c.m[batch]
	c.mu.RUnlock()
	if ctl.State == "" {
		ctl.State = store.BatchRunning
	}
	return ctl, nil
}

// fresh reads the batch states again when the last read is older than
// maxAge: the caller that finds them stale reads, the others wait for that
// one read. A nil controls has nothing to read.
func (c *controls) fresh(ctx context.Context) error {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	ok := time.Since(c.readAt) <= c.maxAge
	c.mu.RUnlock()
	if ok {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.readAt) <= c.maxAge { // another caller just read it
		return nil
	}
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	m, err := c.src.BatchControls(rctx)
	cancel()
	if err != nil {
		return fmt.Errorf("reading batch states: %w", err)
	}
	c.m, c.readAt = m, start
	// One log line per batch and state change seen by this worker.
	for id, ctl := range m {
		if ctl.State == store.BatchRunning {
			continue // listed for its budget
		}
		if c.told[id] != ctl.State {
			c.told[id] = ctl.State
			c.log.Info("batch "+string(ctl.State)+"; no model calls for it", "batch", id, "reason", ctl.Reason)
		}
	}
	for id := range c.told {
		if ctl, ok := m[id]; !ok || ctl.State == store.BatchRunning {
			delete(c.told, id)
			c.log.Info("batch running again", "batch", id)
		}
	}
	return nil
}

// expire makes the next state read go to the database (a reservation
// found the budget spent: the store has just paused the batch).
func (c *controls) expire() {
	c.mu.Lock()
	c.readAt = time.Time{}
	c.mu.Unlock()
}

// gate is the batch part of a cascade's CallGate: an error stops the
// cascade before its next model call; budgeted says the call must reserve
// its cost first. A transient failure to read the states (database down,
// connection killed) is waited out with backoff, as the commit is: the
// prompt is held (its heartbeats go on) rather than handed back, and no
// model is called for a batch whose state is unknown.
func (c *controls) gate(ctx context.Context, batch string) (budgeted bool, err error) {
	ctl, ok := c.cached(batch)
	if !ok {
		ctl, err = c.read(ctx, batch)
		if err != nil {
			return false, err
		}
	}
	switch ctl.State {
	case store.BatchPaused:
		return false, errBatchPaused
	case store.BatchCanceled:
		return false, errBatchCanceled
	}
	return ctl.Budgeted, nil
}

// cached returns batch's control when the states were read less than
// maxAge ago, without a read (every model call asks: this path is kept
// short, its stack shallow).
func (c *controls) cached(batch string) (store.Control, bool) {
	if c == nil {
		return store.Control{State: store.BatchRunning}, true
	}
	c.mu.RLock()
	ok := time.Since(c.readAt) <= c.maxAge
	ctl := c.m[batch]
	c.mu.RUnlock()
	if ctl.State == "" {
		ctl.State = store.BatchRunning
	}
	return ctl, ok
}

// read is gate's read of stale states, transient failures waited out.
func (c *controls) read(ctx context.Context, batch string) (store.Control, error) {
	var ctl store.Control
	err := retryTransient(ctx, func() error {
		var err error
		ctl, err = c.control(ctx, batch)
		return err
	}, nil)
	return ctl, err
}
