package e2e

// Broker faults against the built binaries (issue 4, items 3 and 5): the
// nats-server restarted under enqueue and under two workers, and a consumer
// that can no longer be created, which must stop a worker with a clear
// error instead of a retry loop.

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// brokerRoutes: quick sim models whose timeouts (the sim times out now and
// then) are short enough for a test.
const brokerRoutes = `
# random 429s are faults here, not capacity: fall back as the article does
on_rate_limit: cascade
tiers:
  simple:   [sim/quick, sim/steady]
  moderate: [sim/steady, sim/quick]
  complex:  [sim/steady, sim/quick]
models:
  sim/quick:
    latency: 20ms
    timeout: 1s
    max_retries: 1
    error_rate: 0.03
    rate_limit_rate: 0.03
    retry_after: 50ms
    capability: 0.6
    input_cost_per_mtok: 0.15
    output_cost_per_mtok: 0.6
  sim/steady:
    latency: 40ms
    timeout: 1s
    max_retries: 1
    error_rate: 0.02
    rate_limit_rate: 0.02
    retry_after: 50ms
    capability: 0.9
    input_cost_per_mtok: 2.5
    output_cost_per_mtok: 10
backoff:
  base: 10ms
  max: 100ms
`

// The nats-server is stopped and restarted on the same port and store twice:
// while enqueue is half-way through reading its input, and while two
// workers are half-way through the batch. enqueue and the workers reconnect
// by themselves and finish; the stream ends up with every prompt once, and
// every prompt is answered once.
func TestBrokerFaultBinariesSurviveNATSRestart(t *testing.T) {
	b, ctx := setup(t, 55*time.Second)
	testStart := time.Now()
	const n = 3000
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf(`{"id":"p%d","prompt":"What is %d plus %d? Explain briefly."}`+"\n", i, i, i)
	}
	js := b.jetStream(t)

	// enqueue reads stdin, so the test decides where in the input the
	// broker goes away: after the first chunk (1000 ids) is published.
	c := b.cmd(ctx, "enqueue", nil, "--batch", "bk", "--quiet", "-")
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	enq := startCmd(t, "enqueue", c)
	write := func(ls []string) {
		if _, err := io.WriteString(stdin, strings.Join(ls, "")); err != nil {
			t.Errorf("writing to enqueue: %v", err)
		}
	}
	write(lines[:1500])
	waitUntil(t, within(t, ctx, 20*time.Second), "first chunk in the stream", func() bool {
		st, ok := streamState(t, ctx, js)
		return ok && st.Msgs >= 1000
	})
	b.nats.Shutdown()
	wrote := make(chan struct{})
	go func() { // blocks once enqueue stops reading
		defer close(wrote)
		write(lines[1500:2500])
	}()
	time.Sleep(500 * time.Millisecond)
	b.nats.Restart()
	<-wrote
	write(lines[2500:])
	stdin.Close()
	enq.waitOK(t, 40*time.Second)
	if !strings.Contains(enq.out.String(), "reconnected to nats-server") {
		t.Errorf("enqueue did not log a reconnection: the restart did not happen while it was connected\n%s", enq.out)
	}
	sum := enqueueSummary(t, enq.out.String())
	if sum.published+sum.duplicates != n || sum.rejected != 0 {
		t.Fatalf("enqueue: published %d + duplicates %d, rejected %d; want %d stored\n%s", sum.published, sum.duplicates, sum.rejected, n, enq.out)
	}
	if st, ok := streamState(t, ctx, js); !ok || st.Msgs != n {
		t.Fatalf("stream holds %d messages after enqueue, want %d", st.Msgs, n)
	}
	t.Logf("enqueue across a restart: %s (%s)", sum.line, time.Since(testStart).Round(time.Millisecond))

	// Two workers; the broker restarts when a fifth of the batch is stored.
	env := []string{"WORKER_EXIT_WHEN_IDLE=true", "WORKER_CONCURRENCY=32", "NATS_ACK_WAIT=10s",
		routesEnv(t, brokerRoutes)}
	var ws []*proc
	for i := range 2 {
		ws = append(ws, b.startWorker(t, ctx, fmt.Sprint("w", i), env...))
	}
	conn := b.pg(t, ctx)
	waitUntil(t, within(t, ctx, 30*time.Second), "a fifth of the batch stored", func() bool {
		for _, w := range ws {
			if w.exited() {
				t.Fatalf("worker exited early:\n%s", w.out)
			}
		}
		return queryInt(t, ctx, conn, `SELECT count(*) FROM results`) >= n/5
	})
	t.Logf("workers: restarting the broker (%s)", time.Since(testStart).Round(time.Millisecond))
	b.nats.Shutdown()
	time.Sleep(500 * time.Millisecond)
	b.nats.Restart()
	for _, w := range ws {
		w.waitOK(t, 40*time.Second)
	}
	t.Logf("workers done (%s)", time.Since(testStart).Round(time.Millisecond))
	if !strings.Contains(ws[0].out.String()+ws[1].out.String(), "reconnected to nats-server") {
		t.Error("no worker logged a reconnection: the restart did not happen mid-batch")
	}
	b.checkBatch(t, ctx, "bk", n)
}

// The consumer disappears and cannot be created again (its stream no longer
// takes the subjects): the worker tries a bounded number of times, logging
// each, then exits 1 with an error that says what is wrong.
func TestBrokerFaultWorkerExitsWhenConsumerCannotBeRecreated(t *testing.T) {
	b, ctx := setup(t, 55*time.Second)
	b.enqueueLines(t, ctx, "gone", `{"id":"1","prompt":"What is 1 plus 1?"}`, `{"id":"2","prompt":"What is 2 plus 2?"}`)
	w := b.start(t, ctx, "worker", nil)
	conn := b.pg(t, ctx)
	waitUntil(t, within(t, ctx, 30*time.Second), "both prompts stored", func() bool {
		return queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'gone'`) == 2
	})

	// First the stream stops taking prompts.* (the worker fetches nothing
	// and carries on), then the consumer goes: recreating it needs a stream
	// with those subjects, which the worker will not take over.
	js := b.jetStream(t)
	cfg := promptsStream(t, ctx, js).CachedInfo().Config
	cfg.Subjects = []string{"elsewhere.>"}
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatalf("update stream subjects: %v", err)
	}
	if err := js.DeleteConsumer(ctx, "PROMPTS", "workers"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code := w.wait(t, 45*time.Second)
	t.Logf("worker exited %d, %s after the consumer was deleted", code, time.Since(start).Round(time.Millisecond))
	log := w.out.String()
	if code != 1 {
		t.Fatalf("worker exited %d, want 1\n%s", code, log)
	}
	tries := strings.Count(log, "recreating the stream and consumer failed; retrying")
	if tries == 0 || tries > 10 || !strings.Contains(log, "could not be recreated") || !strings.Contains(log, "elsewhere.>") {
		t.Errorf("want a bounded number of logged retries (got %d) and a final error naming the conflict:\n%s", tries, log)
	}
	b.checkBatch(t, ctx, "gone", 2)
}
