package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/promptcascade/promptcascade/internal/queue"
)

// JetStreamSource adapts a queue connection and its durable consumer to
// Source. Besides fetching it can recreate a deleted stream or consumer
// (Recoverer) and find messages the server gave up on after MaxDeliver
// deliveries (ExhaustedSource).
func JetStreamSource(c *queue.Conn, cons jetstream.Consumer) Source {
	s := &jsSource{c: c, reported: make(map[uint64]int)}
	s.cur.Store(&consumerGen{cons: cons, created: created(cons), gen: 1})
	return s
}

type jsSource struct {
	c   *queue.Conn
	cur atomic.Pointer[consumerGen]

	mu       sync.Mutex
	reported map[uint64]int   // stream seq → deliveries, from max-deliveries advisories
	stream   jetstream.Stream // from the last Exhausted call
}

// consumerGen is one incarnation of the durable consumer. A consumer
// deleted and created again under the same name is a new generation:
// deliveries of an older one are never acked, naked, termed or extended,
// because their stream sequences may now name other messages (a recreated
// stream numbers from 1 again) and a stale ack or term would remove a
// prompt that nobody has stored.
type consumerGen struct {
	cons    jetstream.Consumer
	created time.Time
	gen     uint64
}

func created(cons jetstream.Consumer) time.Time {
	if info := cons.CachedInfo(); info != nil {
		return info.Created
	}
	return time.Time{}
}

func (s *jsSource) Fetch(ctx context.Context, n int, maxWait time.Duration) ([]Delivery, error) {
	cg := s.cur.Load()
	ds, err := s.c.Fetch(ctx, cg.cons, n, maxWait)
	out := make([]Delivery, len(ds))
	for i, d := range ds {
		out[i] = &jsDelivery{d: d, gen: cg.gen, src: s}
	}
	return out, err
}

func (s *jsSource) Pending(ctx context.Context) (uint64, uint64, error) {
	return s.c.Pending(ctx, s.cur.Load().cons)
}

