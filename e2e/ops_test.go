package e2e

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// dlqRow is one line of `cascadectl dlq list --format jsonl`.
type dlqRow struct {
	ID           int64      `json:"id"`
	StreamSeq    uint64     `json:"stream_seq"`
	Subject      string     `json:"subject"`
	Error        string     `json:"error"`
	ReplayedAt   *time.Time `json:"replayed_at"`
	PayloadBytes int        `json:"payload_bytes"`
	Preview      string     `json:"preview"`
}

// dlqList runs cascadectl dlq list --format jsonl (plus args) and parses it.
func (b *bundle) dlqList(t *testing.T, ctx context.Context, args ...string) []dlqRow {
	t.Helper()
	out := b.ctl(t, ctx, 0, append([]string{"dlq", "list", "--format", "jsonl"}, args...)...)
	var rows []dlqRow
	for l := range strings.Lines(out) {
		var r dlqRow
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
	b, ctx := setup(t, 3*time.Minute)

	b.enqueueLines(t, ctx, "ops",
		`{"id":"a","prompt":"What is the capital of France?"}`,
		`{"id":"b","prompt":"Explain how a hash map works"}`,
		`{"id":"c","prompt":"Name three primary colours"}`)
	js := b.jetStream(t)
	stream := promptsStream(t, ctx, js)
	// c is replaced on the stream by a copy the worker must refuse (negative
	// max_tokens): enqueue recorded c, so verify expects its answer.
	seqOf := findSeq(t, ctx, stream, "prompts.ops", "c")
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
	b.work(t, ctx)

	out := b.ctl(t, ctx, 1, "verify", "ops")
	if !regexp.MustCompile(`dead-lettered\s+1\b`).MatchString(out) || !regexp.MustCompile(`lost\s+0\b`).MatchString(out) {
		t.Fatalf("verify with a dead-lettered prompt:\n%s", out)
	}

	table := b.ctl(t, ctx, 0, "dlq", "list")
	if !strings.Contains(table, "max_tokens -5 is negative") || !strings.Contains(table, `not json \u001b[31m\xff`) ||
		strings.Contains(table, "\x1b") || !strings.HasPrefix(table, "id  ") {
		t.Fatalf("dlq list table:\n%q", table)
	}
	rows := b.dlqList(t, ctx)
	if len(rows) != 2 {
		t.Fatalf("dlq list jsonl: %+v", rows)
	}
	// The two poison messages may be dead-lettered in either order (they
	// can arrive in one fetch or in two); tell them apart by content.
	poisonC, notJSON := rows[0], rows[1]
	if poisonC.PayloadBytes == len("not json \x1b[31m\xff") {
		poisonC, notJSON = notJSON, poisonC
	}
	for _, r := range rows {
		if r.Subject != "prompts.ops" || r.ReplayedAt != nil {
			t.Fatalf("dlq list jsonl: %+v", rows)
		}
	}
	if notJSON.PayloadBytes != len("not json \x1b[31m\xff") || !strings.Contains(poisonC.Error, "max_tokens -5 is negative") {
		t.Fatalf("dlq list jsonl: %+v", rows)
	}

	fixed := writeFile(t, "fixed.json", `{"batch":"ops","id":"c","prompt":"Name three primary colours","max_tokens":64}`+"\n")
	before := streamMsgs(t, ctx, stream)
	out = b.ctl(t, ctx, 0, "dlq", "replay", "--id", strconv.FormatInt(poisonC.ID, 10), "--payload-file", fixed, "--dry-run")
	if !strings.Contains(out, "would publish") || !strings.Contains(out, "nothing published") {
		t.Fatalf("dry run:\n%s", out)
	}
	if after := streamMsgs(t, ctx, stream); after != before {
		t.Fatalf("dry run changed the stream: %d messages, was %d", after, before)
	}
	if rows := b.dlqList(t, ctx); len(rows) != 2 {
		t.Fatalf("dry run marked rows replayed: %+v", rows)
	}

	out = b.ctl(t, ctx, 0, "dlq", "replay", "--id", strconv.FormatInt(poisonC.ID, 10), "--payload-file", fixed)
	if !strings.Contains(out, "replayed to prompts.ops") || !strings.Contains(out, "replayed 1 dead letter(s)") {
		t.Fatalf("replay:\n%s", out)
	}
	if rows := b.dlqList(t, ctx); len(rows) != 1 || rows[0].ID != notJSON.ID {
		t.Fatalf("after replay, not replayed: %+v", rows)
	}
	b.work(t, ctx)
	conn := b.pg(t, ctx)
	if n := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'ops' AND prompt_id = 'c'`); n != 1 {
		t.Fatalf("replayed prompt has %d results rows, want 1", n)
	}
	b.ctl(t, ctx, 0, "verify", "ops")

	// An interrupted replay (published, not yet marked) run again publishes
	// nothing new: the replay's Nats-Msg-Id is the same.
	out = b.ctl(t, ctx, 0, "dlq", "replay", "--all", "--dry-run")
	m := regexp.MustCompile(`dead letter \d+: would publish \d+ bytes to prompts\.ops \(Nats-Msg-Id (dlq/\S+)\); warning: still not a valid job`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("replay --all --dry-run:\n%s", out)
	}
	if _, err := js.Publish(ctx, "prompts.ops", []byte("not json \x1b[31m\xff"), jetstream.WithMsgID(m[1])); err != nil {
		t.Fatal(err)
	}
	before = streamMsgs(t, ctx, stream)
	out = b.ctl(t, ctx, 0, "dlq", "replay", "--all")
	if !strings.Contains(out, "already published by an earlier, interrupted replay") || !strings.Contains(out, "replayed 1 dead letter(s)") {
		t.Fatalf("replay --all:\n%s", out)
	}
	if after := streamMsgs(t, ctx, stream); after != before {
		t.Fatalf("replay run again published: %d messages, was %d", after, before)
	}
	// Still poison: it is dead-lettered again under its new stream
	// sequence, and the old row stays marked.
	b.work(t, ctx)
	again := b.dlqList(t, ctx)
	if len(again) != 1 || again[0].ID == notJSON.ID || again[0].StreamSeq == notJSON.StreamSeq || again[0].PayloadBytes != notJSON.PayloadBytes {
		t.Fatalf("poison replay did not dead-letter again as a new row: %+v (old %+v)", again, notJSON)
	}
	if all := b.dlqList(t, ctx, "--all"); len(all) != 3 {
		t.Fatalf("dlq list --all: %d rows, want 3", len(all))
	}

	// A subject outside the configured prefix is refused; nothing is published.
	var evil int64
	if err := conn.QueryRow(ctx, `INSERT INTO dead_letters (stream_seq, subject, payload, error)
		VALUES (999, 'other.ops', '{}', 'planted') RETURNING id`).Scan(&evil); err != nil {
		t.Fatal(err)
	}
	before = streamMsgs(t, ctx, stream)
	out, code := b.run(t, ctx, "cascadectl", nil, "dlq", "replay", "--all")
	if code == 0 || !strings.Contains(out, "outside the configured prefix") || !strings.Contains(out, "nothing replayed") {
		t.Fatalf("replay outside the prefix: exit %d\n%s", code, out)
	}
	if after := streamMsgs(t, ctx, stream); after != before {
		t.Fatalf("refused replay published: %d messages, was %d", after, before)
	}
	if rows := b.dlqList(t, ctx); len(rows) != 2 {
		t.Fatalf("refused replay marked rows: %+v", rows)
	}
}

// verify tells complete (0), still queued (3), and lost (1), naming the lost
// prompt; a prompt answered twice fails it only with --strict.
func TestOpsVerifyExitCodes(t *testing.T) {
	b, ctx := setup(t, 3*time.Minute)
	// A short duplicate window lets the same enqueue command, run again,
	// publish the lost prompt anew.
	b.env = append(b.env, "NATS_DUPLICATE_WINDOW=1s")
	lines := []string{
		`{"id":"p1","prompt":"What is the capital of France?"}`,
		`{"id":"p2","prompt":"Name three primary colours"}`,
		`{"id":"p3","prompt":"What is two plus two?"}`,
		`{"id":"p4","prompt":"Explain what DNS does"}`,
	}
	b.enqueueLines(t, ctx, "whole", lines...)
	b.enqueueLines(t, ctx, "lossy", lines...)
	published := time.Now() // every lossy message is older than this
	stream := promptsStream(t, ctx, b.jetStream(t))
	if err := stream.DeleteMsg(ctx, findSeq(t, ctx, stream, "prompts.lossy", "p3")); err != nil {
		t.Fatal(err)
	}

	// Nothing processed yet: the whole batch is still queued.
	out := b.ctl(t, ctx, 3, "verify", "whole")
	if !regexp.MustCompile(`still queued\s+4\b`).MatchString(out) || !strings.Contains(out, "incomplete") {
		t.Fatalf("verify before any worker:\n%s", out)
	}
	// The deleted prompt is lost even while the others wait, and named.
	out = b.ctl(t, ctx, 1, "verify", "lossy")
	if !regexp.MustCompile(`still queued\s+3\b`).MatchString(out) || !regexp.MustCompile(`lost\s+1\s+e\.g\. p3\n`).MatchString(out) {
		t.Fatalf("verify lossy before any worker:\n%s", out)
	}
	// Counting only, it is still found, as a lower bound.
	out = b.ctl(t, ctx, 1, "verify", "--scan-limit", "0", "lossy")
	if !regexp.MustCompile(`lost\s+1\s+\(at least`).MatchString(out) {
		t.Fatalf("verify --scan-limit 0 lossy:\n%s", out)
	}

	b.work(t, ctx)
	out = b.ctl(t, ctx, 0, "verify", "whole")
	if !strings.Contains(out, "batch whole: complete") || !regexp.MustCompile(`done\s+4\b`).MatchString(out) {
		t.Fatalf("verify whole after the worker:\n%s", out)
	}
	out = b.ctl(t, ctx, 1, "verify", "lossy")
	if !regexp.MustCompile(`done\s+3\b`).MatchString(out) || !regexp.MustCompile(`lost\s+1\s+e\.g\. p3\n`).MatchString(out) ||
		!strings.Contains(out, "Run the same enqueue command again") {
		t.Fatalf("verify lossy after the worker:\n%s", out)
	}
	// Enqueue run again (the stream no longer holds p3 under its id) brings it
	// back, once the 1 s duplicate window has passed since p3 was published
	// (a fast worker is done well within it; the server would drop p3 again).
	time.Sleep(time.Until(published.Add(1500 * time.Millisecond)))
	b.enqueueLines(t, ctx, "lossy", lines...)
	b.work(t, ctx)
	b.ctl(t, ctx, 0, "verify", "lossy")

	// A second successful answer for one prompt is reported; it fails verify
	// only with --strict (the batch still has its one result per prompt).
	conn := b.pg(t, ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO request_log (batch_id, prompt_id, attempt, delivery, model, outcome, cost_usd, started_at)
		SELECT batch_id, prompt_id, 1, 99, model_used, 'ok', 0.001, now() FROM results
		WHERE batch_id = 'whole' AND status = 'succeeded' ORDER BY prompt_id LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	out = b.ctl(t, ctx, 0, "verify", "whole")
	if !regexp.MustCompile(`duplicated answers\s+1\b`).MatchString(out) || !strings.Contains(out, "batch whole: complete (1 prompt(s) answered more than once") {
		t.Fatalf("verify with a duplicated answer:\n%s", out)
	}
	out = b.ctl(t, ctx, 1, "verify", "--strict", "whole")
	if !strings.Contains(out, "PROBLEM: 1 prompt(s) answered twice") {
		t.Fatalf("verify --strict with a duplicated answer:\n%s", out)
	}

	out = b.ctl(t, ctx, 4, "verify", "never-enqueued")
	if !strings.Contains(out, `no batch "never-enqueued"`) {
		t.Fatalf("verify unknown batch:\n%s", out)
	}
	b.ctl(t, ctx, 2, "verify", "bad.name")
}

// A worker killed during the last allowed delivery leaves a message that the
// consumer never delivers again: verify calls it stranded (exit 1), and
// recreating the consumer, as the README says, finishes the batch.
func TestOpsVerifyStrandedAfterMaxDeliver(t *testing.T) {
	b, ctx := setup(t, 2*time.Minute)
	b.env = append(b.env, "NATS_MAX_DELIVER=1", "NATS_ACK_WAIT=1s")
	b.enqueueLines(t, ctx, "stuck", `{"id":"s1","prompt":"What is the capital of France?"}`)
	out, code := b.run(t, ctx, "worker", []string{"WORKER_FAULT=during-call", "WORKER_FAULT_AFTER=0"})
	if code != 137 {
		t.Fatalf("worker with WORKER_FAULT=during-call: exit %d, want 137\n%s", code, out)
	}
	// Until AckWait passes the delivery is pending; then it is stranded.
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, code = b.run(t, ctx, "cascadectl", nil, "verify", "stuck")
		if code != 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if code != 1 || !regexp.MustCompile(`stranded\s+1\b`).MatchString(out) || !regexp.MustCompile(`lost\s+0\b`).MatchString(out) {
		t.Fatalf("verify after the last delivery died: exit %d\n%s", code, out)
	}

	if err := b.jetStream(t).DeleteConsumer(ctx, "PROMPTS", "workers"); err != nil {
		t.Fatal(err)
	}
	b.work(t, ctx, "NATS_MAX_DELIVER=10")
	b.ctl(t, ctx, 0, "verify", "stuck")
}
