package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// tails is issue 8's tail row: n prompts (the demo's sample, repeated
// under new ids) through bin/enqueue and two bin/worker processes on the
// default routes (sim models with the sim's default fault rates: server
// errors, hung calls, weak answers, sim/claude-haiku's rpm). It reports
// the batch's wall time from its first call to its last answer, the time
// by which 99% of its prompts were answered (the p99 point), their ratio
// (the goal is at most 2), the slowest prompt's attempts, and when the
// workers exited.
func (b *bench) tails(ctx context.Context, n int) error {
	file, err := b.demoPrompts(n)
	if err != nil {
		return err
	}
	if _, err := b.cmd(nil, b.bin+"/enqueue", "--quiet", "--batch", "tails", file); err != nil {
		return err
	}
	env := []string{"WORKER_CONCURRENCY=128", "WORKER_EXIT_WHEN_IDLE=true"}
	start := time.Now()
	ch := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, err := b.cmd(append(env, fmt.Sprint("WORKER_ID=tails-", i)), b.bin+"/worker")
			ch <- err
		}()
	}
	for range 2 {
		if err := <-ch; err != nil {
			return err
		}
	}
	exited := time.Now()
	conn, err := pgx.Connect(ctx, b.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	t, err := tailOf(ctx, conn, "tails")
	if err != nil {
		return err
	}
	if t.answered != n {
		return fmt.Errorf("tails: %d of %d prompts have a result", t.answered, n)
	}
	b.add(fmt.Sprintf("tails: %s prompts (the demo's mix), bin/enqueue + 2 workers × 128 in flight, default routes (sim models, default fault rates)", count(n)),
		fmt.Sprintf("wall %.2fs (first call to last answer); 99%% answered at %.2fs; wall / p99 point %.2f; slowest prompt %s; workers exited %.1fs after the last answer (%.1fs after start)",
			t.wall, t.p99, t.wall/t.p99, t.slowest, exited.Sub(t.last).Seconds(), exited.Sub(start).Seconds()))
	return b.purge(ctx)
}

type batchTail struct {
	answered  int
	wall, p99 float64 // seconds from the batch's first call
	last      time.Time
	slowest   string
}

// tailOf reads a finished batch's tail from Postgres: times are from its
// first call's start (request_log.started_at) to each prompt's answer
// (results.completed_at), both written by the workers' clocks.
func tailOf(ctx context.Context, conn *pgx.Conn, batch string) (batchTail, error) {
	var t batchTail
	err := conn.QueryRow(ctx, `WITH t0 AS (SELECT min(started_at) AS s FROM request_log WHERE batch_id = $1)
		SELECT count(*), extract(epoch FROM max(completed_at) - (SELECT s FROM t0)),
			extract(epoch FROM percentile_disc(0.99) WITHIN GROUP (ORDER BY completed_at) - (SELECT s FROM t0)),
			max(completed_at)
		FROM results WHERE batch_id = $1`, batch).Scan(&t.answered, &t.wall, &t.p99, &t.last)
	if err != nil {
		return t, fmt.Errorf("tail of %s: %w", batch, err)
	}
	// The slowest prompt: the last answered, with every call it made.
	var id, calls string
	var attempts, delivery int
	var latency float64
	err = conn.QueryRow(ctx, `SELECT r.prompt_id, r.attempts, r.delivery, r.latency_ms,
			(SELECT string_agg(format('%s %s %sms', l.model, l.outcome, round(l.latency_ms::numeric)), ', ' ORDER BY l.delivery, l.attempt, l.started_at)
			 FROM request_log l WHERE l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id)
		FROM results r WHERE r.batch_id = $1 ORDER BY r.completed_at DESC LIMIT 1`, batch).Scan(&id, &attempts, &delivery, &latency, &calls)
	if err != nil {
		return t, fmt.Errorf("slowest prompt of %s: %w", batch, err)
	}
	t.slowest = fmt.Sprintf("%s: %d attempts in delivery %d, %.0f ms (%s)", id, attempts, delivery, latency, calls)
	return t, nil
}

// demoPrompts writes n JSONL prompts taken in turn from the demo's sample
// (testdata/prompts.jsonl), ids 0..n-1, so that every tier is used as the
// demo uses it.
func (b *bench) demoPrompts(n int) (string, error) {
	f, err := os.Open(filepath.Join("testdata", "prompts.jsonl"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	var sample []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return "", fmt.Errorf("testdata/prompts.jsonl: %w", err)
		}
		sample = append(sample, m)
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	if len(sample) == 0 {
		return "", fmt.Errorf("testdata/prompts.jsonl: no prompts")
	}
	name := filepath.Join(b.tmp, fmt.Sprint("demo-", n, ".jsonl"))
	out, err := os.Create(name)
	if err != nil {
		return "", err
	}
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	for i := range n {
		m := sample[i%len(sample)]
		m["id"] = strconv.Itoa(i)
		if err := enc.Encode(m); err != nil {
			return "", err
		}
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	return name, out.Close()
}
