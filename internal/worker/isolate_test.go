package worker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/store"
	"github.com/promptcascade/promptcascade/internal/worker"
	"github.com/promptcascade/promptcascade/internal/worker/workertest"
)

// answerAll is a Runner whose every prompt is answered at once.
type answerAll struct{ calls atomic.Int64 }

func (r *answerAll) Run(_ context.Context, job prompt.Job, _ prompt.Tier, _ prompt.Signals, _ int) cascade.Outcome {
	r.calls.Add(1)
	return cascade.Outcome{Result: prompt.Result{Status: prompt.StatusSucceeded, ModelUsed: "fake/a", Response: "answer to " + job.ID}}
}

// errRowTooLong stands for a permanent database error about one row (a
// constraint, a value Postgres refuses): not store.IsTransient.
var errRowTooLong = errors.New("value too long for type character varying(256)")

type isolateBundle struct {
	src    *workertest.Source
	st     *workertest.Store
	runner *answerAll
	seqs   map[string]uint64 // prompt id -> stream sequence
}

func isolateSetup(t *testing.T, n int) *isolateBundle {
	t.Helper()
	b := &isolateBundle{src: workertest.NewSource(), st: workertest.NewStore(), runner: &answerAll{}, seqs: map[string]uint64{}}
	for i := 1; i <= n; i++ {
		id := fmt.Sprint(i)
		seq, err := b.src.PublishJob(prompt.Job{BatchID: "iso", ID: id, Prompt: "What is " + id + " plus " + id + "?"})
		if err != nil {
			t.Fatal(err)
		}
		b.seqs[id] = seq
	}
	return b
}

