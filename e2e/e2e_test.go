// Package e2e runs the built binaries end to end: enqueue → JetStream →
// two worker processes → Postgres, with an embedded nats-server and a fresh
// Postgres schema.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promptcascade/promptcascade/internal/natstest"
	"github.com/promptcascade/promptcascade/internal/pgtest"
)

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

type bundle struct {
	bin  string
	env  []string
	dsn  string
	nats *natstest.Server
	root string
}

func setup(t *testing.T) *bundle {
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
	return b
}

func (b *bundle) cmd(ctx context.Context, name string, extraEnv []string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, filepath.Join(b.bin, name), args...)
	c.Env = append(append([]string{}, b.env...), extraEnv...)
	c.Dir = b.root
	c.WaitDelay = 5 * time.Second
	return c
}

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
	out := filepath.Join(t.TempDir(), "prompts.jsonl")
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEndToEnd1000PromptsTwoWorkers(t *testing.T) {
	b := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const n = 1000
	file := firstLines(t, b.root, n)

	out, err := b.cmd(ctx, "enqueue", nil, "--batch", "e2e", file).CombinedOutput()
	if err != nil {
		t.Fatalf("enqueue: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "published 1000, duplicates 0, rejected 0") {
		t.Fatalf("enqueue summary: %s", out)
	}

	var workers []*exec.Cmd
	var logs []*bytes.Buffer
	for i := range 2 {
		var buf bytes.Buffer
		c := b.cmd(ctx, "worker", []string{"WORKER_EXIT_WHEN_IDLE=true", "WORKER_CONCURRENCY=64", "WORKER_ID=w" + string(rune('1'+i))})
		c.Stdout, c.Stderr = &buf, &buf
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		workers = append(workers, c)
		logs = append(logs, &buf)
	}
	for i, c := range workers {
		if err := c.Wait(); err != nil {
			t.Fatalf("worker %d: %v\n%s", i+1, err, logs[i])
		}
	}

	conn, err := pgx.Connect(ctx, b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows, distinct, succeeded, failed, workersSeen int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT prompt_id), count(*) FILTER (WHERE status='succeeded'),
		count(*) FILTER (WHERE status='failed'), count(DISTINCT worker_id) FROM results WHERE batch_id='e2e'`).
		Scan(&rows, &distinct, &succeeded, &failed, &workersSeen); err != nil {
		t.Fatal(err)
	}
	if rows != n || distinct != n {
		t.Fatalf("results: %d rows, %d distinct prompts; want %d of each", rows, distinct, n)
	}
	if succeeded+failed != n || succeeded < n*9/10 {
		t.Errorf("results: %d succeeded, %d failed", succeeded, failed)
	}
	if workersSeen != 2 {
		t.Errorf("results were written by %d workers, want 2", workersSeen)
	}
	// Every result has request_log rows for each attempt of its committing
	// delivery, numbered 1..attempts, and its cost is the sum of their costs.
	var mismatched int
	if err := conn.QueryRow(ctx, `
		SELECT count(*) FROM results r
		LEFT JOIN LATERAL (
			SELECT count(*) AS n, max(attempt) AS maxa, coalesce(sum(cost_usd), 0) AS cost
			FROM request_log l
			WHERE l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id AND l.delivery = r.delivery) l ON true
		WHERE r.batch_id = 'e2e' AND (l.n <> r.attempts OR l.maxa <> r.attempts OR l.n = 0)`).Scan(&mismatched); err != nil {
		t.Fatal(err)
	}
	if mismatched != 0 {
		t.Errorf("%d results do not match their request_log rows", mismatched)
	}
	var orphans int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM request_log l WHERE l.batch_id='e2e'
		AND NOT EXISTS (SELECT 1 FROM results r WHERE r.batch_id=l.batch_id AND r.prompt_id=l.prompt_id)`).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Errorf("%d request_log rows belong to no result", orphans)
	}
	var tiers int
	if err := conn.QueryRow(ctx, `SELECT count(DISTINCT tier) FROM results WHERE batch_id='e2e'`).Scan(&tiers); err != nil {
		t.Fatal(err)
	}
	if tiers != 3 {
		t.Errorf("results span %d tiers, want 3", tiers)
	}

	out, err = b.cmd(ctx, "cascadectl", nil, "verify", "e2e").CombinedOutput()
	if err != nil {
		t.Fatalf("cascadectl verify: %v\n%s", err, out)
	}
	out, err = b.cmd(ctx, "cascadectl", nil, "report", "e2e").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "complex") {
		t.Fatalf("cascadectl report: %v\n%s", err, out)
	}
	out, err = b.cmd(ctx, "cascadectl", nil, "export", "e2e", "--format", "csv").Output()
	if err != nil {
		t.Fatalf("cascadectl export: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != n+1 || !strings.Contains(lines[0], "prompt_tier,model_used,attempts,cost_usd,latency_ms") {
		t.Fatalf("export: %d lines, header %q", len(lines), lines[0])
	}
}
