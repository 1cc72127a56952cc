package e2e

// Broker faults against the built binaries (issue 4, items 3 and 5): the
// nats-server restarted under enqueue and under two workers, and a consumer
// that can no longer be created, which must stop a worker with a clear
// error instead of a retry loop. Helpers here are prefixed bf so they do not
// collide with those of the other fault tests in this package.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// bfOutput collects a running process's output.
type bfOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *bfOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *bfOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// bfProc is a binary running in the background.
type bfProc struct {
	name string
	cmd  *exec.Cmd
	out  *bfOutput
	done chan struct{} // closed when it has exited
}

// bfStart starts a binary in the background; it is killed when the test
// ends if still running.
func (b *bundle) bfStart(t *testing.T, ctx context.Context, name string, env []string, args ...string) *bfProc {
	t.Helper()
	p := &bfProc{name: name, cmd: b.cmd(ctx, name, env, args...), out: &bfOutput{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *bfProc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		t.Fatalf("%s still running after %s\n%s", p.name, limit, p.out)
		return -1
	}
}

// bfStream opens a connection of the test's own to watch the stream.
func (b *bundle) bfStream(t *testing.T) func(context.Context) (jetstream.StreamInfo, bool) {
	t.Helper()
	nc, err := nats.Connect(b.nats.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return func(ctx context.Context) (jetstream.StreamInfo, bool) {
		s, err := js.Stream(ctx, "PROMPTS")
		if err != nil {
			return jetstream.StreamInfo{}, false
		}
		return *s.CachedInfo(), true
	}
}

func bfUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func bfCount(t *testing.T, ctx context.Context, dsn, q string, args ...any) int {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// bfReconcile: cascadectl verify passes, and every enqueued prompt has
// exactly one results row.
func (b *bundle) bfReconcile(t *testing.T, ctx context.Context, batch string, n int) {
	t.Helper()
	out, err := b.cmd(ctx, "cascadectl", nil, "verify", batch).CombinedOutput()
	if err != nil {
		t.Errorf("cascadectl verify %s: %v\n%s", batch, err, out)
	}
	rows := bfCount(t, ctx, b.dsn, `SELECT count(*) FROM results WHERE batch_id = $1`, batch)
	distinct := bfCount(t, ctx, b.dsn, `SELECT count(DISTINCT prompt_id) FROM results WHERE batch_id = $1`, batch)
	enqueued := bfCount(t, ctx, b.dsn, `SELECT count(*) FROM batch_prompts WHERE batch_id = $1`, batch)
	if rows != n || distinct != n || enqueued != n {
		t.Errorf("batch %s: %d results rows for %d prompts, %d enqueued; want %d of each", batch, rows, distinct, enqueued, n)
	}
	stray := bfCount(t, ctx, b.dsn, `SELECT count(*) FROM request_log l WHERE l.batch_id = $1
		AND NOT EXISTS (SELECT 1 FROM results r WHERE r.batch_id = l.batch_id AND r.prompt_id = l.prompt_id)`, batch)
	if stray != 0 {
		t.Errorf("batch %s: %d request_log rows of prompts without a result", batch, stray)
	}
}

// bfRoutes writes a routes file of quick sim models whose timeouts (the sim
// times out now and then) are short enough for a test.
func bfRoutes(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "routes.yaml")
	const routes = `
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
	if err := os.WriteFile(p, []byte(routes), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var bfSummary = regexp.MustCompile(`published (\d+), duplicates (\d+), rejected (\d+)`)

// The nats-server is stopped and restarted on the same port and store twice:
// while enqueue is half-way through reading its input, and while two
// workers are half-way through the batch. enqueue and the workers reconnect
// by themselves and finish; the stream ends up with every prompt once, and
// every prompt is answered once.
func TestBrokerFaultBinariesSurviveNATSRestart(t *testing.T) {
	b := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	testStart := time.Now()
	const n = 3000
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf(`{"id":"p%d","prompt":"What is %d plus %d? Explain briefly."}`+"\n", i, i, i)
	}
	stream := b.bfStream(t)

	// enqueue reads stdin, so the test decides where in the input the
	// broker goes away: after the first chunk (1000 ids) is published.
	enq := b.cmd(ctx, "enqueue", nil, "--batch", "bk", "--quiet", "-")
	stdin, err := enq.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	enqOut := &bfOutput{}
	enq.Stdout, enq.Stderr = enqOut, enqOut
	if err := enq.Start(); err != nil {
		t.Fatal(err)
	}
	enqDone := make(chan error, 1)
	go func() { enqDone <- enq.Wait() }()
	write := func(ls []string) {
		if _, err := io.WriteString(stdin, strings.Join(ls, "")); err != nil {
			t.Errorf("writing to enqueue: %v", err)
		}
	}
	write(lines[:1500])
	bfUntil(t, "first chunk in the stream", 20*time.Second, func() bool {
		si, ok := stream(ctx)
		return ok && si.State.Msgs >= 1000
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
	select {
	case err := <-enqDone:
		if err != nil {
			t.Fatalf("enqueue: %v\n%s", err, enqOut)
		}
	case <-time.After(40 * time.Second):
		_ = enq.Process.Kill()
		<-enqDone
		t.Fatalf("enqueue did not finish after the restart\n%s", enqOut)
	}
	if !strings.Contains(enqOut.String(), "reconnected to nats-server") {
		t.Errorf("enqueue did not log a reconnection: the restart did not happen while it was connected\n%s", enqOut)
	}
	m := bfSummary.FindStringSubmatch(enqOut.String())
	if m == nil {
		t.Fatalf("enqueue printed no summary:\n%s", enqOut)
	}
	published, _ := strconv.Atoi(m[1])
	dups, _ := strconv.Atoi(m[2])
	if published+dups != n || m[3] != "0" {
		t.Fatalf("enqueue: published %d + duplicates %d, rejected %s; want %d stored\n%s", published, dups, m[3], n, enqOut)
	}
	if si, ok := stream(ctx); !ok || si.State.Msgs != n {
		t.Fatalf("stream holds %d messages after enqueue, want %d", si.State.Msgs, n)
	}
	t.Logf("enqueue across a restart: %s (%s)", m[0], time.Since(testStart).Round(time.Millisecond))

	// Two workers; the broker restarts when a fifth of the batch is stored.
	env := []string{"WORKER_EXIT_WHEN_IDLE=true", "WORKER_CONCURRENCY=32", "NATS_ACK_WAIT=10s",
		"ROUTES_FILE=" + bfRoutes(t)}
	var ws []*bfProc
	for i := range 2 {
		ws = append(ws, b.bfStart(t, ctx, "worker", append(env, fmt.Sprint("WORKER_ID=w", i))))
	}
	bfUntil(t, "a fifth of the batch stored", 30*time.Second, func() bool {
		for _, w := range ws {
			select {
			case <-w.done:
				t.Fatalf("worker exited early:\n%s", w.out)
			default:
			}
		}
		return bfCount(t, ctx, b.dsn, `SELECT count(*) FROM results`) >= n/5
	})
	t.Logf("workers: restarting the broker (%s)", time.Since(testStart).Round(time.Millisecond))
	b.nats.Shutdown()
	time.Sleep(500 * time.Millisecond)
	b.nats.Restart()
	for i, w := range ws {
		if code := w.wait(t, 40*time.Second); code != 0 {
			t.Fatalf("worker %d exited %d\n%s", i, code, w.out)
		}
	}
	t.Logf("workers done (%s)", time.Since(testStart).Round(time.Millisecond))
	if !strings.Contains(ws[0].out.String()+ws[1].out.String(), "reconnected to nats-server") {
		t.Error("no worker logged a reconnection: the restart did not happen mid-batch")
	}
	b.bfReconcile(t, ctx, "bk", n)
}

// The consumer disappears and cannot be created again (its stream no longer
// takes the subjects): the worker tries a bounded number of times, logging
// each, then exits 1 with an error that says what is wrong.
func TestBrokerFaultWorkerExitsWhenConsumerCannotBeRecreated(t *testing.T) {
	b := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	file := writeFile(t, "in.jsonl", "{\"id\":\"1\",\"prompt\":\"What is 1 plus 1?\"}\n{\"id\":\"2\",\"prompt\":\"What is 2 plus 2?\"}\n")
	if out, err := b.cmd(ctx, "enqueue", nil, "--batch", "gone", "--quiet", file).CombinedOutput(); err != nil {
		t.Fatalf("enqueue: %v\n%s", err, out)
	}
	w := b.bfStart(t, ctx, "worker", nil)
	bfUntil(t, "both prompts stored", 30*time.Second, func() bool {
		return bfCount(t, ctx, b.dsn, `SELECT count(*) FROM results WHERE batch_id = 'gone'`) == 2
	})

	// First the stream stops taking prompts.* (the worker fetches nothing
	// and carries on), then the consumer goes: recreating it needs a stream
	// with those subjects, which the worker will not take over.
	nc, err := nats.Connect(b.nats.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "PROMPTS")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
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
	b.bfReconcile(t, ctx, "gone", 2)
}
