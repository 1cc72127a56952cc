// Package workertest gives the worker an in-memory Source and Store, for
// fast unit tests of paths that real services make hard to reach (a
// permanent commit error, a dead-letter write that fails). The tests
// against an embedded nats-server and Postgres stay the reference; these
// run beside them, never instead.
package workertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/store"
	"github.com/promptcascade/promptcascade/internal/worker"
)

// Settlement is how a delivery was settled.
type Settlement string

// The ways a delivery is settled.
const (
	Acked  Settlement = "ack"
	Naked  Settlement = "nak"
	Termed Settlement = "term"
)

// ErrNotHeld is returned when a delivery is settled that is no longer
// held (settled already, or handed out again after a nak).
var ErrNotHeld = errors.New("workertest: delivery is not held")

// Source is an in-memory work queue with the semantics the worker relies
// on: a delivery is held until acked or termed (then gone) or naked (then
// delivered again, at once: nak delays are recorded, not waited for).
// Recovery and the exhausted sweep have nothing to do.
type Source struct {
	mu      sync.Mutex
	seq     uint64
	ready   []*message
	held    map[*Delivery]bool
	history map[uint64][]Settlement
	delays  []time.Duration
	wake    chan struct{}
}

type message struct {
	seq       uint64
	subject   string
	data      []byte
	delivered uint64
}

// NewSource returns an empty Source.
func NewSource() *Source {
	return &Source{held: make(map[*Delivery]bool), history: make(map[uint64][]Settlement), wake: make(chan struct{}, 1)}
}

var _ worker.Source = (*Source)(nil)

// Publish adds a message and returns its stream sequence.
func (s *Source) Publish(subject string, data []byte) uint64 {
	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.ready = append(s.ready, &message{seq: seq, subject: subject, data: data})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return seq
}

// PublishJob encodes job as enqueue does and publishes it.
func (s *Source) PublishJob(job prompt.Job) (uint64, error) {
	m, err := queue.EncodeJob(job, 0)
	if err != nil {
		return 0, err
	}
	return s.Publish(queue.Subject(queue.DefaultSubjectPrefix, m.Batch), m.Body), nil
}

// Fetch hands out up to n ready messages, waiting at most maxWait for one.
func (s *Source) Fetch(ctx context.Context, n int, maxWait time.Duration) ([]worker.Delivery, error) {
	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		var out []worker.Delivery
		for len(s.ready) > 0 && len(out) < n {
			m := s.ready[0]
			s.ready = s.ready[1:]
			m.delivered++
			d := &Delivery{src: s, m: m, n: m.delivered}
			s.held[d] = true
			out = append(out, d)
		}
		s.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
			return nil, nil
		case <-s.wake:
		}
	}
}

// Pending reports ready messages and held deliveries.
func (s *Source) Pending(context.Context) (uint64, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(len(s.ready)), uint64(len(s.held)), nil
}

// Recover has nothing to recreate.
func (s *Source) Recover(context.Context) error { return nil }

// WatchExhausted reports nothing: no message runs out of deliveries here.
func (s *Source) WatchExhausted(func()) (func(), error) { return func() {}, nil }

// Exhausted finds nothing.
func (s *Source) Exhausted(context.Context, int) ([]worker.Exhausted, error) { return nil, nil }

// RemoveExhausted has nothing to remove.
func (s *Source) RemoveExhausted(context.Context, uint64) error { return nil }

// History returns how each delivery of message seq was settled, in order.
func (s *Source) History(seq uint64) []Settlement {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Settlement(nil), s.history[seq]...)
}

// Left returns how many messages are ready or held (not acked or termed).
func (s *Source) Left() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ready) + len(s.held)
}

func (s *Source) settle(d *Delivery, how Settlement, delay time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.held[d] {
		return fmt.Errorf("%w: message %d, delivery %d (%s)", ErrNotHeld, d.m.seq, d.n, how)
	}
	delete(s.held, d)
	s.history[d.m.seq] = append(s.history[d.m.seq], how)
	if how == Naked {
		s.delays = append(s.delays, delay)
		s.ready = append(s.ready, d.m)
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// Delivery is one delivery of a Source's message.
type Delivery struct {
	src *Source
	m   *message
	n   uint64
}

func (d *Delivery) Data() []byte         { return d.m.data }
func (d *Delivery) Subject() string      { return d.m.subject }
func (d *Delivery) StreamSeq() uint64    { return d.m.seq }
func (d *Delivery) NumDelivered() uint64 { return d.n }
func (d *Delivery) Ack() error           { return d.src.settle(d, Acked, 0) }
func (d *Delivery) Term() error          { return d.src.settle(d, Termed, 0) }

func (d *Delivery) NakWithDelay(delay time.Duration) error { return d.src.settle(d, Naked, delay) }

// InProgress succeeds while the delivery is held.
func (d *Delivery) InProgress() error {
	d.src.mu.Lock()
	defer d.src.mu.Unlock()
	if !d.src.held[d] {
		return ErrNotHeld
	}
	return nil
}

// Store is an in-memory worker.Store: results keyed by (batch, prompt id),
// the first write wins, as in Postgres; dead letters in order. FailWrite
// and FailDeadLetters, when set, are asked before each write and fail the
// whole call (as a rolled-back transaction) with the error they return.
type Store struct {
	FailWrite       func(rs []prompt.Result) error
	FailDeadLetters func(dls []store.DeadLetter) error

	mu      sync.Mutex
	results map[store.Key]prompt.Result
	dead    []store.DeadLetter
}

// NewStore returns an empty Store.
func NewStore() *Store { return &Store{results: make(map[store.Key]prompt.Result)} }

var _ worker.Store = (*Store)(nil)

func key(r prompt.Result) store.Key { return store.Key{BatchID: r.Job.BatchID, PromptID: r.Job.ID} }

// LookupCache finds nothing: the in-memory store keeps no response cache.
func (s *Store) LookupCache(context.Context, [][]byte, time.Time) (map[string]prompt.CachedAnswer, error) {
	return nil, nil
}

// Existing reports which keys have a result.
func (s *Store) Existing(_ context.Context, keys []store.Key) (map[store.Key]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[store.Key]bool)
	for _, k := range keys {
		if _, ok := s.results[k]; ok {
			out[k] = true
		}
	}
	return out, nil
}

// Write stores the results not stored yet and reports which it stored.
func (s *Store) Write(_ context.Context, rs []prompt.Result) ([]bool, error) {
	if s.FailWrite != nil {
		if err := s.FailWrite(rs); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	stored := make([]bool, len(rs))
	for i, r := range rs {
		if _, ok := s.results[key(r)]; !ok {
			s.results[key(r)] = r
			stored[i] = true
		}
	}
	return stored, nil
}

// DeadLetters stores dead letters.
func (s *Store) DeadLetters(_ context.Context, dls []store.DeadLetter) error {
	if s.FailDeadLetters != nil {
		if err := s.FailDeadLetters(dls); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dead = append(s.dead, dls...)
	return nil
}

// Results returns the stored results by key.
func (s *Store) Results() map[store.Key]prompt.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[store.Key]prompt.Result, len(s.results))
	for k, r := range s.results {
		out[k] = r
	}
	return out
}

// DeadLettered returns the stored dead letters, in order.
func (s *Store) DeadLettered() []store.DeadLetter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]store.DeadLetter(nil), s.dead...)
}
