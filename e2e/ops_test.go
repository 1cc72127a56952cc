package e2e

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// opsRun runs a binary and returns its combined output and exit status.
func (b *bundle) opsRun(t *testing.T, ctx context.Context, name string, env []string, args ...string) (string, int) {
	t.Helper()
	c := b.cmd(ctx, name, env, args...)
	out, err := c.CombinedOutput()
	if c.ProcessState == nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out), c.ProcessState.ExitCode()
}

// opsCtl runs cascadectl and fails the test unless it exits with want.
func (b *bundle) opsCtl(t *testing.T, ctx context.Context, want int, args ...string) string {
	t.Helper()
	out, code := b.opsRun(t, ctx, "cascadectl", nil, args...)
	if code != want {
		t.Fatalf("cascadectl %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
	}
	return out
}

// opsWork runs one worker until the consumer is idle.
func (b *bundle) opsWork(t *testing.T, ctx context.Context) {
	t.Helper()
	out, code := b.opsRun(t, ctx, "worker", []string{"WORKER_EXIT_WHEN_IDLE=true", "WORKER_CONCURRENCY=16"})
	if code != 0 {
		t.Fatalf("worker: exit %d\n%s", code, out)
	}
}

func (b *bundle) opsEnqueue(t *testing.T, ctx context.Context, batch string, lines ...string) {
	t.Helper()
	file := writeFile(t, batch+".jsonl", strings.Join(lines, "\n")+"\n")
	out, code := b.opsRun(t, ctx, "enqueue", nil, "--quiet", "--batch", batch, file)
	if code != 0 {
		t.Fatalf("enqueue: exit %d\n%s", code, out)
	}
}

// opsStream connects to the test's nats-server and returns the PROMPTS stream.
func (b *bundle) opsStream(t *testing.T, ctx context.Context) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	nc, err := nats.Connect(b.nats.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "PROMPTS")
	if err != nil {
		t.Fatal(err)
	}
	return js, s
}

