// Command ceiling measures the bare pipeline the worker is built on, against
// the same nats-server and Postgres: async publish of n jobs with nats.go's
// PublishMsgAsync (queue.Conn.BarePublish: what enqueue does, without
// reading files or recording ids, and without its publisher's retries; the
// jobs are those enqueue makes of bench/benchrun's input lines, and
// -server-pid adds the CPU time per job of publisher and server), then
// consume + one batched COPY of two rows per message (a result and an
// attempt) + ack, with nothing else (no classify, no model, no existence
// check). The worker's own throughput is judged against these numbers. It
// prints one JSON object.
//
// -publish-only publishes the n jobs and stops there (no consumers, no
// Postgres), as enqueue does into a fresh stream: bench/benchrun measures the
// bare publish this way at each enqueue row's size, because nats-server's
// CPU per message grows with the number of message ids in the stream's
// duplicate window (its garbage collector marks every one of them), so a
// bare publish of 300k jobs is no reference for an enqueue of 10M.
//
//	ceiling -nats nats://127.0.0.1:4222 -db postgres://... -n 200000
//	ceiling -nats nats://127.0.0.1:4222 -publish-only -n 10000000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/promptcascade/promptcascade/bench/internal/proc"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
)

func main() {
	natsURL := flag.String("nats", "nats://127.0.0.1:4222", "nats-server URL")
	db := flag.String("db", "", "Postgres URL (its search_path schema gets two scratch tables)")
	n := flag.Int("n", 200000, "messages")
	batch := flag.Int("batch", 256, "messages per fetch and per COPY")
	serverPID := flag.Int("server-pid", 0, "nats-server's pid, to report its CPU per published job (0: not reported)")
	publishOnly := flag.Bool("publish-only", false, "only publish the n jobs (no consume, no Postgres): the bare publish at an enqueue run's size")
	flag.Parse()
	if err := run(*natsURL, *db, *n, *batch, *serverPID, *publishOnly); err != nil {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		os.Exit(1)
	}
}

func run(natsURL, db string, n, batch, serverPID int, publishOnly bool) error {
	ctx := context.Background()
	cfg := queue.Config{URL: natsURL, Stream: "CEILING", SubjectPrefix: "ceiling", Consumer: "ceiling"}
	qc, err := queue.Connect(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer qc.Close()
	if _, err := qc.EnsureStream(ctx); err != nil {
		return err
	}
	defer func() { _ = qc.JetStream().DeleteStream(ctx, cfg.Stream) }()

	// Publish, into a stream without consumers as enqueue does (the
	// consumers are made after it).
	pub, err := publish(ctx, qc, n, serverPID)
	if err != nil {
		return err
	}
	out := map[string]float64{"publish_per_s": pub.rate, "publish_cpu_us": pub.cpu, "publish_server_cpu_us": pub.serverCPU}
	if publishOnly {
		return json.NewEncoder(os.Stdout).Encode(out)
	}

	cons, err := qc.EnsureConsumer(ctx)
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, db)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `
		DROP TABLE IF EXISTS ceiling_results, ceiling_attempts;
		CREATE TABLE ceiling_results (batch_id text, prompt_id text, response text, PRIMARY KEY (batch_id, prompt_id));
		CREATE TABLE ceiling_attempts (batch_id text, prompt_id text, attempt int, outcome text)`); err != nil {
		return err
	}
	fetch := func(ctx context.Context, n int) ([]queue.Delivery, error) { return qc.Fetch(ctx, cons, n, time.Second) }
	cpu0, server0 := selfCPU(), proc.CPU(serverPID)
	work, err := consume(ctx, fetch, pool, n, batch)
	if err != nil {
		return err
	}
	out["work_per_s"] = work
	out["work_cpu_us"] = float64((selfCPU() - cpu0).Microseconds()) / float64(n)
	if serverPID > 0 {
		out["work_server_cpu_us"] = float64((proc.CPU(serverPID) - server0).Microseconds()) / float64(n)
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// published is what publish measured: jobs per second, and the CPU µs per
// job of this process and of the server.
type published struct{ rate, cpu, serverCPU float64 }

// publish sends n jobs with nats.go's own async publish
// (queue.Conn.BarePublish, at most 4,096 awaiting their ack, as
// bin/enqueue's default) and waits for every ack: the bare publish, with the
// body, subject and Nats-Msg-Id that queue.Publisher gives each job, and
// nothing of its bookkeeping (no retries, no counting).
func publish(ctx context.Context, qc *queue.Conn, n, serverPID int) (published, error) {
	now := time.Now().UTC()
	cpu0, server0 := selfCPU(), proc.CPU(serverPID)
	start := time.Now()
	err := qc.BarePublish(ctx, n, 4096, func(i int) (queue.Message, error) {
		// The job bin/enqueue sends for benchrun's line i (the same prompt,
		// a position), so that both publish messages of one size.
		j := prompt.Job{BatchID: "ceiling", ID: strconv.Itoa(i), Prompt: fmt.Sprintf("What is %d plus %d? Answer briefly.", i, i), Seq: int64(i + 1), EnqueuedAt: now}
		return queue.EncodeJob(j, qc.MessageLimit())
	})
	if err != nil {
		return published{}, err
	}
	return published{
		rate:      float64(n) / time.Since(start).Seconds(),
		cpu:       float64((selfCPU() - cpu0).Microseconds()) / float64(n),
		serverCPU: float64((proc.CPU(serverPID) - server0).Microseconds()) / float64(n),
	}, nil
}

// consume takes the n jobs off the stream with fetch, COPYs two rows per
// job and acks them, and returns the jobs per second.
func consume(ctx context.Context, fetch func(context.Context, int) ([]queue.Delivery, error), pool *pgxpool.Pool, n, batch int) (float64, error) {
	// Two committers, as the worker has.
	start := time.Now()
	batches := make(chan []queue.Delivery, 4)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			for ds := range batches {
				if err := store(ctx, pool, ds); err != nil {
					errs <- err
					return
				}
				for _, d := range ds {
					_ = d.Ack()
				}
			}
		})
	}
	for got := 0; got < n; {
		ds, err := fetch(ctx, batch)
		if err != nil {
			close(batches)
			wg.Wait()
			return 0, err
		}
		got += len(ds)
		batches <- ds
	}
	close(batches)
	wg.Wait()
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func store(ctx context.Context, pool *pgxpool.Pool, ds []queue.Delivery) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	res := make([][]any, 0, len(ds))
	att := make([][]any, 0, len(ds))
	for _, d := range ds {
		var j prompt.Job
		if err := json.Unmarshal(d.Data(), &j); err != nil {
			return err
		}
		res = append(res, []any{j.BatchID, j.ID, "an answer"})
		att = append(att, []any{j.BatchID, j.ID, 1, "ok"})
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ceiling_results"}, []string{"batch_id", "prompt_id", "response"}, pgx.CopyFromRows(res)); err != nil {
		return err
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ceiling_attempts"}, []string{"batch_id", "prompt_id", "attempt", "outcome"}, pgx.CopyFromRows(att)); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// selfCPU is the CPU time (user + system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
