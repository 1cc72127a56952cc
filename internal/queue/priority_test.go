package queue

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func publishPriority(t *testing.T, c *Conn, batch, priority string, n int) {
	t.Helper()
	ctx := testContext(t)
	p := NewPublisher(c, 1024)
	for i := range n {
		j := job(batch, i)
		j.Priority = priority
		if err := p.Publish(ctx, j); err != nil {
			t.Fatalf("Publish %s %d: %v", batch, i, err)
		}
	}
	if _, err := p.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

// fetchBatches fetches up to n deliveries, acks them and returns the batch
// of each, in order.
func fetchBatches(t *testing.T, src *Source, n int) []string {
	t.Helper()
	ds, err := src.Fetch(testContext(t), n, 300*time.Millisecond)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	var out []string
	for _, d := range ds {
		var j struct {
			Batch string `json:"batch"`
		}
		if err := json.Unmarshal(d.Data(), &j); err != nil {
			t.Fatal(err)
		}
		out = append(out, j.Batch)
		if err := d.Ack(); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
	return out
}

func count(bs []string) map[string]int {
	m := map[string]int{}
	for _, b := range bs {
		m[b]++
	}
	return m
}

// A high batch published after a queue of normal and low prompts is
// fetched first; low comes only when normal has nothing left. The subjects
// are prompts.<batch> (normal, unchanged), prompts.high.<batch> and
// prompts.low.<batch>; a batch named "high" stays normal.
func TestFetchTakesHighThenNormalThenLow(t *testing.T) {
	t.Parallel()
	b, cons := setupConsumer(t, Config{})
	ctx := testContext(t)
	src := NewSource(b.conn, cons)
	publishN(t, b.conn, "bulk", 20)
	publishN(t, b.conn, "high", 2) // a normal batch that happens to be called high
	publishPriority(t, b.conn, "later", PriorityLow, 3)
	publishPriority(t, b.conn, "urgent", PriorityHigh, 4)

	s, err := b.conn.JetStream().Stream(ctx, "PROMPTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("prompts.>"))
	if err != nil {
		t.Fatal(err)
	}
	for subj, want := range map[string]uint64{"prompts.bulk": 20, "prompts.high": 2, "prompts.low.later": 3, "prompts.high.urgent": 4} {
		if got := info.State.Subjects[subj]; got != want {
			t.Errorf("%s holds %d messages, want %d (all: %v)", subj, got, want, info.State.Subjects)
		}
	}

	// The server acks a publish before it tells the consumers (on a
	// goroutine of its own, nats-server's signalConsumersLoop), and a
	// no-wait fetch of a consumer not yet told finds nothing: under load,
	// the first fetch took six normal before the high consumer knew of its
	// 4 (1 of 20 runs of go test -count=20 at load 35). Fetch once every
	// consumer counts what was published.
	want := map[string]uint64{PriorityHigh: 4, PriorityNormal: 22, PriorityLow: 3}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ps, err := src.PendingByPriority(ctx)
		told := err == nil && len(ps) == len(want)
		for _, p := range ps {
			told = told && p.Pending == want[p.Priority]
		}
		if told {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PendingByPriority = %+v, %v after 10s; want %v", ps, err, want)
		}
	}

	if got := count(fetchBatches(t, src, 6)); got["urgent"] != 4 || got["later"] != 0 || got["bulk"]+got["high"] != 2 {
		t.Fatalf("first fetch of 6 = %v, want the 4 urgent and 2 normal", got)
	}
	if got := count(fetchBatches(t, src, 19)); got["bulk"]+got["high"] != 19 || got["later"] != 0 {
		t.Fatalf("second fetch of 19 = %v, want 19 of the 20 normal left and no low", got)
	}
	// Slots left over once normal is empty go to low.
	if got := count(fetchBatches(t, src, 100)); got["bulk"]+got["high"] != 1 || got["later"] != 3 {
		t.Fatalf("third fetch = %v, want the last normal and the 3 low", got)
	}
	// The server processes an ack after Ack has returned: a Pending read at
	// once could still count it (under load: ack pending 21 of the 29 acked).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		pending, ack, err := src.Pending(ctx)
		if err == nil && pending == 0 && ack == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Pending = %d, %d, %v after 10s; want 0, 0", pending, ack, err)
		}
	}
}

// Purging and reading a batch covers its subject of every priority.
func TestPurgeAndReadBatchCoverEveryPriority(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	if _, err := b.conn.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.conn.EnsureConsumer(ctx); err != nil {
		t.Fatal(err)
	}
	publishPriority(t, b.conn, "mixed", PriorityHigh, 3)
	// ids 0 and 1 again, as normal: the same Nats-Msg-Id, so dropped as
	// duplicates whatever the subject.
	publishPriority(t, b.conn, "mixed", "", 2)
	p := NewPublisher(b.conn, 1)
	j := job("mixed", 7)
	j.Priority = PriorityLow
	if err := p.Publish(ctx, j); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	publishPriority(t, b.conn, "other", PriorityHigh, 2)
	bq, err := b.conn.ReadBatch(ctx, "mixed", 100)
	if err != nil {
		t.Fatal(err)
	}
	if bq.Messages != 4 || !bq.Scanned || len(bq.IDs) != 4 || bq.ConsumerIdle {
		t.Fatalf("ReadBatch = %+v, want 4 messages scanned (3 high, 1 low), consumers not idle", bq)
	}
	n, err := b.conn.PurgeBatch(ctx, "mixed")
	if err != nil || n != 4 {
		t.Fatalf("PurgeBatch = %d, %v; want 4", n, err)
	}
	if got := streamMsgs(t, b.conn); got != 2 {
		t.Fatalf("%d messages left, want the other batch's 2", got)
	}
}