func (b *bundle) opsDB(t *testing.T, ctx context.Context) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func opsQueryInt(t *testing.T, ctx context.Context, conn *pgx.Conn, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func streamMsgs(t *testing.T, ctx context.Context, s jetstream.Stream) uint64 {
	t.Helper()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

type dlqJSON struct {
	ID           int64      `json:"id"`
	StreamSeq    uint64     `json:"stream_seq"`
	Subject      string     `json:"subject"`
	Error        string     `json:"error"`
	ReplayedAt   *time.Time `json:"replayed_at"`
	PayloadBytes int        `json:"payload_bytes"`
	Preview      string     `json:"preview"`
}

func (b *bundle) opsDLQ(t *testing.T, ctx context.Context, args ...string) []dlqJSON {
	t.Helper()
	out := b.opsCtl(t, ctx, 0, append([]string{"dlq", "list", "--format", "jsonl"}, args...)...)
	var rows []dlqJSON
	for l := range strings.Lines(out) {
		var r dlqJSON
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("dlq list line %q: %v", l, err)
		}
		rows = append(rows, r)
	}
	return rows
}

// Poison messages are listed, a fixed payload is replayed and answered, a
// dry run publishes nothing, a replay that is still poison dead-letters
// again, and a subject outside the prefix is refused.
func TestOpsDLQListAndReplay(t *testing.T) {
	b := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	b.opsEnqueue(t, ctx, "ops",
		`{"id":"a","prompt":"What is the capital of France?"}`,
		`{"id":"b","prompt":"Explain how a hash map works"}`,
		`{"id":"c","prompt":"Name three primary colours"}`)
	js, stream := b.opsStream(t, ctx)
	// c is replaced on the stream by a copy the worker must refuse (negative
	// max_tokens): enqueue recorded c, so verify expects its answer.
	seqOf := opsFindSeq(t, ctx, stream, "prompts.ops", "c")
	if err := stream.DeleteMsg(ctx, seqOf); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		`{"batch":"ops","id":"c","prompt":"Name three primary colours","max_tokens":-5}`,
		"not json \x1b[31m\xff",
	} {
		if _, err := js.Publish(ctx, "prompts.ops", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	b.opsWork(t, ctx)

	out := b.opsCtl(t, ctx, 1, "verify", "ops")
	if !regexp.MustCompile(`dead-lettered\s+1\b`).MatchString(out) || !regexp.MustCompile(`lost\s+0\b`).MatchString(out) {
		t.Fatalf("verify with a dead-lettered prompt:\n%s", out)
	}

	table := b.opsCtl(t, ctx, 0, "dlq", "list")
	if !strings.Contains(table, "max_tokens -5 is negative") || !strings.Contains(table, `not json \u001b[31m\xff`) ||
		strings.Contains(table, "\x1b") || !strings.HasPrefix(table, "id  ") {
		t.Fatalf("dlq list table:\n%q", table)
	}
	rows := b.opsDLQ(t, ctx)
	if len(rows) != 2 || rows[0].Subject != "prompts.ops" || rows[0].ReplayedAt != nil || rows[1].PayloadBytes != len("not json \x1b[31m\xff") {
		t.Fatalf("dlq list jsonl: %+v", rows)
	}
	poisonC, notJSON := rows[0], rows[1]

	fixed := writeFile(t, "fixed.json", `{"batch":"ops","id":"c","prompt":"Name three primary colours","max_tokens":64}`+"\n")
	before := streamMsgs(t, ctx, stream)
	out = b.opsCtl(t, ctx, 0, "dlq", "replay", "--id", strconv.FormatInt(poisonC.ID, 10), "--payload-file", fixed, "--dry-run")
	if !strings.Contains(out, "would publish") || !strings.Contains(out, "nothing published") {
		t.Fatalf("dry run:\n%s", out)
	}
	if after := streamMsgs(t, ctx, stream); after != before {
		t.Fatalf("dry run changed the stream: %d messages, was %d", after, before)
	}
	if rows := b.opsDLQ(t, ctx); len(rows) != 2 {
		t.Fatalf("dry run marked rows replayed: %+v", rows)
	}

	out = b.opsCtl(t, ctx, 0, "dlq", "replay", "--id", strconv.FormatInt(poisonC.ID, 10), "--payload-file", fixed)
	if !strings.Contains(out, "replayed to prompts.ops") || !strings.Contains(out, "replayed 1 dead letter(s)") {
		t.Fatalf("replay:\n%s", out)
	}
	if rows := b.opsDLQ(t, ctx); len(rows) != 1 || rows[0].ID != notJSON.ID {
		t.Fatalf("after replay, not replayed: %+v", rows)
	}
	b.opsWork(t, ctx)
	conn := b.opsDB(t, ctx)
	if n := opsQueryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'ops' AND prompt_id = 'c'`); n != 1 {
		t.Fatalf("replayed prompt has %d results rows, want 1", n)
	}
	b.opsCtl(t, ctx, 0, "verify", "ops")

	// An interrupted replay (published, not yet marked) run again publishes
	// nothing new: the replay's Nats-Msg-Id is the same.
	out = b.opsCtl(t, ctx, 0, "dlq", "replay", "--all", "--dry-run")
	m := regexp.MustCompile(`dead letter \d+: would publish \d+ bytes to prompts\.ops \(Nats-Msg-Id (dlq/\S+)\); warning: still not a valid job`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("replay --all --dry-run:\n%s", out)
	}
	if _, err := js.Publish(ctx, "prompts.ops", []byte("not json \x1b[31m\xff"), jetstream.WithMsgID(m[1])); err != nil {
		t.Fatal(err)
	}
	before = streamMsgs(t, ctx, stream)
	out = b.opsCtl(t, ctx, 0, "dlq", "replay", "--all")
	if !strings.Contains(out, "already published by an earlier, interrupted replay") || !strings.Contains(out, "replayed 1 dead letter(s)") {
		t.Fatalf("replay --all:\n%s", out)
	}
	if after := streamMsgs(t, ctx, stream); after != before {
		t.Fatalf("replay run again published: %d messages, was %d", after, before)
	}
	// Still poison: it is dead-lettered again under its new stream
	// sequence, and the old row stays marked.
	b.opsWork(t, ctx)
	again := b.opsDLQ(t, ctx)
	if len(again) != 1 || again[0].ID == notJSON.ID || again[0].StreamSeq == notJSON.StreamSeq || again[0].PayloadBytes != notJSON.PayloadBytes {
		t.Fatalf("poison replay did not dead-letter again as a new row: %+v (old %+v)", again, notJSON)
	}
	if all := b.opsDLQ(t, ctx, "--all"); len(all) != 3 {
		t.Fatalf("dlq list --all: %d rows, want 3", len(all))
	}

	// A subject outside the configured prefix is refused; nothing is published.
	var evil int64
	if err := conn.QueryRow(ctx, `INSERT INTO dead_letters (stream_seq, subject, payload, error)
		VALUES (999, 'other.ops', '{}', 'planted') RETURNING id`).Scan(&evil); err != nil {
		t.Fatal(err)
	}
	before = streamMsgs(t, ctx, stream)
	out, code := b.opsRun(t, ctx, "cascadectl", nil, "dlq", "replay", "--all")
	if code == 0 || !strings.Contains(out, "outside the configured prefix") || !strings.Contains(out, "nothing replayed") {
		t.Fatalf("replay outside the prefix: exit %d\n%s", code, out)
	}
	if after := streamMsgs(t, ctx, stream); after != before {
		t.Fatalf("refused replay published: %d messages, was %d", after, before)
	}
	if rows := b.opsDLQ(t, ctx); len(rows) != 2 {
		t.Fatalf("refused replay marked rows: %+v", rows)
	}
}

// opsFindSeq returns the stream sequence of the message of prompt id on subject.
func opsFindSeq(t *testing.T, ctx context.Context, s jetstream.Stream, subject, id string) uint64 {
	t.Helper()
	for seq := uint64(1); ; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if err != nil {
			t.Fatalf("no message for %s on %s: %v", id, subject, err)
		}
		var j struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(m.Data, &j) == nil && j.ID == id {
			return m.Sequence
		}
		seq = m.Sequence + 1
	}
}

// verify tells complete (0), still queued (3), and lost (1), naming the lost
// prompt; a prompt answered twice fails it only with --strict.
func TestOpsVerifyExitCodes(t *testing.T) {
	b := setup(t)
	// A short duplicate window lets the same enqueue command, run again,
	// publish the lost prompt anew.
	b.env = append(b.env, "NATS_DUPLICATE_WINDOW=1s")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	lines := []string{
		`{"id":"p1","prompt":"What is the capital of France?"}`,
		`{"id":"p2","prompt":"Name three primary colours"}`,
		`{"id":"p3","prompt":"What is two plus two?"}`,
		`{"id":"p4","prompt":"Explain what DNS does"}`,
	}
	b.opsEnqueue(t, ctx, "whole", lines...)
	b.opsEnqueue(t, ctx, "lossy", lines...)
	_, stream := b.opsStream(t, ctx)
	if err := stream.DeleteMsg(ctx, opsFindSeq(t, ctx, stream, "prompts.lossy", "p3")); err != nil {
		t.Fatal(err)
	}

	// Nothing processed yet: the whole batch is still queued.
	out := b.opsCtl(t, ctx, 3, "verify", "whole")
	if !regexp.MustCompile(`still queued\s+4\b`).MatchString(out) || !strings.Contains(out, "incomplete") {
		t.Fatalf("verify before any worker:\n%s", out)
	}
	// The deleted prompt is lost even while the others wait, and named.
	out = b.opsCtl(t, ctx, 1, "verify", "lossy")
	if !regexp.MustCompile(`still queued\s+3\b`).MatchString(out) || !regexp.MustCompile(`lost\s+1\s+e\.g\. p3\n`).MatchString(out) {
		t.Fatalf("verify lossy before any worker:\n%s", out)
	}
	// Counting only, it is still found, as a lower bound.
	out = b.opsCtl(t, ctx, 1, "verify", "--scan-limit", "0", "lossy")
	if !regexp.MustCompile(`lost\s+1\s+\(at least`).MatchString(out) {
		t.Fatalf("verify --scan-limit 0 lossy:\n%s", out)
	}

	b.opsWork(t, ctx)
	out = b.opsCtl(t, ctx, 0, "verify", "whole")
	if !strings.Contains(out, "batch whole: complete") || !regexp.MustCompile(`done\s+4\b`).MatchString(out) {
		t.Fatalf("verify whole after the worker:\n%s", out)
	}
	out = b.opsCtl(t, ctx, 1, "verify", "lossy")
	if !regexp.MustCompile(`done\s+3\b`).MatchString(out) || !regexp.MustCompile(`lost\s+1\s+e\.g\. p3\n`).MatchString(out) ||
		!strings.Contains(out, "Run the same enqueue command again") {
		t.Fatalf("verify lossy after the worker:\n%s", out)
	}
	// Enqueue run again (the stream no longer holds p3 under its id) brings it back.
	b.opsEnqueue(t, ctx, "lossy", lines...)
	b.opsWork(t, ctx)
	b.opsCtl(t, ctx, 0, "verify", "lossy")

	// A second successful answer for one prompt is reported; it fails verify
	// only with --strict (the batch still has its one result per prompt).
	conn := b.opsDB(t, ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO request_log (batch_id, prompt_id, attempt, delivery, model, outcome, cost_usd, started_at)
		SELECT batch_id, prompt_id, 1, 99, model_used, 'ok', 0.001, now() FROM results
		WHERE batch_id = 'whole' AND status = 'succeeded' ORDER BY prompt_id LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	out = b.opsCtl(t, ctx, 0, "verify", "whole")
	if !regexp.MustCompile(`duplicated answers\s+1\b`).MatchString(out) || !strings.Contains(out, "batch whole: complete (1 prompt(s) answered more than once") {
		t.Fatalf("verify with a duplicated answer:\n%s", out)
	}
	out = b.opsCtl(t, ctx, 1, "verify", "--strict", "whole")
	if !strings.Contains(out, "PROBLEM: 1 prompt(s) answered twice") {
		t.Fatalf("verify --strict with a duplicated answer:\n%s", out)
	}

	out = b.opsCtl(t, ctx, 4, "verify", "never-enqueued")
	if !strings.Contains(out, `no batch "never-enqueued"`) {
		t.Fatalf("verify unknown batch:\n%s", out)
	}
	b.opsCtl(t, ctx, 2, "verify", "bad.name")
}

// A worker killed during the last allowed delivery leaves a message that the
// consumer never delivers again: verify calls it stranded (exit 1), and
// recreating the consumer, as the README says, finishes the batch.
func TestOpsVerifyStrandedAfterMaxDeliver(t *testing.T) {
	b := setup(t)
	b.env = append(b.env, "NATS_MAX_DELIVER=1", "NATS_ACK_WAIT=1s")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b.opsEnqueue(t, ctx, "stuck", `{"id":"s1","prompt":"What is the capital of France?"}`)
	out, code := b.opsRun(t, ctx, "worker", []string{"WORKER_FAULT=during-call", "WORKER_FAULT_AFTER=0"})
	if code != 137 {
		t.Fatalf("worker with WORKER_FAULT=during-call: exit %d, want 137\n%s", code, out)
	}
	// Until AckWait passes the delivery is pending; then it is stranded.
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, code = b.opsRun(t, ctx, "cascadectl", nil, "verify", "stuck")
		if code != 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if code != 1 || !regexp.MustCompile(`stranded\s+1\b`).MatchString(out) || !regexp.MustCompile(`lost\s+0\b`).MatchString(out) {
		t.Fatalf("verify after the last delivery died: exit %d\n%s", code, out)
	}

	js, _ := b.opsStream(t, ctx)
	if err := js.DeleteConsumer(ctx, "PROMPTS", "workers"); err != nil {
		t.Fatal(err)
	}
	out, code = b.opsRun(t, ctx, "worker", []string{"WORKER_EXIT_WHEN_IDLE=true", "NATS_MAX_DELIVER=10"})
	if code != 0 {
		t.Fatalf("worker: exit %d\n%s", code, out)
	}
	b.opsCtl(t, ctx, 0, "verify", "stuck")
}
