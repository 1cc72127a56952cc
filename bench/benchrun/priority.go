package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// priority is issue 9's priority row: bin/enqueue queues backlog normal
// prompts, two workers × 1,000 in flight start on them (a 200 ms model),
// and once they are under way bin/enqueue --priority high enqueues a batch
// of high prompts. It reports the time from the start of that enqueue to
// the high batch's first and last answers, and how many normal prompts
// were still unanswered then.
func (b *bench) priority(ctx context.Context, backlog, high int, routes string) error {
	lines, err := b.jsonl(backlog)
	if err != nil {
		return err
	}
	r, err := b.cmd(nil, b.bin+"/enqueue", "--quiet", "--batch", "backlog", lines)
	if err != nil {
		return err
	}
	os.Remove(lines)
	published := r.wall
	file, err := b.demoPrompts(high)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, b.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	countOf := func(batch string) (int, error) {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM results WHERE batch_id = $1`, batch).Scan(&n)
		return n, err
	}

	const workers, slots = 2, 1000
	stop, err := b.startWorkers(routes, slots, "prio", workers)
	if err != nil {
		return err
	}
	defer stop()
	// Under way: a few seconds' worth of normal answers.
	warm := min(10_000, backlog/10)
	if err := waitFor(ctx, 5*time.Minute, func() (bool, error) {
		n, err := countOf("backlog")
		return n >= warm, err
	}); err != nil {
		return fmt.Errorf("priority: waiting for %d normal answers: %w", warm, err)
	}
	enqueued := time.Now()
	r, err = b.cmd(nil, b.bin+"/enqueue", "--quiet", "--batch", "urgent", "--priority", "high", file)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, 10*time.Minute, func() (bool, error) {
		n, err := countOf("urgent")
		return n >= high, err
	}); err != nil {
		return fmt.Errorf("priority: waiting for the high batch's %d answers: %w", high, err)
	}
	if err := stop(); err != nil {
		return err
	}

	var first, last, started time.Time
	var doneAtFirst, doneAtLast int
	err = conn.QueryRow(ctx, `WITH u AS (SELECT min(completed_at) AS f, max(completed_at) AS l FROM results WHERE batch_id = 'urgent')
		SELECT u.f, u.l,
			(SELECT max(s) FROM (SELECT min(started_at) AS s FROM request_log WHERE batch_id = 'urgent' GROUP BY prompt_id) p),
			(SELECT count(*) FROM results WHERE batch_id = 'backlog' AND completed_at <= u.f),
			(SELECT count(*) FROM results WHERE batch_id = 'backlog' AND completed_at <= u.l)
		FROM u`).Scan(&first, &last, &started, &doneAtFirst, &doneAtLast)
	if err != nil {
		return fmt.Errorf("priority: %w", err)
	}
	b.add(fmt.Sprintf("priority: a high batch of %s prompts (bin/enqueue --priority high) behind %s normal prompts, %d workers × %s in flight on a 200 ms model",
		count(high), count(backlog), workers, count(slots)),
		fmt.Sprintf("first high answer %.2fs after its enqueue started, last %.2fs; every high prompt's first call had started by %.2fs (enqueue itself %.2fs); normal prompts still unanswered at the first and last high answers: %s and %s (backlog enqueued at %.0f/s)",
			first.Sub(enqueued).Seconds(), last.Sub(enqueued).Seconds(), started.Sub(enqueued).Seconds(), r.wall.Seconds(),
			count(backlog-doneAtFirst), count(backlog-doneAtLast), float64(backlog)/published.Seconds()))
	return b.purge(ctx)
}

// startWorkers starts n worker processes that run until stopped; stop
// sends each SIGTERM (a drain) and waits for it. It may be called again.
func (b *bench) startWorkers(routes string, slots int, name string, n int) (stop func() error, err error) {
	var cmds []*exec.Cmd
	stop = func() error {
		var first error
		for _, c := range cmds {
			_ = c.Process.Signal(syscall.SIGTERM)
			if err := c.Wait(); err != nil && first == nil {
				first = fmt.Errorf("worker %s: %w", c.Args[0], err)
			}
		}
		cmds = nil
		return first
	}
	for i := range n {
		c := exec.Command(b.bin + "/worker")
		c.Env = append(os.Environ(), "NATS_URL="+b.natsURL, "DATABASE_URL="+b.dsn, "LOG_LEVEL=warn",
			"ROUTES_FILE="+routes, fmt.Sprint("WORKER_CONCURRENCY=", slots), fmt.Sprint("WORKER_ID=", name, "-", i))
		c.Stderr = os.Stderr
		if err := c.Start(); err != nil {
			_ = stop()
			return nil, err
		}
		cmds = append(cmds, c)
	}
	return stop, nil
}

// waitFor polls cond every 100 ms until it holds, fails, or limit passes.
func waitFor(ctx context.Context, limit time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not done after %v", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