// Recover makes sure the stream and the consumer exist, creating them as
// queue.EnsureStream and EnsureConsumer do, within ctx's deadline. While
// the connection to the server is down it first waits for the reconnection
// (which the connection makes by itself).
func (s *jsSource) Recover(ctx context.Context) error {
	for !s.c.NATS().IsConnected() {
		if s.c.NATS().IsClosed() {
			return fmt.Errorf("recover consumer: %w", nats.ErrConnectionClosed)
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
	if _, err := s.c.EnsureStream(ctx); err != nil {
		return err
	}
	cons, err := s.c.EnsureConsumer(ctx)
	if err != nil {
		return err
	}
	s.adopt(cons, created(cons))
	return nil
}

// adopt makes cons the current consumer; a consumer created anew (another
// creation time) starts a new generation.
func (s *jsSource) adopt(cons jetstream.Consumer, createdAt time.Time) {
	for {
		old := s.cur.Load()
		next := &consumerGen{cons: cons, created: createdAt, gen: old.gen}
		if !createdAt.Equal(old.created) {
			next.gen++
		}
		if s.cur.CompareAndSwap(old, next) {
			return
		}
	}
}

// jsDelivery is a delivery of one consumer generation.
type jsDelivery struct {
	d   queue.Delivery
	gen uint64
	src *jsSource
}

// errStaleDelivery is returned when settling a delivery of a consumer that
// has since been deleted and recreated; nothing is sent.
var errStaleDelivery = errors.New("delivery belongs to a consumer that was deleted and recreated; not settled")

func (d *jsDelivery) stale() bool { return d.gen != d.src.cur.Load().gen }

func (d *jsDelivery) Data() []byte         { return d.d.Data() }
func (d *jsDelivery) Subject() string      { return d.d.Subject() }
func (d *jsDelivery) StreamSeq() uint64    { return d.d.StreamSeq() }
func (d *jsDelivery) NumDelivered() uint64 { return d.d.NumDelivered() }

func (d *jsDelivery) Ack() error {
	if d.stale() {
		return errStaleDelivery
	}
	return d.d.Ack()
}

func (d *jsDelivery) NakWithDelay(delay time.Duration) error {
	if d.stale() {
		return errStaleDelivery
	}
	return d.d.NakWithDelay(delay)
}

func (d *jsDelivery) Term() error {
	if d.stale() {
		return errStaleDelivery
	}
	return d.d.Term()
}

func (d *jsDelivery) InProgress() error {
	if d.stale() {
		return errStaleDelivery
	}
	return d.d.InProgress()
}

// maxDeliveriesAdvisory is the part of the server's
// io.nats.jetstream.advisory.v1.max_deliver event that is used.
type maxDeliveriesAdvisory struct {
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries int    `json:"deliveries"`
}

// maxDeliveriesAdvisoryPrefix is the subject prefix of the server's
// max-deliveries advisories (server.JSAdvisoryConsumerMaxDeliveryExceedPre).
const maxDeliveriesAdvisoryPrefix = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."

// maxReported bounds the advisories remembered between two scans.
const maxReported = 100_000

// WatchExhausted subscribes to the server's max-deliveries advisories of
// this stream and consumer ($JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>).
func (s *jsSource) WatchExhausted(notify func()) (func(), error) {
	cfg := s.c.Config()
	subj := maxDeliveriesAdvisoryPrefix + cfg.Stream + "." + cfg.Consumer
	sub, err := s.c.NATS().Subscribe(subj, func(m *nats.Msg) {
		var a maxDeliveriesAdvisory
		if json.Unmarshal(m.Data, &a) != nil || a.StreamSeq == 0 {
			return
		}
		s.mu.Lock()
		if len(s.reported) < maxReported {
			s.reported[a.StreamSeq] = a.Deliveries
		}
		s.mu.Unlock()
		notify()
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", subj, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// Exhausted returns up to limit messages that the consumer stopped
// delivering after MaxDeliver deliveries and that are still in the stream.
// They come from two places: the advisories received since the last call,
// and, when no delivery awaits an ack, a scan of the delivered part of the
// stream (in a work-queue stream an acked or termed message is removed, so
// whatever is left there was given up on). The scan turns an advisory that
// nobody received (every worker was down) into a delay, not a loss. With
// nothing to find it costs two info requests.
func (s *jsSource) Exhausted(ctx context.Context, limit int) ([]Exhausted, error) {
	cfg := s.c.Config()
	stream, err := s.c.JetStream().Stream(ctx, cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s info: %w", cfg.Stream, err)
	}
	s.mu.Lock()
	s.stream = stream
	s.mu.Unlock()
	cg := s.cur.Load()
	info, err := cg.cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("consumer %s info: %w", cfg.Consumer, err)
	}
	if !info.Created.Equal(cg.created) {
		// Deleted and recreated by someone else (another worker's Recover):
		// stop settling deliveries of the old one.
		s.adopt(cg.cons, info.Created)
	}
	maxDeliver := info.Config.MaxDeliver

	s.mu.Lock()
	seqs := make([]uint64, 0, len(s.reported))
	deliveries := make(map[uint64]int, len(s.reported))
	for seq, n := range s.reported {
		seqs = append(seqs, seq)
		deliveries[seq] = n
	}
	clear(s.reported)
	s.mu.Unlock()

	var out []Exhausted
	seen := make(map[uint64]bool)
	add := func(m *jetstream.RawStreamMsg, n int) {
		if seen[m.Sequence] {
			return
		}
		seen[m.Sequence] = true
		out = append(out, Exhausted{StreamSeq: m.Sequence, Subject: m.Subject, Data: m.Data, Deliveries: n})
	}
	for i, seq := range seqs {
		if len(out) >= limit {
			s.rereport(seqs[i:], deliveries)
			return out, nil
		}
		m, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // settled meanwhile (by another worker, or acked late)
		}
		if err != nil {
			s.rereport(seqs[i:], deliveries)
			return out, fmt.Errorf("get message %d: %w", seq, err)
		}
		add(m, deliveries[seq])
	}

	// The scan: while nothing is awaiting an ack, every message up to the
	// last one delivered that is still in the (work-queue) stream is one the
	// consumer gave up on. (The ack floor is no guide: it stays below a
	// message given up on.) With acks pending it cannot tell which are
	// being worked on, so it waits for a quiet moment; advisories cover the
	// busy times.
	state := stream.CachedInfo().State
	last := info.Delivered.Stream
	if info.NumAckPending > 0 || state.Msgs == 0 {
		return out, nil
	}
	filter := cfg.SubjectPrefix + ".>"
	for seq := state.FirstSeq; seq > 0 && seq <= last && len(out) < limit; {
		m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("get message at or after %d: %w", seq, err)
		}
		if m.Sequence > last {
			break
		}
		add(m, maxDeliver)
		seq = m.Sequence + 1
	}
	return out, nil
}

// rereport keeps advisories not yet looked at for the next call.
func (s *jsSource) rereport(seqs []uint64, deliveries map[uint64]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seq := range seqs {
		if len(s.reported) < maxReported {
			s.reported[seq] = deliveries[seq]
		}
	}
}

// RemoveExhausted deletes a settled exhausted message from the stream (a
// work-queue stream keeps a message nobody acked forever). A message
// already gone (another worker removed it) is not an error.
func (s *jsSource) RemoveExhausted(ctx context.Context, seq uint64) error {
	s.mu.Lock()
	stream := s.stream
	s.mu.Unlock()
	if stream == nil {
		return errors.New("remove exhausted message: Exhausted was not called")
	}
	err := stream.DeleteMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
		// The server says why only in text; look instead.
		if _, gerr := stream.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("delete message %d from stream %s: %w", seq, s.c.Config().Stream, err)
	}
	return nil
}
