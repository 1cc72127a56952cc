package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func setupConsumer(t testing.TB, cfg Config) (*testBundle, jetstream.Consumer) {
	t.Helper()
	b := setup(t, cfg)
	ctx := testContext(t)
	if _, err := b.conn.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	cons, err := b.conn.EnsureConsumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return b, cons
}

func TestFetchEmptyIsNotAnError(t *testing.T) {
	t.Parallel()
	b, cons := setupConsumer(t, Config{})
	ds, err := b.conn.Fetch(testContext(t), cons, 10, 200*time.Millisecond)
	if err != nil || len(ds) != 0 {
		t.Fatalf("Fetch = %d, %v", len(ds), err)
	}
	ds, err = b.conn.Fetch(testContext(t), cons, 10, 0) // no wait at all
	if err != nil || len(ds) != 0 {
		t.Fatalf("Fetch without wait = %d, %v", len(ds), err)
	}
}

func TestFetchReturnsAsSoonAsMessagesArrive(t *testing.T) {
	t.Parallel()
	b, cons := setupConsumer(t, Config{})
	pctx := testContext(t)
	// The publisher is owned by the test: the deliveries can all arrive
	// before the publisher has read its acks, and ending the test then would
	// cancel pctx under Wait.
	published := make(chan struct{})
	defer func() { <-published }()
	go func() {
		defer close(published)
		time.Sleep(200 * time.Millisecond)
		p := NewPublisher(b.conn, 10)
		for i := range 5 {
			if err := p.Publish(pctx, job("late", i)); err != nil {
				t.Errorf("Publish: %v", err)
			}
		}
		if _, err := p.Wait(pctx); err != nil {
			t.Errorf("Wait: %v", err)
		}
	}()
	start := time.Now()
	var got []Delivery
	for len(got) < 5 {
		ds, err := b.conn.Fetch(testContext(t), cons, 100, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ds...)
	}
	if waited := time.Since(start); waited > 20*time.Second {
		t.Fatalf("Fetch waited %s for messages published after 200ms", waited)
	}
	if len(got) != 5 {
		t.Fatalf("got %d deliveries, want 5", len(got))
	}
	// Nothing is stranded: all five were handed out and none is pending.
	for _, d := range got {
		_ = d.Ack()
	}
}

