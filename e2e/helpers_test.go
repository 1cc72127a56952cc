package e2e

// The helpers every test of this package shares: the built binaries and the
// bundle (nats-server, Postgres schema, environment) they run against;
// running a binary to its end or in the background; waiting; Postgres and
// JetStream look-ups; test inputs; and the checks batch-level tests end with.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/promptcascade/promptcascade/internal/natstest"
	"github.com/promptcascade/promptcascade/internal/pgtest"
)

// ------------------------------------------------------ binaries and bundle

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds bin/worker, bin/enqueue and bin/cascadectl once per test run.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "promptcascade-e2e-bin-*")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Dir(filepath.Dir(file))
		cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/...")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = err
			binDir = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("go build ./cmd/...: %v\n%s", buildErr, binDir)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" && buildErr == nil {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// bundle is what one test runs the binaries against: its own nats-server
// and Postgres schema, and the environment that points the binaries there.
type bundle struct {
	bin  string
	env  []string
	dsn  string
	nats *natstest.Server
	root string
}

// setup starts the test's nats-server and Postgres schema (and builds the
// binaries, once). The returned ctx ends after timeout, counted from now,
// or when the test ends.
func setup(t *testing.T, timeout time.Duration) (*bundle, context.Context) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	b := &bundle{bin: binaries(t), dsn: pgtest.Schema(t), nats: natstest.Start(t)}
	_, file, _, _ := runtime.Caller(0)
	b.root = filepath.Dir(filepath.Dir(file))
	b.env = append(os.Environ(),
		"NATS_URL="+b.nats.URL(),
		"DATABASE_URL="+b.dsn,
		"LOG_LEVEL=info",
		"ROUTES_FILE=",
	)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return b, ctx
}

// cmd prepares a binary with the bundle's environment plus extraEnv (a later
// setting of the same name wins).
func (b *bundle) cmd(ctx context.Context, name string, extraEnv []string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, filepath.Join(b.bin, name), args...)
	c.Env = append(append([]string{}, b.env...), extraEnv...)
	c.Dir = b.root
	c.WaitDelay = 5 * time.Second
	return c
}

// ------------------------------------------------ binaries run to their end

// run runs a binary to its end and returns its combined output and exit
// code (-1 when a signal ended it). The test fails if the binary could not
// be run or waited for.
func (b *bundle) run(t *testing.T, ctx context.Context, name string, env []string, args ...string) (string, int) {
	t.Helper()
	c := b.cmd(ctx, name, env, args...)
	out, err := c.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), c.ProcessState.ExitCode()
}

// runWant runs a binary to its end and fails the test unless it exits with
// code want; it returns the combined output.
func (b *bundle) runWant(t *testing.T, ctx context.Context, want int, name string, env []string, args ...string) string {
	t.Helper()
	out, code := b.run(t, ctx, name, env, args...)
	if code != want {
		t.Fatalf("%s %s: exit %d, want %d\n%s", name, strings.Join(args, " "), code, want, out)
	}
	return out
}

// ctl runs cascadectl and fails the test unless it exits with want.
func (b *bundle) ctl(t *testing.T, ctx context.Context, want int, args ...string) string {
	t.Helper()
	return b.runWant(t, ctx, want, "cascadectl", nil, args...)
}

// enqueueFile runs enqueue --quiet to completion (exit 0) for one batch and
// returns its output.
func (b *bundle) enqueueFile(t *testing.T, ctx context.Context, batch, file string) string {
	t.Helper()
	return b.runWant(t, ctx, 0, "enqueue", nil, "--batch", batch, "--quiet", file)
}

// enqueueLines enqueues the given JSONL lines as one batch, as enqueueFile.
func (b *bundle) enqueueLines(t *testing.T, ctx context.Context, batch string, lines ...string) string {
	t.Helper()
	return b.enqueueFile(t, ctx, batch, writeFile(t, batch+".jsonl", strings.Join(lines, "\n")+"\n"))
}

