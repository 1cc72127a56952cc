package queue

import (
	"testing"
	"time"
)

// A parked message waits in the stream on prefix.parked.<batch>, which no
// priority consumer delivers; parking the same delivery twice keeps one
// copy; ParkedMessages pages through them, DeleteParked removes them, and
// PurgeBatch (cancel) removes them with the batch's queued messages.
func TestParkKeepsTheMessageUndelivered(t *testing.T) {
	t.Parallel()
	b, cons := setupConsumer(t, Config{})
	ctx := testContext(t)
	src := NewSource(b.conn, cons)
	for i := range 5 {
		body := []byte(`{"batch":"pz","id":"` + string(rune('a'+i)) + `","prompt":"secret text"}`)
		for range 2 { // a redelivery parks the same delivery again
			if err := b.conn.Park(ctx, "pz", string(rune('a'+i)), uint64(100+i), body); err != nil {
				t.Fatal(err)
			}
		}
	}
	publishPriority(t, b.conn, "pz", "", 1) // one queued normally
	if got := fetchBatches(t, src, 10); len(got) != 1 {
		t.Fatalf("fetched %v: only the queued message, not the parked ones", got)
	}
	if ds, err := src.Fetch(ctx, 10, 200*time.Millisecond); err != nil || len(ds) != 0 {
		t.Fatalf("fetch after: %d deliveries, %v; the parked messages must not be delivered", len(ds), err)
	}

	first, err := b.conn.ParkedMessages(ctx, "pz", 0, 3)
	if err != nil || len(first) != 3 {
		t.Fatalf("ParkedMessages page 1 = %d, %v; want 3", len(first), err)
	}
	rest, err := b.conn.ParkedMessages(ctx, "pz", first[2].Seq, 10)
	if err != nil || len(rest) != 2 || rest[0].Seq <= first[2].Seq || string(rest[1].Data) != `{"batch":"pz","id":"e","prompt":"secret text"}` {
		t.Fatalf("ParkedMessages page 2 = %+v, %v; want the last 2 (no duplicate copies)", rest, err)
	}
	if err := b.conn.DeleteParked(ctx, []uint64{first[0].Seq, first[0].Seq}); err != nil {
		t.Fatal(err)
	}
	if left, _ := b.conn.ParkedMessages(ctx, "pz", 0, 10); len(left) != 4 {
		t.Fatalf("%d parked after deleting one, want 4", len(left))
	}
	publishPriority(t, b.conn, "other", "", 1)
	n, err := b.conn.PurgeBatch(ctx, "pz")
	if err != nil || n != 4 {
		t.Fatalf("PurgeBatch = %d, %v; want the 4 parked messages", n, err)
	}
	if got := streamMsgs(t, b.conn); got != 1 {
		t.Fatalf("%d messages left, want the other batch's 1", got)
	}
}
