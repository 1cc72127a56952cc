package queue

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/promptcascade/promptcascade/internal/natstest"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

func TestPublishDeduplicates(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	if _, err := b.conn.EnsureStream(testContext(t)); err != nil {
		t.Fatal(err)
	}
	st := publishN(t, b.conn, "dedupe", 1000)
	if st != (Stats{Published: 1000}) {
		t.Fatalf("first run %+v", st)
	}
	if n := streamMsgs(t, b.conn); n != 1000 {
		t.Fatalf("stream has %d messages, want 1000", n)
	}
	st = publishN(t, b.conn, "dedupe", 1000)
	if st != (Stats{Duplicates: 1000}) {
		t.Fatalf("second run %+v", st)
	}
	if n := streamMsgs(t, b.conn); n != 1000 {
		t.Fatalf("stream has %d messages after re-publish, want 1000", n)
	}

	// The message is the job as JSON, with the Msg-Id header, on prompts.<batch>.
	cons, err := b.conn.EnsureConsumer(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := b.conn.Fetch(testContext(t), cons, 1, time.Second)
	if err != nil || len(ds) != 1 {
		t.Fatalf("Fetch = %d, %v", len(ds), err)
	}
	got, err := DecodeJob(ds[0].Data(), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := job("dedupe", 0)
	if got.BatchID != want.BatchID || got.ID != want.ID || got.Prompt != want.Prompt || !got.EnqueuedAt.Equal(want.EnqueuedAt) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	if ds[0].Subject() != "prompts.dedupe" || ds[0].MsgID() != "dedupe/p000000" {
		t.Fatalf("subject %q msg id %q", ds[0].Subject(), ds[0].MsgID())
	}
}

func TestPublishRejectsBadJobs(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{}, natstest.WithMaxPayload(4096))
	if _, err := b.conn.EnsureStream(testContext(t)); err != nil {
		t.Fatal(err)
	}
	p := NewPublisher(b.conn, 10)
	ctx := testContext(t)
	bad := job("bad.batch", 1)
	if err := p.Publish(ctx, bad); !errors.Is(err, ErrInvalidBatchName) {
		t.Errorf("bad batch: %v", err)
	}
	bad = job("b", 1)
	bad.ID = "x\ny"
	if err := p.Publish(ctx, bad); !errors.Is(err, ErrInvalidJobID) {
		t.Errorf("bad id: %v", err)
	}
	big := job("b", 2)
	big.Prompt = strings.Repeat("word ", 1000)
	if err := p.Publish(ctx, big); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("big job: %v", err)
	}
	if err := p.Publish(ctx, job("b", 3)); err != nil {
		t.Errorf("good job: %v", err)
	}
	st, err := p.Wait(ctx)
	if err != nil || st != (Stats{Published: 1}) {
		t.Fatalf("Wait = %+v, %v", st, err)
	}
}