// work runs one worker (16 slots, plus env) until the consumer is idle and
// fails the test unless it exits 0.
func (b *bundle) work(t *testing.T, ctx context.Context, env ...string) {
	t.Helper()
	b.runWant(t, ctx, 0, "worker", append([]string{"WORKER_EXIT_WHEN_IDLE=true", "WORKER_CONCURRENCY=16"}, env...))
}

// summary is enqueue's last line: "batch b: published p, duplicates d,
// rejected r (...)".
type summary struct {
	line, batch                     string
	published, duplicates, rejected int
}

var summaryRE = regexp.MustCompile(`batch (\S+): published (\d+), duplicates (\d+), rejected (\d+).*`)

// enqueueSummary finds the summary line in enqueue's output; the test fails
// if there is none.
func enqueueSummary(t *testing.T, out string) summary {
	t.Helper()
	m := summaryRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("enqueue printed no summary:\n%s", out)
	}
	s := summary{line: m[0], batch: m[1]}
	s.published, _ = strconv.Atoi(m[2])
	s.duplicates, _ = strconv.Atoi(m[3])
	s.rejected, _ = strconv.Atoi(m[4])
	return s
}

// ----------------------------------------------- binaries in the background

// syncBuffer is a bytes.Buffer that a running process writes to while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// proc is a binary running in the background, its stdout and stderr kept.
type proc struct {
	name     string
	cmd      *exec.Cmd
	out      *syncBuffer
	done     chan struct{}
	err      error     // from Wait; read after done is closed
	exitedAt time.Time // read after done is closed
}

// start runs a binary in the background. It is killed (SIGKILL works on a
// stopped process too) and reaped when the test ends, if still running.
func (b *bundle) start(t *testing.T, ctx context.Context, name string, env []string, args ...string) *proc {
	t.Helper()
	return startCmd(t, name, b.cmd(ctx, name, env, args...))
}

