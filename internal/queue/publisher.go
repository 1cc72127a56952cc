package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/promptcascade/promptcascade/internal/backoff"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

// Retry policy of the publisher.
const (
	retryBase = 50 * time.Millisecond
	retryMax  = 2 * time.Second
	// A subject nobody stores (stream deleted?) is retried this long before
	// the message counts as failed; a server restart recovers far sooner.
	noStreamGiveUp = 15 * time.Second
	// Errors the publisher does not know are retried this many times.
	maxUnknownAttempts = 10
	// Wait keeps at most this many failure errors.
	maxKeptFailures = 100
)

// ErrPublisherClosed is returned by Publish after Wait gave up.
var ErrPublisherClosed = errors.New("publisher closed")

// Stats counts what happened to the jobs given to Publish.
type Stats struct {
	Published  int64 // stored as new messages
	Duplicates int64 // already in the stream (same Nats-Msg-Id within the duplicate window)
	Failed     int64 // given up on: not stored
	Retried    int64 // re-sends after a transient failure (stream full, disconnect, ack timeout)
}

// PublishError says which job could not be stored and why.
type PublishError struct {
	MsgID string
	Err   error
}

func (e *PublishError) Error() string { return fmt.Sprintf("publish %s: %v", e.MsgID, e.Err) }
func (e *PublishError) Unwrap() error { return e.Err }

// Publisher publishes jobs asynchronously with a bounded number of
// unacknowledged messages. Each job carries Nats-Msg-Id = batch/id, so
// sending it again within the stream's duplicate window stores nothing new.
//
// Nothing is dropped: a message the server refuses for a transient reason
// (stream full under DiscardNew, insufficient storage, disconnected, ack
// timed out, no stream answering during a restart) is sent again with the
// same Msg-Id after a backoff, and it keeps its slot meanwhile. When the
// stream is full every slot ends up waiting, so Publish blocks: the producer
// is pushed back until consumers make room. While the stream is full only
// one waiting message at a time probes it, so a full stream is not hammered
// with thousands of doomed re-sends. Only permanent refusals (e.g. a message
// over the stream's size limit) count as Failed.
//
// Publish may be called from several goroutines; Wait must not run
// concurrently with Publish.
type Publisher struct {
	conn     *Conn
	js       jetstream.JetStream
	log      *slog.Logger
	prefix   string
	limit    int // Conn.MessageLimit
	slots    chan struct{}
	noStream time.Duration // give-up time for "no stream answered"

	mu          sync.Mutex
	inflight    map[*nats.Msg]*pubEntry
	retryQ      []*pubEntry
	retrying    bool          // retry goroutine running
	wake        chan struct{} // nudges the retry goroutine
	stop        chan struct{} // closed when Wait gives up
	abandoned   error
	outstanding int
	idle        chan struct{} // closed when outstanding drops to 0
	stats       Stats
	failures    []error
	full        bool      // the stream reported full and nothing was stored since
	probing     bool      // while full: one message is out probing the stream
	probeFails  int       // failed probes since the stream became full
	nextProbe   time.Time // while full: when the next probe may go
	wg          sync.WaitGroup
}

type pubEntry struct {
	msg           *nats.Msg
	id            string
	attempts      int
	unknown       int       // attempts that failed with an unclassified error
	noStreamSince time.Time // first "no stream answered" of a run of them
	due           time.Time
	probe         bool // sent as the probe of a full stream
}