func TestFetchAckNakTerm(t *testing.T) {
	t.Parallel()
	b, cons := setupConsumer(t, Config{MaxDeliver: 3})
	ctx := testContext(t)
	publishN(t, b.conn, "acks", 3)

	ds := fetchN(t, ctx, b.conn, cons, 3)
	for i, d := range ds {
		if d.NumDelivered() != 1 || d.StreamSeq() != uint64(i+1) || d.Published().IsZero() {
			t.Fatalf("delivery %d: delivered %d seq %d", i, d.NumDelivered(), d.StreamSeq())
		}
	}
	if err := ds[0].Ack(); err != nil {
		t.Fatal(err)
	}
	if err := ds[1].NakWithDelay(500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := ds[2].TermWithReason("poison"); err != nil {
		t.Fatal(err)
	}

	// The nak'd message is not back before its delay.
	again, err := b.conn.Fetch(ctx, cons, 10, 100*time.Millisecond)
	if err != nil || len(again) != 0 {
		t.Fatalf("Fetch before the nak delay = %d, %v", len(again), err)
	}
	pending, ackPending, err := b.conn.Pending(ctx, cons)
	if err != nil || pending != 0 || ackPending != 1 {
		t.Fatalf("Pending = %d, %d, %v; want 0, 1", pending, ackPending, err)
	}

	// Second delivery after the delay; third after a plain Nak.
	for want := uint64(2); want <= 3; want++ {
		again, err = b.conn.Fetch(ctx, cons, 10, 5*time.Second)
		if err != nil || len(again) != 1 {
			t.Fatalf("redelivery %d: Fetch = %d, %v", want, len(again), err)
		}
		d := again[0]
		if d.NumDelivered() != want || d.MsgID() != ds[1].MsgID() || d.StreamSeq() != 2 {
			t.Fatalf("redelivery: delivered %d (want %d) id %s seq %d", d.NumDelivered(), want, d.MsgID(), d.StreamSeq())
		}
		if err := d.InProgress(); err != nil {
			t.Fatal(err)
		}
		if err := d.Nak(); err != nil {
			t.Fatal(err)
		}
	}

	// MaxDeliver reached: no more deliveries, and the consumer counts as idle.
	again, err = b.conn.Fetch(ctx, cons, 10, 300*time.Millisecond)
	if err != nil || len(again) != 0 {
		t.Fatalf("Fetch after MaxDeliver = %d, %v", len(again), err)
	}
	pending, ackPending, err = b.conn.Pending(ctx, cons)
	if err != nil || pending != 0 || ackPending != 0 {
		t.Fatalf("Pending after MaxDeliver = %d, %d, %v; want idle", pending, ackPending, err)
	}
}

func TestInProgressHoldsOffRedelivery(t *testing.T) {
	t.Parallel()
	b, cons := setupConsumer(t, Config{AckWait: time.Second})
	ctx := testContext(t)
	publishN(t, b.conn, "slow", 1)
	ds, err := b.conn.Fetch(ctx, cons, 1, time.Second)
	if err != nil || len(ds) != 1 {
		t.Fatalf("Fetch = %d, %v", len(ds), err)
	}
	// Heartbeats for 2.5 AckWaits: nobody else gets the message.
	for range 5 {
		time.Sleep(500 * time.Millisecond)
		if err := ds[0].InProgress(); err != nil {
			t.Fatal(err)
		}
	}
	if other, _ := b.conn.Fetch(ctx, cons, 1, 0); len(other) != 0 {
		t.Fatalf("redelivered despite InProgress heartbeats")
	}
	// Silence: redelivered after AckWait, as delivery 2.
	again, err := b.conn.Fetch(ctx, cons, 1, 5*time.Second)
	if err != nil || len(again) != 1 || again[0].NumDelivered() != 2 {
		t.Fatalf("redelivery = %d, %v", len(again), err)
	}
	if err := again[0].AckSync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := streamMsgs(t, b.conn); n != 0 {
		t.Fatalf("work queue still holds %d messages after ack", n)
	}
}

func TestFetchConsumerGone(t *testing.T) {
	t.Parallel()
	b, cons := setupConsumer(t, Config{})
	ctx := testContext(t)
	publishN(t, b.conn, "gone", 3)
	if err := b.conn.JetStream().DeleteConsumer(ctx, "PROMPTS", "workers"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.conn.Fetch(ctx, cons, 10, 500*time.Millisecond); !errors.Is(err, ErrConsumerGone) {
		t.Fatalf("Fetch on deleted consumer = %v, want ErrConsumerGone", err)
	}
	if _, _, err := b.conn.Pending(ctx, cons); !errors.Is(err, ErrConsumerGone) {
		t.Fatalf("Pending on deleted consumer = %v, want ErrConsumerGone", err)
	}
	// Recreating it resumes the work.
	cons, err := b.conn.EnsureConsumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fetchN(t, ctx, b.conn, cons, 3)

	// A deleted stream takes its consumer with it.
	if err := b.conn.JetStream().DeleteStream(ctx, "PROMPTS"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.conn.Fetch(ctx, cons, 10, 500*time.Millisecond); !errors.Is(err, ErrConsumerGone) {
		t.Fatalf("Fetch on deleted stream = %v, want ErrConsumerGone", err)
	}
}

func TestFetchAcrossServerRestart(t *testing.T) {
	t.Parallel()
	b, cons := setupConsumer(t, Config{})
	ctx := testContext(t)
	publishN(t, b.conn, "rs", 20)
	ds, err := b.conn.Fetch(ctx, cons, 5, time.Second)
	if err != nil || len(ds) != 5 {
		t.Fatalf("Fetch = %d, %v", len(ds), err)
	}
	for _, d := range ds {
		if err := d.AckSync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	b.srv.Restart()
	waitConnected(t, b.conn)
	seen := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for len(seen) < 15 && time.Now().Before(deadline) {
		ds, err := b.conn.Fetch(ctx, cons, 100, time.Second)
		if err != nil {
			t.Logf("Fetch after restart: %v", err) // transient while JetStream recovers
			continue
		}
		for _, d := range ds {
			seen[d.MsgID()] = true
			_ = d.AckSync(ctx)
		}
	}
	if len(seen) != 15 {
		t.Fatalf("after restart got %d of the 15 unacked messages", len(seen))
	}
}

// fetchN fetches until it has n deliveries. Fetch returns as soon as
// something is there, which may be before the consumer has all n ready.
func fetchN(t *testing.T, ctx context.Context, c *Conn, cons jetstream.Consumer, n int) []Delivery {
	t.Helper()
	var ds []Delivery
	for len(ds) < n {
		got, err := c.Fetch(ctx, cons, 10, time.Second)
		if err != nil || len(got) == 0 {
			t.Fatalf("Fetch = %d, %v after %d of %d deliveries", len(got), err, len(ds), n)
		}
		ds = append(ds, got...)
	}
	if len(ds) != n {
		t.Fatalf("got %d deliveries, want %d", len(ds), n)
	}
	return ds
}
