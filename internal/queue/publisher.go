package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
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
// It speaks JetStream's publish protocol itself, as nats.go's
// PublishMsgAsync does: a core NATS publish whose reply subject is a token
// under an inbox of the publisher's own, and one subscription to that inbox
// for the stream's acks. The difference is the cost per message: an ack is
// read without reflection (parsePubAck; a JSON decode only for errors), and
// a periodic sweep (a tenth of the ack timeout, at most a second) finds the
// acks overdue instead of a timer per message.
// nats.go's way was a third of enqueue's CPU per line.
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
	conn       *Conn
	log        *slog.Logger
	prefix     string
	limit      int // Conn.MessageLimit
	slots      chan struct{}
	noStream   time.Duration // give-up time for "no stream answered"
	ackTimeout time.Duration // an ack not in by then is a failed attempt
	inbox      string        // reply subjects: inbox + token (base 36)

	mu          sync.Mutex
	sub         *nats.Subscription // the inbox's; made by the first send
	lastToken   uint64
	inflight    map[uint64]*pubEntry // by token
	retryQ      []*pubEntry
	retrying    bool          // retry goroutine running
	sweeping    bool          // ack-timeout goroutine running
	wake        chan struct{} // nudges the retry goroutine
	sweepWake   chan struct{} // nudges the sweep goroutine (nothing outstanding)
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
	token         uint64
	sent          bool      // an attempt awaits its ack (not waiting to be re-sent)
	sentAt        time.Time // of the attempt awaiting its ack
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
	return &Publisher{
		conn:       c,
		log:        c.log,
		prefix:     c.cfg.SubjectPrefix,
		limit:      c.MessageLimit(),
		slots:      make(chan struct{}, maxPending),
		noStream:   noStreamGiveUp,
		ackTimeout: c.cfg.PublishAckTimeout,
		inbox:      c.nc.NewInbox() + ".",
		inflight:   make(map[uint64]*pubEntry, maxPending),
		wake:       make(chan struct{}, 1),
		sweepWake:  make(chan struct{}, 1),
		stop:       make(chan struct{}),
	}
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
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	msg := natsMsg(p.prefix, m)
	e := &pubEntry{msg: msg, id: m.MsgID, attempts: 1}
	p.mu.Lock()
	if p.abandoned != nil {
		p.mu.Unlock()
		<-p.slots
		return ErrPublisherClosed
	}
	if err := p.subscribeLocked(); err != nil {
		p.mu.Unlock()
		<-p.slots
		return err
	}
	p.lastToken++
	e.token = p.lastToken
	msg.Reply = p.inbox + strconv.FormatUint(e.token, 36)
	p.inflight[e.token] = e
	p.outstanding++
	p.sentLocked(e, time.Now())
	p.mu.Unlock()
	p.send(e)
	return nil
}

// subscribeLocked makes the inbox's subscription, the first time.
func (p *Publisher) subscribeLocked() error {
	if p.sub != nil {
		return nil
	}
	sub, err := p.conn.nc.Subscribe(p.inbox+"*", p.onReply)
	if err != nil {
		return fmt.Errorf("queue: subscribe to publish acks: %w", err)
	}
	// At most maxPending acks are due at a time: no limit to hit.
	_ = sub.SetPendingLimits(-1, -1)
	p.sub = sub
	return nil
}

// sentLocked marks an attempt of e as awaiting its ack from now, and starts
// the sweep for overdue acks if it is not running.
func (p *Publisher) sentLocked(e *pubEntry, now time.Time) {
	e.sent, e.sentAt = true, now
	if !p.sweeping {
		p.sweeping = true
		p.wg.Add(1)
		go p.sweepLoop()
	}
}

// send makes one attempt (sentLocked marked it). A synchronous failure
// takes the same path as an asynchronous one.
func (p *Publisher) send(e *pubEntry) {
	if err := p.conn.nc.PublishMsg(e.msg); err != nil {
		p.onErr(e, err)
	}
}