// NewPublisher returns a publisher with at most maxPending messages
// awaiting their ack (including those waiting to be re-sent); values below 1
// mean 1. Use a few thousand for throughput.
func NewPublisher(c *Conn, maxPending int) *Publisher {
	maxPending = max(maxPending, 1)
	p := &Publisher{
		conn:     c,
		log:      c.log,
		prefix:   c.cfg.SubjectPrefix,
		limit:    c.MessageLimit(),
		slots:    make(chan struct{}, maxPending),
		noStream: noStreamGiveUp,
		inflight: make(map[*nats.Msg]*pubEntry),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	js, err := jetstream.New(c.nc,
		jetstream.WithPublishAsyncMaxPending(maxPending),
		jetstream.WithPublishAsyncTimeout(c.cfg.PublishAckTimeout),
		jetstream.WithPublishAsyncAckHandler(p.onAck),
		jetstream.WithPublishAsyncErrHandler(p.onErr),
	)
	if err != nil {
		// Only invalid options fail, and ours are valid.
		panic(fmt.Sprintf("queue: JetStream publisher context: %v", err))
	}
	p.js = js
	return p
}

// Publish hands one job to the publisher. It blocks while maxPending
// messages await their ack (back-pressure) and returns an error only when
// the job was not accepted: invalid batch name or id, over the connection's
// MessageLimit (a *TooLargeError), ctx done, or the publisher closed. What
// happens to accepted jobs is counted in Stats and reported by Wait.
func (p *Publisher) Publish(ctx context.Context, job prompt.Job) error {
	return p.PublishAs(ctx, job, "")
}

// PublishAs is Publish with msgID as the Nats-Msg-Id ("" = JobMsgID(job)):
// a deliberate second publication of a prompt (resume, retry) needs an
// id of its own, or JetStream drops it as a duplicate within its window.
func (p *Publisher) PublishAs(ctx context.Context, job prompt.Job, msgID string) error {
	if job.EnqueuedAt.IsZero() {
		job.EnqueuedAt = time.Now().UTC()
	}
	m, err := EncodeJob(job, p.limit)
	if err != nil {
		return err
	}
	if msgID != "" {
		m.MsgID = msgID
	}
	return p.PublishMessage(ctx, m)
}

// PublishMessage is Publish for a job that EncodeJob encoded already (enqueue
// encodes each line first, to reject one over the limit before recording it).
func (p *Publisher) PublishMessage(ctx context.Context, m Message) error {
	if err := checkSize(m.MsgID, m.Body, 0, p.limit); err != nil {
		return err
	}
	data, id := m.Body, m.MsgID
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	msg := &nats.Msg{
		Subject: PrioritySubject(p.prefix, m.Priority, m.Batch),
		Data:    data,
		Header:  nats.Header{jetstream.MsgIDHeader: []string{id}},
	}
	e := &pubEntry{msg: msg, id: id, attempts: 1}
	p.mu.Lock()
	if p.abandoned != nil {
		p.mu.Unlock()
		<-p.slots
		return ErrPublisherClosed
	}
	p.inflight[msg] = e
	p.outstanding++
	p.mu.Unlock()
	p.send(e)
	return nil
}

// send makes one attempt. A synchronous failure takes the same path as an
// asynchronous one.
func (p *Publisher) send(e *pubEntry) {
	if _, err := p.js.PublishMsgAsync(e.msg); err != nil {
		p.onErr(p.js, e.msg, err)
	}
}

// onAck runs on nats.go's ack goroutine: it must not block.
func (p *Publisher) onAck(_ jetstream.JetStream, msg *nats.Msg, ack *jetstream.PubAck) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.inflight[msg]
	if !ok {
		return
	}
	delete(p.inflight, msg)
	if e.probe {
		e.probe, p.probing = false, false
	}
	// After a re-send a duplicate most likely means an earlier attempt of
	// ours was stored, so only a first attempt counts as a duplicate.
	if ack.Duplicate && e.attempts == 1 {
		p.stats.Duplicates++
	} else {
		p.stats.Published++
	}
	if p.full {
		p.full = false
		p.log.Info("stream accepts messages again", "stream", ack.Stream)
		p.wakeLocked() // release the messages held back while probing
	}
	p.finishLocked()
}

