package queue

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

	"github.com/promptcascade/promptcascade/internal/backoff"
)

// Held is one delivery as the worker holding it sees it: its content, and
// the four ways to settle it.
type Held interface {
	Data() []byte
	Subject() string
	StreamSeq() uint64
	NumDelivered() uint64
	Ack() error
	NakWithDelay(time.Duration) error
	Term() error
	InProgress() error
}

// Exhausted is a message the server stopped delivering: it was delivered
// MaxDeliver times and never acknowledged, so no worker will see it again,
// yet a work-queue stream keeps it. Normally the last delivery stores a
// failed result itself; a message ends up here when the worker holding its
// last delivery stopped (crash, kill, lost connection) or its nak was the
// last word.
type Exhausted struct {
	StreamSeq  uint64
	Subject    string
	Data       []byte
	Deliveries int
}

// Source is the durable consumer as the worker uses it: fetching, the
// consumer's pending counts, recreating a deleted stream or consumer
// (Recover), and finding messages the server gave up on after MaxDeliver
// deliveries (WatchExhausted, Exhausted, RemoveExhausted).
//
// There is one consumer per priority (see PrioritySubject); Fetch takes
// from the high one first, then normal, then low.
type Source struct {
	c   *Conn
	cur atomic.Pointer[consumerGen] // the normal-priority consumer
	// others are the high and low consumers, found at the first Fetch.
	high, low atomic.Pointer[consumerGen]

	mu       sync.Mutex
	reported map[uint64]int   // stream seq → deliveries, from max-deliveries advisories
	stream   jetstream.Stream // from the last Exhausted call
}

// NewSource returns the Source of connection c's durable consumer cons
// (the normal-priority one, from EnsureConsumer) and of its high and low
// siblings.
func NewSource(c *Conn, cons jetstream.Consumer) *Source {
	s := &Source{c: c, reported: make(map[uint64]int)}
	s.cur.Store(&consumerGen{cons: cons, created: created(cons), gen: 1})
	return s
}