// onReply handles a message on the inbox: the stream's answer to one
// attempt. It runs on the subscription's goroutine and must not block.
func (p *Publisher) onReply(m *nats.Msg) {
	token, err := strconv.ParseUint(strings.TrimPrefix(m.Subject, p.inbox), 36, 64)
	if err != nil {
		return
	}
	var duplicate bool
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		err = jetstream.ErrNoStreamResponse // no stream has the subject
	} else {
		duplicate, err = parsePubAck(m.Data)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.inflight[token]
	if e == nil || !e.sent {
		// Stored or failed already, or an answer to an attempt that
		// timed out (the re-send gets its own).
		return
	}
	if err != nil {
		p.errLocked(e, err)
		return
	}
	p.ackLocked(e, duplicate)
}

// ackLocked records that the stream stored e (duplicate: it had it
// already).
func (p *Publisher) ackLocked(e *pubEntry, duplicate bool) {
	delete(p.inflight, e.token)
	e.sent = false
	if e.probe {
		e.probe, p.probing = false, false
	}
	// After a re-send a duplicate most likely means an earlier attempt of
	// ours was stored, so only a first attempt counts as a duplicate.
	if duplicate && e.attempts == 1 {
		p.stats.Duplicates++
	} else {
		p.stats.Published++
	}
	if p.full {
		p.full = false
		p.log.Info("stream accepts messages again", "stream", p.conn.cfg.Stream)
		p.wakeLocked() // release the messages held back while probing
	}
	p.finishLocked()
}

// onErr records a failed attempt of e, unless e is no longer awaiting an
// ack (stored, failed, or timed out already). It runs on the sweep's
// goroutine or the sender's and must not block.
func (p *Publisher) onErr(e *pubEntry, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inflight[e.token] != e || !e.sent {
		return
	}
	p.errLocked(e, err)
}

// errLocked records a failed attempt of e: it is re-sent after a backoff,
// or counted as failed.
func (p *Publisher) errLocked(e *pubEntry, err error) {
	e.sent = false
	msg := e.msg
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
	delete(p.inflight, e.token)
	e.sent = false
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
	if p.outstanding == 0 {
		select {
		case p.sweepWake <- struct{}{}:
		default:
		}
		if p.idle != nil {
			close(p.idle)
			p.idle = nil
		}
	}
}

// sweepEvery is how often the sweep looks for overdue acks: a tenth of the
// ack timeout, at most a second.
func (p *Publisher) sweepEvery() time.Duration {
	return min(max(p.ackTimeout/10, time.Millisecond), time.Second)
}

// sweepLoop fails the attempts whose ack is overdue (ErrAsyncPublishTimeout:
// re-sent), until nothing is outstanding. One pass over at most maxPending
// entries replaces a timer per message.
func (p *Publisher) sweepLoop() {
	defer p.wg.Done()
	tick := time.NewTicker(p.sweepEvery())
	defer tick.Stop()
	var overdue []*pubEntry
	for {
		p.mu.Lock()
		if p.outstanding == 0 || p.abandoned != nil {
			p.sweeping = false
			p.mu.Unlock()
			return
		}
		now := time.Now()
		overdue = overdue[:0]
		for _, e := range p.inflight {
			if e.sent && now.Sub(e.sentAt) >= p.ackTimeout {
				overdue = append(overdue, e)
			}
		}
		p.mu.Unlock()
		for _, e := range overdue {
			p.onErr(e, jetstream.ErrAsyncPublishTimeout)
		}
		select {
		case <-tick.C:
		case <-p.sweepWake:
		case <-p.stop:
		}
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
			p.sentLocked(e, now)
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
	p.unsubscribe()
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
	p.unsubscribe()
	// What still awaits an ack fails: it may or may not be stored.
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.inflight {
		p.failLocked(e, reason)
	}
}

// unsubscribe drops the inbox's subscription: later answers go nowhere.
func (p *Publisher) unsubscribe() {
	p.mu.Lock()
	sub := p.sub
	p.sub = nil
	p.mu.Unlock()
	if sub != nil {
		_ = sub.Unsubscribe()
	}
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