// onErr runs on nats.go goroutines (ack handler, ack timer, reconnect
// listener) or in send: it must not block and must not call into nats.go.
func (p *Publisher) onErr(_ jetstream.JetStream, msg *nats.Msg, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.inflight[msg]
	if !ok {
		return
	}
	wasProbe := e.probe
	if e.probe {
		e.probe, p.probing = false, false
	}
	if p.abandoned != nil {
		p.failLocked(e, fmt.Errorf("%w (last error: %w)", p.abandoned, err))
		return
	}
	class := classifyPublishErr(err)
	now := time.Now()
	switch class {
	case pubPermanent:
		p.failLocked(e, err)
		return
	case pubNoStream:
		if e.noStreamSince.IsZero() {
			e.noStreamSince = now
		} else if now.Sub(e.noStreamSince) > p.noStream {
			p.failLocked(e, fmt.Errorf("no stream stored subject %s for %s (stream %s deleted?): %w",
				msg.Subject, p.noStream, p.conn.cfg.Stream, err))
			return
		}
	case pubUnknown:
		e.unknown++
		if e.unknown >= maxUnknownAttempts {
			p.failLocked(e, err)
			return
		}
	case pubFull:
		switch {
		case !p.full:
			p.full, p.probeFails = true, 0
			p.nextProbe = now.Add(retry.Delay(1))
			p.log.Warn("stream is full, waiting for consumers to make room", "stream", p.conn.cfg.Stream, "err", err)
		case wasProbe:
			p.probeFails++
			p.nextProbe = now.Add(retry.Delay(p.probeFails + 1))
		}
	}
	if class != pubFull {
		p.full = false // something else is going on; stop probing
	}
	if class != pubNoStream {
		e.noStreamSince = time.Time{}
	}
	p.log.Debug("publish will be retried", "msg_id", e.id, "attempt", e.attempts, "err", err)
	e.due = now.Add(retry.Delay(e.attempts))
	p.retryQ = append(p.retryQ, e)
	if !p.retrying {
		p.retrying = true
		p.wg.Add(1)
		go p.retryLoop()
	}
	p.wakeLocked()
}

func (p *Publisher) wakeLocked() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Publisher) failLocked(e *pubEntry, err error) {
	delete(p.inflight, e.msg)
	p.stats.Failed++
	if len(p.failures) < maxKeptFailures {
		p.failures = append(p.failures, &PublishError{MsgID: e.id, Err: err})
	}
	if p.abandoned == nil {
		p.log.Warn("publish failed", "msg_id", e.id, "err", err)
	}
	p.finishLocked()
}

func (p *Publisher) finishLocked() {
	p.outstanding--
	<-p.slots
	if p.outstanding == 0 && p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
}

// retry spaces the re-sends of one message (and, while the stream is full,
// the probes): a full stream is not probed by every waiting message at the
// same instant.
var retry = backoff.Policy{Base: retryBase, Max: retryMax}

// retryLoop re-sends due messages until the retry queue is empty.
func (p *Publisher) retryLoop() {
	defer p.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		if p.abandoned != nil || len(p.retryQ) == 0 {
			for _, e := range p.retryQ {
				p.failLocked(e, p.abandoned)
			}
			p.retryQ = nil
			p.retrying = false
			p.mu.Unlock()
			return
		}
		now := time.Now()
		var due []*pubEntry
		next := now.Add(time.Hour)
		switch {
		case p.full && p.probing:
			// Wait for the probe's answer (onAck or onErr wakes us).
		case p.full && now.Before(p.nextProbe):
			next = p.nextProbe
		case p.full:
			// Send only the longest-waiting message, as a probe; the probe
			// interval backs off while the stream stays full.
			first := 0
			for i, e := range p.retryQ {
				if e.due.Before(p.retryQ[first].due) {
					first = i
				}
			}
			e := p.retryQ[first]
			e.probe, p.probing = true, true
			due = append(due, e)
			p.retryQ = slices.Delete(p.retryQ, first, first+1)
		default:
			kept := p.retryQ[:0]
			for _, e := range p.retryQ {
				if !e.due.After(now) {
					due = append(due, e)
					continue
				}
				kept = append(kept, e)
				if e.due.Before(next) {
					next = e.due
				}
			}
			clear(p.retryQ[len(kept):])
			p.retryQ = kept
		}
		for _, e := range due {
			e.attempts++
			p.stats.Retried++
		}
		p.mu.Unlock()

		if len(due) > 0 {
			for _, e := range due {
				p.send(e)
			}
			continue
		}
		timer.Reset(time.Until(next))
		select {
		case <-timer.C:
		case <-p.wake:
			// Since Go 1.23 Reset discards a pending tick; no drain needed.
		case <-p.stop:
		}
	}
}