func TestPublishPermanentFailureIsReported(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	s, err := b.conn.EnsureStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgSize = 300 // smaller than a big job, larger than a small one
	if _, err := b.conn.JetStream().UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	p := NewPublisher(b.conn, 10)
	big := job("perm", 1)
	big.Prompt = strings.Repeat("x", 400)
	for _, j := range []prompt.Job{job("perm", 0), big, job("perm", 2)} {
		if err := p.Publish(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	st, err := p.Wait(ctx)
	if st != (Stats{Published: 2, Failed: 1}) {
		t.Fatalf("stats %+v", st)
	}
	var pe *PublishError
	if !errors.As(err, &pe) || pe.MsgID != "perm/p000001" || !errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum) {
		t.Fatalf("Wait error %v, want a PublishError for perm/p000001", err)
	}
}

// A full stream (DiscardNew) makes the publisher wait and retry, not drop:
// once a consumer drains the stream every job arrives exactly once.
func TestPublishBackpressureWhenStreamFull(t *testing.T) {
	t.Parallel()
	const total, limit = 600, 50
	b := setup(t, Config{MaxMsgs: limit})
	ctx := testContext(t)
	if _, err := b.conn.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	cons, err := b.conn.EnsureConsumer(ctx)
	if err != nil {
		t.Fatal(err)
	}

	p := NewPublisher(b.conn, 100)
	var published atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := range total {
			if err := p.Publish(ctx, job("full", i)); err != nil {
				done <- err
				return
			}
			published.Add(1)
		}
		_, err := p.Wait(ctx)
		done <- err
	}()

	// Without a consumer the stream fills up and the producer blocks.
	deadline := time.Now().Add(20 * time.Second)
	for streamMsgs(t, b.conn) < limit || p.Stats().Retried == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("stream never filled: %d msgs, stats %+v", streamMsgs(t, b.conn), p.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// While full, one message at a time probes the stream, with backoff:
	// the 100 waiting messages are not re-sent over and over.
	r0 := p.Stats().Retried
	time.Sleep(time.Second)
	if r := p.Stats().Retried - r0; r > 15 {
		t.Errorf("%d re-sends in one second against a full stream; want a few probes", r)
	}
	if n := published.Load(); n >= total {
		t.Fatalf("producer was not pushed back: %d accepted with a %d-message stream", n, limit)
	}
	if n := streamMsgs(t, b.conn); n != limit {
		t.Fatalf("stream has %d messages, limit %d", n, limit)
	}
	if !strings.Contains(b.logs.String(), "stream is full") {
		t.Errorf("no 'stream is full' warning in logs")
	}

	// Drain: every job arrives once.
	seen := map[string]int{}
	for len(seen) < total {
		ds, err := b.conn.Fetch(ctx, cons, 25, time.Second)
		if err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		for _, d := range ds {
			seen[d.MsgID()]++
			if err := d.Ack(); err != nil {
				t.Fatal(err)
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("timed out with %d of %d", len(seen), total)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("producer: %v", err)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	st := p.Stats()
	if st.Published+st.Duplicates != total || st.Failed != 0 || st.Retried == 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A broker restart in the middle of a publish loses nothing and stores
// nothing twice.
func TestPublishSurvivesServerRestart(t *testing.T) {
	t.Parallel()
	const total = 5000
	b := setup(t, Config{PublishAckTimeout: 2 * time.Second})
	ctx := testContext(t)
	if _, err := b.conn.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	p := NewPublisher(b.conn, 256)
	var restart sync.Once
	for i := range total {
		if i == total/3 {
			// Some acks are still outstanding when the server goes away,
			// and it stays away for a while.
			restart.Do(func() {
				go func() {
					b.srv.Shutdown()
					time.Sleep(time.Second)
					b.srv.Restart()
				}()
			})
		}
		if err := p.Publish(ctx, job("restart", i)); err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
	}
	st, err := p.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v (stats %+v)", err, st)
	}
	if st.Published+st.Duplicates != total || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("restart mid-publish: %+v", st)
	if !strings.Contains(b.logs.String(), "reconnected to nats-server") {
		t.Errorf("no reconnect in logs; did the restart happen mid-publish?")
	}

	if n := streamMsgs(t, b.conn); n != total {
		t.Fatalf("stream has %d messages, want %d", n, total)
	}
	cons, err := b.conn.EnsureConsumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]bool, total)
	for len(seen) < total {
		ds, err := b.conn.Fetch(ctx, cons, 500, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			break
		}
		for _, d := range ds {
			if seen[d.MsgID()] {
				t.Fatalf("%s stored twice", d.MsgID())
			}
			seen[d.MsgID()] = true
			_ = d.Ack()
		}
	}
	if len(seen) != total {
		t.Fatalf("%d distinct jobs in the stream, want %d", len(seen), total)
	}
}

// Wait gives up when its context ends: what is not confirmed counts as
// failed, no goroutine is left behind (TestMain checks), and the publisher
// refuses more work.
func TestPublishWaitGivesUp(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxMsgs: 5})
	ctx := testContext(t)
	if _, err := b.conn.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	p := NewPublisher(b.conn, 50)
	for i := range 20 {
		if err := p.Publish(ctx, job("giveup", i)); err != nil {
			t.Fatal(err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	st, err := p.Wait(wctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want deadline exceeded", err)
	}
	if st.Published != 5 || st.Failed != 15 {
		t.Fatalf("stats %+v, want 5 published and 15 failed", st)
	}
	if err := p.Publish(ctx, job("giveup", 99)); !errors.Is(err, ErrPublisherClosed) {
		t.Fatalf("Publish after give-up = %v", err)
	}
}

// With no stream listening, jobs fail after the give-up time instead of
// spinning forever.
func TestPublishWithoutStreamFails(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	p := NewPublisher(b.conn, 10)
	p.noStream = 300 * time.Millisecond
	if err := p.Publish(ctx, job("nostream", 1)); err != nil {
		t.Fatal(err)
	}
	st, err := p.Wait(ctx)
	if st.Failed != 1 || !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Fatalf("Wait = %+v, %v", st, err)
	}
	if !strings.Contains(err.Error(), "PROMPTS") {
		t.Errorf("message %q should name the stream", err)
	}
}

func TestPublishCanceledWhileBlocked(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxMsgs: 1})
	ctx := testContext(t)
	if _, err := b.conn.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	// One job fills the stream, the next two hold both slots while they
	// wait for room, and the fourth cannot be accepted.
	p := NewPublisher(b.conn, 2)
	for i := range 3 {
		if err := p.Publish(ctx, job("blocked", i)); err != nil {
			t.Fatal(err)
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := p.Publish(pctx, job("blocked", 3)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish while full = %v, want deadline exceeded", err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer wcancel()
	if _, err := p.Wait(wctx); err == nil {
		t.Fatal("Wait succeeded with a full stream")
	}
}

// The prompt-size rule counts what the server counts against max_payload: a
// job whose MessageSize is the limit exactly is stored; one byte more is a
// *TooLargeError before anything is sent.
func TestMessageSizeIsWhatTheServerCounts(t *testing.T) {
	t.Parallel()
	const maxPayload = 4096
	b := setup(t, Config{}, natstest.WithMaxPayload(maxPayload))
	ctx := testContext(t)
	if _, err := b.conn.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.conn.MessageLimit(); got != maxPayload {
		t.Fatalf("MessageLimit = %d, want the server's max_payload %d", got, maxPayload)
	}
	sized := func(i, size int) prompt.Job {
		j := job("size", i)
		j.Prompt = ""
		m, err := EncodeJob(j, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		j.Prompt = strings.Repeat("x", size-m.Size())
		return j
	}
	p := NewPublisher(b.conn, 10)
	if err := p.Publish(ctx, sized(1, maxPayload)); err != nil {
		t.Fatalf("a message of exactly max_payload: %v", err)
	}
	err := p.Publish(ctx, sized(2, maxPayload+1))
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Size != maxPayload+1 || tl.Limit != maxPayload || !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("one byte over: %v", err)
	}
	st, err := p.Wait(ctx)
	if err != nil || st.Published != 1 || st.Failed != 0 {
		t.Fatalf("Wait = %+v, %v; want the exact-size message stored", st, err)
	}
	cons, err := b.conn.EnsureConsumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := b.conn.Fetch(ctx, cons, 10, 2*time.Second)
	if err != nil || len(ds) != 1 {
		t.Fatalf("fetch: %d deliveries, %v", len(ds), err)
	}
	// The worker applies the same rule: the stored message decodes at the
	// limit and is a bad message under it.
	if _, err := DecodeJob(ds[0].Data(), maxPayload); err != nil {
		t.Errorf("DecodeJob at the limit: %v", err)
	}
	if _, err := DecodeJob(ds[0].Data(), maxPayload-1); !errors.Is(err, ErrBadMessage) || !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("DecodeJob one byte under: %v", err)
	}
	_ = ds[0].Ack()
}

// A limit above the server's max_payload is refused at connect, naming both.
func TestConnectRefusesALimitOverMaxPayload(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, natstest.WithMaxPayload(4096))
	_, err := Connect(testContext(t), Config{URL: srv.URL(), MaxMessageBytes: 8192}, nil)
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != 8192 || le.MaxPayload != 4096 ||
		!strings.Contains(err.Error(), "8192") || !strings.Contains(err.Error(), "4096") || !strings.Contains(err.Error(), "MAX_PROMPT_BYTES") {
		t.Fatalf("Connect = %v; want a *LimitError naming 8192 and 4096", err)
	}
	c, err := Connect(testContext(t), Config{URL: srv.URL(), MaxMessageBytes: 2048}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.MessageLimit() != 2048 {
		t.Errorf("MessageLimit = %d, want the setting 2048", c.MessageLimit())
	}
}

// An ack that does not come within PublishAckTimeout fails that attempt,
// and the message is sent again: here a plain subscriber takes the
// messages and answers none (no stream yet), then the stream appears and
// stores every message once.
func TestPublishResendsWhenTheAckIsOverdue(t *testing.T) {
	t.Parallel()
	const total = 20
	b := setup(t, Config{PublishAckTimeout: 200 * time.Millisecond})
	ctx := testContext(t)
	var swallowed atomic.Int64
	sink, err := b.conn.nc.Subscribe(b.conn.cfg.SubjectPrefix+".>", func(*nats.Msg) { swallowed.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	p := NewPublisher(b.conn, total)
	for i := range total {
		if err := p.Publish(ctx, job("overdue", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Every message sent at least twice: one timeout each at least.
	for swallowed.Load() < 2*total {
		select {
		case <-ctx.Done():
			t.Fatalf("%d sends in all, want %d: overdue acks are not re-sent", swallowed.Load(), 2*total)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := sink.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.conn.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := p.Wait(ctx)
	if err != nil || st.Published != total || st.Duplicates != 0 || st.Failed != 0 || st.Retried < total {
		t.Fatalf("Wait = %+v, %v; want %d published after at least %d re-sends", st, err, total, total)
	}
	if n := streamMsgs(t, b.conn); n != total {
		t.Fatalf("stream has %d messages, want %d", n, total)
	}
}

// BarePublish (bench/ceiling's reference) stores every message it is
// given, once, and returns the error of a message it could not make.
func TestBarePublish(t *testing.T) {
	t.Parallel()
	const total = 300
	b := setup(t, Config{})
	ctx := testContext(t)
	if _, err := b.conn.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	msg := func(i int) (Message, error) { return EncodeJob(job("bare", i), b.conn.MessageLimit()) }
	if err := b.conn.BarePublish(ctx, total, 64, msg); err != nil {
		t.Fatal(err)
	}
	// Again: the same Msg-Ids, all duplicates.
	if err := b.conn.BarePublish(ctx, total, 64, msg); err != nil {
		t.Fatal(err)
	}
	if n := streamMsgs(t, b.conn); n != total {
		t.Fatalf("stream has %d messages, want %d", n, total)
	}
	boom := errors.New("no message 7")
	err := b.conn.BarePublish(ctx, total, 64, func(i int) (Message, error) {
		if i == 7 {
			return Message{}, boom
		}
		return msg(i)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the message's own", err)
	}
}