// startCmd is start for a command the test has prepared further (with a
// stdin pipe, say).
func startCmd(t *testing.T, name string, c *exec.Cmd) *proc {
	t.Helper()
	p := &proc{name: name, cmd: c, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		p.exitedAt = time.Now()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// startWorker runs bin/worker with WORKER_ID=id and the given extra settings.
func (b *bundle) startWorker(t *testing.T, ctx context.Context, id string, env ...string) *proc {
	t.Helper()
	return b.start(t, ctx, "worker", append([]string{"WORKER_ID=" + id}, env...))
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to timeout for the process to end and returns its exit
// code (-1 when a signal ended it).
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s; output:\n%s", p.name, timeout, p.out)
	}
	if p.err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	t.Fatalf("%s: %v\n%s", p.name, p.err, p.out)
	return 0
}

// waitOK waits for the process to exit 0.
func (p *proc) waitOK(t *testing.T, timeout time.Duration) {
	t.Helper()
	if code := p.wait(t, timeout); code != 0 {
		t.Fatalf("%s exited %d, want 0; output:\n%s", p.name, code, p.out)
	}
}

var alreadyDoneRE = regexp.MustCompile(`msg="worker stopped".*\balready_done=(\d+)`)

// alreadyDone reads already_done= from the worker's final log line, the
// number of redeliveries it acked without a model call because the prompt's
// result was committed already.
func (p *proc) alreadyDone(t *testing.T) int {
	t.Helper()
	m := alreadyDoneRE.FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatalf("%s: no final \"worker stopped\" line with already_done=; output:\n%s", p.name, p.out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// ------------------------------------------------------------------ waiting

// waitUntil polls cond every 5ms until it holds; it fails the test when ctx
// ends first.
func waitUntil(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// within is ctx cut short to d from now, for a wait with a limit of its own;
// it is cancelled when the test ends.
func within(t *testing.T, ctx context.Context, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(ctx, d)
	t.Cleanup(cancel)
	return ctx
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago (METRICS_ADDR with port 0 would not tell the test the port).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// inFlight reads promptcascade_in_flight from a worker's metrics endpoint;
// ok is false while the endpoint is not up.
func inFlight(ctx context.Context, addr string) (n int, ok bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, found := strings.CutPrefix(sc.Text(), "promptcascade_in_flight "); found {
			f, err := strconv.ParseFloat(v, 64)
			return int(f), err == nil
		}
	}
	return 0, false
}

// ----------------------------------------------------------------- Postgres

// pg opens a connection to the test's schema, closed when the test ends.
func (b *bundle) pg(t *testing.T, ctx context.Context) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryInt(t *testing.T, ctx context.Context, conn *pgx.Conn, q string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func queryStrings(t *testing.T, ctx context.Context, conn *pgx.Conn, q string, args ...any) []string {
	t.Helper()
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

// enqueued counts the prompt ids enqueue has recorded (migrating first, so
// that a run that published nothing still has the table).
func (b *bundle) enqueued(t *testing.T, ctx context.Context) int {
	t.Helper()
	b.ctl(t, ctx, 0, "migrate")
	return queryInt(t, ctx, b.pg(t, ctx), `SELECT count(*) FROM batch_prompts`)
}

// ---------------------------------------------------------------- JetStream

// jetStream opens a JetStream client on a connection of the test's own to
// its nats-server, which reconnects across a restart of the server; it is
// closed when the test ends.
func (b *bundle) jetStream(t *testing.T) jetstream.JetStream {
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
	return js
}

// promptsStream returns the PROMPTS stream; the test fails if there is none.
func promptsStream(t *testing.T, ctx context.Context, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	s, err := js.Stream(ctx, "PROMPTS")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// streamState reads the state of the PROMPTS stream; ok is false while the
// stream does not exist. LastSeq is the number of messages ever stored,
// consumed ones included.
func streamState(t *testing.T, ctx context.Context, js jetstream.JetStream) (state jetstream.StreamState, ok bool) {
	t.Helper()
	s, err := js.Stream(ctx, "PROMPTS")
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return jetstream.StreamState{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State, true
}

// streamMsgs is the number of messages s holds now.
func streamMsgs(t *testing.T, ctx context.Context, s jetstream.Stream) uint64 {
	t.Helper()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// findSeq returns the stream sequence of the message of prompt id on subject.
func findSeq(t *testing.T, ctx context.Context, s jetstream.Stream, subject, id string) uint64 {
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

// ------------------------------------------------------------------- inputs

// writeFile writes content to a file called name in a fresh temp dir of the
// test and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// routesEnv writes a routes file for the sim provider and returns the
// ROUTES_FILE setting that names it.
func routesEnv(t *testing.T, yaml string) string {
	t.Helper()
	return "ROUTES_FILE=" + writeFile(t, "routes.yaml", yaml)
}

// fastRoutes: two quick sim models with some server errors, rate limits and
// weak answers, so cascades, retries and nak'd deliveries all happen.
const fastRoutes = `
# random 429s are faults here, not capacity: fall back as the article does
on_rate_limit: cascade
tiers:
  simple:   [sim/quick, sim/steady]
  moderate: [sim/steady, sim/quick]
  complex:  [sim/steady, sim/quick]
models:
  sim/quick:
    latency: 20ms
    timeout: 5s
    max_retries: 1
    error_rate: 0.04
    rate_limit_rate: 0.04
    retry_after: 50ms
    weak_rate: 0.03
    capability: 0.6
    input_cost_per_mtok: 0.15
    output_cost_per_mtok: 0.6
  sim/steady:
    latency: 40ms
    timeout: 5s
    max_retries: 1
    error_rate: 0.03
    rate_limit_rate: 0.03
    retry_after: 50ms
    weak_rate: 0.01
    capability: 0.9
    input_cost_per_mtok: 2.5
    output_cost_per_mtok: 10
backoff:
  base: 10ms
  max: 100ms
cooldown:
  failures: 0
`

// firstLines writes the first n lines of testdata/prompts.jsonl to a temp file.
func firstLines(t *testing.T, root string, n int) string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "testdata", "prompts.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for i := 0; i < n && sc.Scan(); i++ {
		buf.Write(sc.Bytes())
		buf.WriteByte('\n')
	}
	if got := strings.Count(buf.String(), "\n"); got != n {
		t.Fatalf("testdata/prompts.jsonl has %d lines, want at least %d", got, n)
	}
	return writeFile(t, "prompts.jsonl", buf.String())
}

// genPrompts writes n JSONL prompts with ids g00000, g00001, ...: the texts
// of testdata/prompts.jsonl over and over, so every tier is present.
func genPrompts(t *testing.T, root string, n int) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "testdata", "prompts.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i := range n {
		m := lines[i%len(lines)]
		m["id"] = fmt.Sprintf("g%05d", i)
		if err := enc.Encode(m); err != nil {
			t.Fatal(err)
		}
	}
	return writeFile(t, "generated.jsonl", buf.String())
}

// ----------------------------------------------------------- end-state checks

// checkBatch checks the end state every batch-level test asks for:
//   - `cascadectl verify` exits 0 (its report's wording is its own; the
//     counts are checked here with SQL);
//   - results has exactly n rows, one per prompt id, and n ids were enqueued;
//   - no request_log row belongs to a prompt without a result.
func (b *bundle) checkBatch(t *testing.T, ctx context.Context, batch string, n int) {
	t.Helper()
	start := time.Now()
	out, code := b.run(t, ctx, "cascadectl", nil, "verify", batch)
	t.Logf("cascadectl verify %s took %s", batch, time.Since(start).Round(time.Millisecond))
	if code != 0 {
		t.Errorf("cascadectl verify %s: exit %d, want 0\n%s", batch, code, out)
	}

	conn := b.pg(t, ctx)
	var rows, distinct, enqueued int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT prompt_id),
		(SELECT count(*) FROM batch_prompts WHERE batch_id = $1)
		FROM results WHERE batch_id = $1`, batch).Scan(&rows, &distinct, &enqueued); err != nil {
		t.Fatal(err)
	}
	if rows != n || distinct != n || enqueued != n {
		t.Fatalf("batch %s: %d results rows, %d distinct prompts, %d enqueued; want %d of each", batch, rows, distinct, enqueued, n)
	}

	if orphans := queryInt(t, ctx, conn, `SELECT count(*) FROM request_log l WHERE l.batch_id = $1
		AND NOT EXISTS (SELECT 1 FROM results r WHERE r.batch_id = l.batch_id AND r.prompt_id = l.prompt_id)`, batch); orphans != 0 {
		t.Errorf("batch %s: %d request_log rows belong to no result", batch, orphans)
	}
}

// reconciliation is what reconcile found, for test-specific assertions.
type reconciliation struct {
	Succeeded, Failed int
	// CrashRedelivered counts results committed by a delivery after one
	// that left no trace in request_log: a delivery that died with its
	// worker before committing anything.
	CrashRedelivered int
	// ExtraOK lists prompts with an 'ok' attempt outside the committing
	// delivery: a second paid answer (legitimate only if it started before
	// the commit, which reconcile checks for every attempt).
	ExtraOK []string
}

// reconcile is how the fault tests end: checkBatch, and
//   - every result is succeeded or failed, at least 80% succeeded;
//   - each result's committing delivery (its delivery and worker_id) logged
//     its attempts, and a succeeded result has exactly one 'ok' attempt
//     there and a failed one none;
//   - nothing committed was paid again: no model call (request_log row of
//     another delivery) started at or after the committing transaction
//     began. The transaction's start (now(), i.e. request_log.created_at of
//     the committing rows) precedes its commit by milliseconds, so the
//     check is slightly stricter than "after the commit", never looser;
//     results.completed_at is not used, as the worker stamps it before the
//     commit is even queued.
func (b *bundle) reconcile(t *testing.T, ctx context.Context, batch string, n int) reconciliation {
	t.Helper()
	b.checkBatch(t, ctx, batch, n)

	conn := b.pg(t, ctx)
	var r reconciliation
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed')
		FROM results WHERE batch_id = $1`, batch).Scan(&r.Succeeded, &r.Failed); err != nil {
		t.Fatal(err)
	}
	if r.Succeeded+r.Failed != n {
		t.Fatalf("batch %s: %d succeeded + %d failed; want %d", batch, r.Succeeded, r.Failed, n)
	}
	if r.Succeeded < n*8/10 {
		t.Errorf("batch %s: only %d of %d succeeded", batch, r.Succeeded, n)
	}

	// The committing delivery's own attempts.
	if bad := queryStrings(t, ctx, conn, `
		SELECT r.prompt_id || ' (status ' || r.status || ', delivery ' || r.delivery || ', ' || l.n || ' attempts, ' || l.ok || ' ok)'
		FROM results r
		CROSS JOIN LATERAL (
			SELECT count(*) AS n, count(*) FILTER (WHERE outcome = 'ok') AS ok FROM request_log l
			WHERE l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id
			AND l.delivery = r.delivery AND l.worker_id = r.worker_id) l
		WHERE r.batch_id = $1 AND (l.n = 0 OR l.ok <> CASE WHEN r.status = 'succeeded' THEN 1 ELSE 0 END)
		ORDER BY r.prompt_id LIMIT 10`, batch); len(bad) > 0 {
		t.Errorf("batch %s: results whose committing delivery did not log one ok attempt per answer: %v", batch, bad)
	}

	// Nothing committed was paid again.
	if bad := queryStrings(t, ctx, conn, `
		WITH c AS (
			SELECT r.prompt_id, r.delivery, r.worker_id, min(l.created_at) AS tx_start
			FROM results r JOIN request_log l ON l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id
				AND l.delivery = r.delivery AND l.worker_id = r.worker_id
			WHERE r.batch_id = $1
			GROUP BY r.prompt_id, r.delivery, r.worker_id)
		SELECT l.prompt_id || ': ' || l.outcome || ' attempt ' || l.attempt || ' of delivery ' || l.delivery ||
			' by ' || coalesce(l.worker_id, '?') || ' started ' || (l.started_at - c.tx_start) ||
			' after delivery ' || c.delivery || ' by ' || c.worker_id || ' began committing'
		FROM request_log l JOIN c ON c.prompt_id = l.prompt_id
		WHERE l.batch_id = $1
			AND NOT (l.delivery = c.delivery AND l.worker_id IS NOT DISTINCT FROM c.worker_id)
			AND l.outcome NOT IN ('cooldown_skip', 'context_window')
			AND l.started_at >= c.tx_start
		ORDER BY l.prompt_id LIMIT 10`, batch); len(bad) > 0 {
		t.Errorf("batch %s: model calls for prompts whose result was already committed: %v", batch, bad)
	}

	r.CrashRedelivered = queryInt(t, ctx, conn, `SELECT count(*) FROM results r WHERE r.batch_id = $1
		AND EXISTS (SELECT 1 FROM generate_series(1, r.delivery - 1) d(n)
			WHERE NOT EXISTS (SELECT 1 FROM request_log l
				WHERE l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id AND l.delivery = d.n))`, batch)
	r.ExtraOK = queryStrings(t, ctx, conn, `SELECT DISTINCT l.prompt_id FROM request_log l
		JOIN results r ON r.batch_id = l.batch_id AND r.prompt_id = l.prompt_id
		WHERE l.batch_id = $1 AND l.outcome = 'ok'
			AND NOT (l.delivery = r.delivery AND l.worker_id IS NOT DISTINCT FROM r.worker_id)
		ORDER BY 1`, batch)
	return r
}