// tiers returns the consumer of each priority, highest first, looking up
// the high and low ones the first time (EnsureConsumer made them).
func (s *Source) tiers(ctx context.Context) ([]*atomic.Pointer[consumerGen], error) {
	for _, t := range []struct {
		p   string
		ptr *atomic.Pointer[consumerGen]
	}{{PriorityHigh, &s.high}, {PriorityLow, &s.low}} {
		if t.ptr.Load() != nil {
			continue
		}
		name := priorityConsumer(s.c.cfg.Consumer, t.p)
		cons, err := s.c.js.Consumer(ctx, s.c.cfg.Stream, name)
		if err != nil {
			return nil, s.c.fetchErr(ctx, err)
		}
		t.ptr.CompareAndSwap(nil, &consumerGen{cons: cons, created: created(cons), gen: 1})
	}
	return []*atomic.Pointer[consumerGen]{&s.high, &s.cur, &s.low}, nil
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

// Fetch returns up to n deliveries, waiting at most maxWait for the first
// (Conn.Fetch); a deleted consumer or stream gives an error wrapping
// ErrConsumerGone.
//
// Priorities: it takes all the high consumer has without waiting (asking
// until it has nothing more), then fills the rest from normal, then from
// low, so a high batch is fetched at the next free slot however many
// normal prompts are queued. Only when all three have nothing does it
// wait, a third of maxWait on each.
func (s *Source) Fetch(ctx context.Context, n int, maxWait time.Duration) ([]Held, error) {
	tiers, err := s.tiers(ctx)
	if err != nil {
		return nil, err
	}
	var out []Held
	take := func(t *atomic.Pointer[consumerGen], wait time.Duration) error {
		cg := t.Load()
		ds, err := s.c.Fetch(ctx, cg.cons, n-len(out), wait)
		if len(ds) == 0 {
			return err
		}
		if out == nil {
			out = make([]Held, 0, n)
		}
		// One allocation for the fetch's deliveries, not one each.
		gds := make([]genDelivery, len(ds))
		for i, d := range ds {
			gds[i] = genDelivery{d: d, gen: cg.gen, tier: t}
			out = append(out, &gds[i])
		}
		return err
	}
	for _, t := range tiers {
		// One no-wait request can end before it has taken all that is
		// there: nats.go stops listening after a second without a message,
		// which a loaded machine can take. Ask again until one comes back
		// empty, so that all a higher priority holds is taken first.
		for len(out) < n {
			had := len(out)
			if err := take(t, 0); err != nil {
				return out, err
			}
			if len(out) == had {
				break
			}
		}
	}
	if len(out) > 0 || maxWait <= 0 {
		return out, nil
	}
	for _, t := range tiers {
		if err := take(t, maxWait/time.Duration(len(tiers))); err != nil || len(out) > 0 {
			return out, err
		}
	}
	return out, nil
}

// Pending reports messages not yet delivered and deliveries not yet acked,
// across every worker and every priority's consumer.
func (s *Source) Pending(ctx context.Context) (uint64, uint64, error) {
	ps, err := s.PendingByPriority(ctx)
	if err != nil {
		return 0, 0, err
	}
	var pending, ackPending uint64
	for _, p := range ps {
		pending, ackPending = pending+p.Pending, ackPending+p.AckPending
	}
	return pending, ackPending, nil
}

// PriorityPending is what one priority's consumer holds.
type PriorityPending struct {
	Priority   string // high, normal or low
	Pending    uint64 // messages not yet delivered
	AckPending uint64 // deliveries not yet acked, across every worker
}

// PendingByPriority reports Pending for each priority's consumer, highest
// first (Priorities' order).
func (s *Source) PendingByPriority(ctx context.Context) ([]PriorityPending, error) {
	tiers, err := s.tiers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PriorityPending, 0, len(tiers))
	for i, t := range tiers {
		p, a, err := s.c.Pending(ctx, t.Load().cons)
		if err != nil {
			return nil, err
		}
		out = append(out, PriorityPending{Priority: Priorities[i], Pending: p, AckPending: a})
	}
	return out, nil
}