// Stats returns the counts so far (for progress display).
func (p *Publisher) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Pending is the number of accepted jobs not yet stored or failed.
func (p *Publisher) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.outstanding
}

// Wait blocks until every accepted job is stored (or failed for good) and
// returns the counts. The error joins the failures (*PublishError, the
// first 100) when any job failed. If ctx ends first, Wait gives up: jobs not
// yet acknowledged count as Failed (they may or may not be stored; sending
// them again is safe) and the publisher refuses further jobs.
func (p *Publisher) Wait(ctx context.Context) (Stats, error) {
	p.mu.Lock()
	for p.outstanding > 0 {
		if p.idle == nil {
			p.idle = make(chan struct{})
		}
		idle := p.idle
		p.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			p.giveUp(fmt.Errorf("queue: gave up waiting for publish acks: %w", context.Cause(ctx)))
			st := p.Stats()
			return st, fmt.Errorf("queue: %d of %d jobs not confirmed as stored: %w",
				st.Failed, st.Published+st.Duplicates+st.Failed, context.Cause(ctx))
		}
		p.mu.Lock()
	}
	st := p.stats
	failures := p.failures
	p.mu.Unlock()
	p.wg.Wait()
	p.js.CleanupPublisher()
	if st.Failed > 0 {
		return st, fmt.Errorf("queue: %d jobs could not be stored: %w", st.Failed, errors.Join(failures...))
	}
	return st, nil
}

func (p *Publisher) giveUp(reason error) {
	p.mu.Lock()
	if p.abandoned == nil {
		p.abandoned = reason
		close(p.stop)
	}
	p.mu.Unlock()
	p.wg.Wait()
	// Fails whatever still awaits an ack through onErr.
	p.js.CleanupPublisher()
}

type pubErrClass int

const (
	pubTransient pubErrClass = iota // retry without limit
	pubFull                         // stream or storage full: retry without limit (back-pressure)
	pubNoStream                     // nobody stores the subject: retry for noStreamGiveUp
	pubUnknown                      // retry maxUnknownAttempts times
	pubPermanent                    // fail now
)

func classifyPublishErr(err error) pubErrClass {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr):
		switch {
		case apiErr.ErrorCode == errCodeStreamStoreFailed || apiErr.ErrorCode == errCodeInsufficientResources:
			return pubFull
		case apiErr.Code == 503 || apiErr.Code == 408:
			return pubTransient
		default:
			return pubPermanent
		}
	case errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders):
		return pubNoStream
	case errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrReconnectBufExceeded),
		errors.Is(err, nats.ErrTimeout),
		errors.Is(err, jetstream.ErrAsyncPublishTimeout),
		errors.Is(err, jetstream.ErrTooManyStalledMsgs),
		errors.Is(err, jetstream.ErrInvalidJSAck):
		return pubTransient
	case errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionDraining),
		errors.Is(err, nats.ErrMaxPayload),
		errors.Is(err, nats.ErrBadSubject),
		errors.Is(err, nats.ErrHeadersNotSupported),
		errors.Is(err, jetstream.ErrJetStreamPublisherClosed):
		return pubPermanent
	}
	return pubUnknown
}