func (b *isolateBundle) run(t *testing.T) worker.Stats {
	t.Helper()
	w := worker.New(worker.Config{WorkerID: "iso", Concurrency: 8, ExitWhenIdle: true, FetchMaxWait: 10 * time.Millisecond,
		CommitInterval: 50 * time.Millisecond, NakBase: time.Millisecond},
		b.src, b.st, classify.Default(), b.runner, testLog(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if b.src.Left() != 0 {
		t.Fatalf("%d messages left in the source after Run", b.src.Left())
	}
	return w.Stats()
}

// failRow fails every write that contains prompt id with errRowTooLong.
func failRow(id string) func([]prompt.Result) error {
	return func(rs []prompt.Result) error {
		if slices.ContainsFunc(rs, func(r prompt.Result) bool { return r.Job.ID == id }) {
			return errRowTooLong
		}
		return nil
	}
}

// TestIsolateDeadLettersTheRowThatCannotBeStored: a commit that fails with
// a permanent error is written one prompt at a time; the prompts that store
// are acked, the one that cannot is dead-lettered with the reason and
// termed. Nothing is lost, nothing is paid for twice.
func TestIsolateDeadLettersTheRowThatCannotBeStored(t *testing.T) {
	t.Parallel()
	b := isolateSetup(t, 6)
	b.st.FailWrite = failRow("3")
	s := b.run(t)

	results := b.st.Results()
	for id, seq := range b.seqs {
		_, stored := results[store.Key{BatchID: "iso", PromptID: id}]
		h := b.src.History(seq)
		switch {
		case id == "3" && (stored || !slices.Equal(h, []workertest.Settlement{workertest.Termed})):
			t.Errorf("prompt 3: stored %v, settled %v; want not stored, termed once", stored, h)
		case id != "3" && (!stored || !slices.Equal(h, []workertest.Settlement{workertest.Acked})):
			t.Errorf("prompt %s: stored %v, settled %v; want stored, acked once", id, stored, h)
		}
	}
	dead := b.st.DeadLettered()
	if len(dead) != 1 || dead[0].StreamSeq != b.seqs["3"] || !strings.HasPrefix(dead[0].Error, "storing result: "+errRowTooLong.Error()) ||
		!strings.Contains(string(dead[0].Payload), `"id":"3"`) {
		t.Fatalf("dead letters = %+v; want prompt 3's message with the storing error", dead)
	}
	if s.Succeeded != 5 || s.DeadLettered != 1 || s.CommitErrors == 0 || s.Naked != 0 {
		t.Errorf("stats = %+v; want 5 succeeded, 1 dead-lettered, the failed commit counted, nothing handed back", s)
	}
	if n := b.runner.calls.Load(); n != 6 {
		t.Errorf("%d model calls for 6 prompts", n)
	}
}

// TestIsolateHandsBackWhatItCannotDeadLetter: when the dead letter cannot
// be written either, the delivery is handed back (naked), not dropped; the
// next delivery goes the same way and, once dead letters can be written,
// ends as a dead letter.
func TestIsolateHandsBackWhatItCannotDeadLetter(t *testing.T) {
	t.Parallel()
	b := isolateSetup(t, 3)
	b.st.FailWrite = failRow("2")
	var dlFailures atomic.Int64
	b.st.FailDeadLetters = func([]store.DeadLetter) error {
		if dlFailures.Add(1) == 1 {
			return errors.New("dead_letters: disk full")
		}
		return nil
	}
	s := b.run(t)

	if h := b.src.History(b.seqs["2"]); !slices.Equal(h, []workertest.Settlement{workertest.Naked, workertest.Termed}) {
		t.Errorf("prompt 2 settled %v; want naked (dead letter not written), then termed", h)
	}
	for _, id := range []string{"1", "3"} {
		if h := b.src.History(b.seqs[id]); !slices.Equal(h, []workertest.Settlement{workertest.Acked}) {
			t.Errorf("prompt %s settled %v; want acked once", id, h)
		}
	}
	if dead := b.st.DeadLettered(); len(dead) != 1 || dead[0].StreamSeq != b.seqs["2"] {
		t.Errorf("dead letters = %+v; want prompt 2's once", dead)
	}
	if s.DeadLettered != 1 || s.Succeeded != 2 {
		t.Errorf("stats = %+v", s)
	}
}

// TestIsolateNeverTermsAnUnrecordedPoisonMessage: a poison message whose
// dead letter fails with a permanent error is handed back, never termed
// unrecorded.
func TestIsolateNeverTermsAnUnrecordedPoisonMessage(t *testing.T) {
	t.Parallel()
	b := &isolateBundle{src: workertest.NewSource(), st: workertest.NewStore(), runner: &answerAll{}, seqs: map[string]uint64{}}
	poison := b.src.Publish("prompts.iso", []byte("not json"))
	var dlFailures atomic.Int64
	b.st.FailDeadLetters = func([]store.DeadLetter) error {
		if dlFailures.Add(1) <= 2 {
			return errRowTooLong
		}
		return nil
	}
	b.run(t)
	h := b.src.History(poison)
	if len(h) == 0 || h[len(h)-1] != workertest.Termed || slices.Contains(h[:len(h)-1], workertest.Termed) {
		t.Fatalf("poison message settled %v; want naked until its dead letter was stored, then termed", h)
	}
	if dead := b.st.DeadLettered(); len(dead) != 1 || dead[0].StreamSeq != poison {
		t.Fatalf("dead letters = %+v", dead)
	}
	if b.runner.calls.Load() != 0 {
		t.Error("a model was called for a poison message")
	}
}

// TestIsolateWithPostgresRefusingARow is the isolate path on the real
// services, beside the in-memory tests above: Postgres itself refuses one
// prompt's result permanently (a check constraint, SQLSTATE 23514), so the
// batch that holds it fails; the worker writes the batch again one prompt
// at a time, stores and acks the others, and dead-letters and terms the
// one Postgres refuses. Every prompt reaches the model once.
func TestIsolateWithPostgresRefusingARow(t *testing.T) {
	b := setup(t, queue.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := connect(t, b.dsn)
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `ALTER TABLE results ADD CONSTRAINT refuse_iso_3 CHECK (NOT (batch_id = 'iso' AND prompt_id = '3'))`); err != nil {
		t.Fatal(err)
	}
	jobs := b.publish("iso", 6)
	b.cfg.CommitInterval = time.Second // the six answers wait for one another: one batch
	var logs syncBuf
	w := worker.New(b.cfg, queue.NewSource(b.qc, b.cons), b.st, classify.Default(), b.cascade,
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err := w.Run(ctx); err != nil {
		t.Fatalf("Run: %v\n%s", err, logs.String())
	}

	if got := strings.Join(queryIDs(t, conn, `SELECT prompt_id FROM results WHERE batch_id = 'iso' ORDER BY 1`), ","); got != "0,1,2,4,5" {
		t.Errorf("results hold %s; want every prompt but 3", got)
	}
	var payloads, reasons []string
	rows, err := conn.Query(ctx, `SELECT convert_from(payload, 'UTF8'), error FROM dead_letters ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var payload, reason string
		if err := rows.Scan(&payload, &reason); err != nil {
			t.Fatal(err)
		}
		payloads, reasons = append(payloads, payload), append(reasons, reason)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(payloads) != 1 || !strings.Contains(payloads[0], `"id":"3"`) ||
		!strings.HasPrefix(reasons[0], "storing result: ") || !strings.Contains(reasons[0], "refuse_iso_3") {
		t.Fatalf("dead letters: payloads %q, reasons %q; want prompt 3's message, refused by refuse_iso_3", payloads, reasons)
	}
	if !strings.Contains(logs.String(), "commit failed with a permanent error; writing one by one") {
		t.Errorf("the commit never failed permanently: the test did not reach isolate\n%s", logs.String())
	}
	if s := w.Stats(); s.Succeeded != 5 || s.DeadLettered != 1 || s.Naked != 0 || s.CommitErrors == 0 {
		t.Errorf("stats = %+v; want 5 succeeded, 1 dead-lettered, nothing handed back, the failed commit counted", s)
	}
	info, err := b.cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumPending != 0 || info.NumAckPending != 0 {
		t.Errorf("consumer: %d pending, %d ack pending; want every message settled", info.NumPending, info.NumAckPending)
	}
	for _, j := range jobs {
		if n := b.provider.callsFor(j.Prompt); n != 1 {
			t.Errorf("prompt %s reached the model %d times, want 1", j.ID, n)
		}
	}
}

// queryIDs runs a query that returns one text column.
func queryIDs(t *testing.T, conn *pgx.Conn, q string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}