// Recover makes sure the stream and the consumer exist, creating them as
// queue.EnsureStream and EnsureConsumer do, within ctx's deadline. While
// the connection to the server is down it first waits for the reconnection
// (which the connection makes by itself).
func (s *Source) Recover(ctx context.Context) error {
	for !s.c.NATS().IsConnected() {
		if s.c.NATS().IsClosed() {
			return fmt.Errorf("recover consumer: %w", nats.ErrConnectionClosed)
		}
		if backoff.Sleep(ctx, 100*time.Millisecond) != nil {
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
	adopt(&s.cur, cons, created(cons))
	for _, t := range []struct {
		p   string
		ptr *atomic.Pointer[consumerGen]
	}{{PriorityHigh, &s.high}, {PriorityLow, &s.low}} {
		cons, err := s.c.js.Consumer(ctx, s.c.cfg.Stream, priorityConsumer(s.c.cfg.Consumer, t.p))
		if err != nil {
			return fmt.Errorf("recover consumer: %w", err)
		}
		adopt(t.ptr, cons, created(cons))
	}
	return nil
}

// adopt makes cons the current consumer of its priority; a consumer
// created anew (another creation time) starts a new generation.
func adopt(cur *atomic.Pointer[consumerGen], cons jetstream.Consumer, createdAt time.Time) {
	for {
		old := cur.Load()
		next := &consumerGen{cons: cons, created: createdAt, gen: 1}
		if old != nil {
			next.gen = old.gen
			if !createdAt.Equal(old.created) {
				next.gen++
			}
		}
		if cur.CompareAndSwap(old, next) {
			return
		}
	}
}

// genDelivery is a delivery of one consumer generation.
type genDelivery struct {
	d    Delivery
	gen  uint64
	tier *atomic.Pointer[consumerGen] // the consumer (priority) it came from
}

// errStaleDelivery is returned when settling a delivery of a consumer that
// has since been deleted and recreated; nothing is sent.
var errStaleDelivery = errors.New("delivery belongs to a consumer that was deleted and recreated; not settled")

func (d *genDelivery) stale() bool { return d.gen != d.tier.Load().gen }

func (d *genDelivery) Data() []byte         { return d.d.Data() }
func (d *genDelivery) Subject() string      { return d.d.Subject() }
func (d *genDelivery) StreamSeq() uint64    { return d.d.StreamSeq() }
func (d *genDelivery) NumDelivered() uint64 { return d.d.NumDelivered() }

func (d *genDelivery) Ack() error {
	if d.stale() {
		return errStaleDelivery
	}
	return d.d.Ack()
}

func (d *genDelivery) NakWithDelay(delay time.Duration) error {
	if d.stale() {
		return errStaleDelivery
	}
	return d.d.NakWithDelay(delay)
}

func (d *genDelivery) Term() error {
	if d.stale() {
		return errStaleDelivery
	}
	return d.d.Term()
}

func (d *genDelivery) InProgress() error {
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
// this stream and its consumers, one per priority
// ($JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>).
func (s *Source) WatchExhausted(notify func()) (func(), error) {
	cfg := s.c.Config()
	var subs []*nats.Subscription
	stop := func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}
	for _, p := range Priorities {
		subj := maxDeliveriesAdvisoryPrefix + cfg.Stream + "." + priorityConsumer(cfg.Consumer, p)
		sub, err := s.watchAdvisories(subj, notify)
		if err != nil {
			stop()
			return nil, err
		}
		subs = append(subs, sub)
	}
	return stop, nil
}

func (s *Source) watchAdvisories(subj string, notify func()) (*nats.Subscription, error) {
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
	return sub, nil
}

// Exhausted returns up to limit messages that the consumer stopped
// delivering after MaxDeliver deliveries and that are still in the stream.
// They come from two places: the advisories received since the last call,
// and, when no delivery awaits an ack, a scan of the delivered part of the
// stream (in a work-queue stream an acked or termed message is removed, so
// whatever is left there was given up on). The scan turns an advisory that
// nobody received (every worker was down) into a delay, not a loss. With
// nothing to find it costs two info requests.
func (s *Source) Exhausted(ctx context.Context, limit int) ([]Exhausted, error) {
	cfg := s.c.Config()
	stream, err := s.c.JetStream().Stream(ctx, cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s info: %w", cfg.Stream, err)
	}
	s.mu.Lock()
	s.stream = stream
	s.mu.Unlock()
	tiers, err := s.tiers(ctx)
	if err != nil {
		return nil, err
	}
	infos := make([]*jetstream.ConsumerInfo, len(tiers))
	for i, t := range tiers {
		cg := t.Load()
		info, err := cg.cons.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("consumer %s info: %w", cg.cons.CachedInfo().Name, err)
		}
		if !info.Created.Equal(cg.created) {
			// Deleted and recreated by someone else (another worker's
			// Recover): stop settling deliveries of the old one.
			adopt(t, cg.cons, info.Created)
		}
		infos[i] = info
	}
	maxDeliver := infos[0].Config.MaxDeliver

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
	// Each priority's consumer is scanned on its own subjects.
	state := stream.CachedInfo().State
	if state.Msgs == 0 {
		return out, nil
	}
	for _, info := range infos {
		last := info.Delivered.Stream
		if info.NumAckPending > 0 || len(out) >= limit || last < state.FirstSeq {
			continue
		}
		err = scan(ctx, stream, info.Config.FilterSubject, state.FirstSeq, func(m *jetstream.RawStreamMsg) bool {
			if m.Sequence > last {
				return false
			}
			add(m, maxDeliver)
			return len(out) < limit
		})
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// rereport keeps advisories not yet looked at for the next call.
func (s *Source) rereport(seqs []uint64, deliveries map[uint64]int) {
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
func (s *Source) RemoveExhausted(ctx context.Context, seq uint64) error {
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
