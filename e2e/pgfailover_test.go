package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promptcascade/promptcascade/internal/natstest"
	"github.com/promptcascade/promptcascade/internal/pgtest"
)

// Postgres failover under two workers whose DATABASE_URL lists a primary
// and its synchronous standby (host=a,b port=p,s
// target_session_attrs=read-write). Mid-batch the primary crashes and
// comes back (the workers wait, the read-only standby is never written to);
// later it crashes for good and the standby is promoted (the workers move
// to it). Every prompt is answered exactly once, and nothing is acked
// before its commit: the prompts acked while no server takes commits are at
// most those committed before the crash (a worker that acked first and
// committed on a retry would pass every other check here); a commit that
// did not reach the standby would be missing after the promotion.
func TestPostgresFailoverMidBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	t.Parallel()
	primary := pgtest.StartInstance(t)
	standby := pgtest.StartStandby(t, primary)
	primary.SyncStandby()
	dsn := fmt.Sprintf("host=127.0.0.1,127.0.0.1 port=%d,%d user=postgres dbname=postgres sslmode=disable target_session_attrs=read-write connect_timeout=2",
		primary.Port, standby.Port)

	b := bundleWith(t, dsn, natstest.Start(t), routesEnv(t, clusterRoutes))
	ctx := within(t, t.Context(), 2*time.Minute)

	const n = 2000
	b.enqueueFile(t, ctx, "pf", genPrompts(t, b.root, n))
	var ws []*proc
	for i := range 2 {
		// A small commit batch bounds what a worker works ahead of its
		// commits (max(concurrency, committers x batch)): with the default
		// 512, the two could answer the whole batch while a crash holds
		// their commits, and it would be done before the failover.
		ws = append(ws, b.startWorker(t, ctx, fmt.Sprint("w", i+1), "WORKER_EXIT_WHEN_IDLE=true", "WORKER_CONCURRENCY=16", "WORKER_COMMIT_BATCH=16"))
	}
	// stored counts results through the DSN; -1 while no server takes it.
	stored := func() int {
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		conn, err := pgx.Connect(qctx, dsn)
		if err != nil {
			return -1
		}
		defer conn.Close(context.Background())
		var k int
		if err := conn.QueryRow(qctx, `SELECT count(*) FROM results WHERE batch_id = 'pf'`).Scan(&k); err != nil {
			return -1
		}
		return k
	}
	waitStored := func(what string, k int) int {
		var got int
		waitUntil(t, within(t, ctx, 60*time.Second), what, func() bool {
			for _, w := range ws {
				if w.exited() {
					t.Fatalf("worker exited early:\n%s", w.out)
				}
			}
			got = stored()
			return got >= k
		})
		return got
	}

	// acked is how many prompts the workers have acked so far: the stream
	// has work-queue retention, so an acked message is removed from it, and
	// nothing else removes one here (the models do not fail).
	js := b.jetStream(t)
	acked := func() int {
		info, err := promptsStream(t, ctx, js).Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n - int(info.State.Msgs)
	}

	atCrash := waitStored("a quarter of the batch stored", n/4)
	start := time.Now()
	primary.Crash()
	crashed := time.Now()
	time.Sleep(time.Second)
	// No server takes a commit now: whatever is acked was committed before
	// the crash (checked once the batch is done).
	ackedDown := acked()
	primary.Start()
	primary.SyncStandby()
	resumed := waitStored("commits after the primary came back", atCrash+1)
	t.Logf("primary crashed with %d of %d stored, back after %s; first new commit %s after the crash",
		atCrash, n, time.Second, time.Since(start).Round(time.Millisecond))

	atFailover := waitStored("two thirds of the batch stored", 2*n/3)
	start = time.Now()
	primary.Crash()
	crashedForGood := time.Now()
	ackedBeforePromotion := acked()
	promoting := time.Now()
	standby.Promote()
	promoted := time.Since(promoting)
	waitStored("commits on the promoted standby", atFailover+1)
	t.Logf("primary crashed for good with %d stored; standby promoted in %s; first commit on it %s after the crash",
		atFailover, promoted.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	for _, w := range ws {
		w.waitOK(t, 60*time.Second)
	}
	if resumed >= n || atFailover >= n {
		t.Fatal("the batch was done before the failover: the test tested nothing")
	}
	if logs := allOutput(ws); !strings.Contains(logs, "commit failed; retrying") {
		t.Errorf("no worker saw a failed commit: the crashes did not happen under load\n%s", logs)
	}
	r := b.reconcile(t, ctx, "pf", n)
	if r.Succeeded != n {
		t.Errorf("%d of %d prompts succeeded; the models do not fail", r.Succeeded, n)
	}

	// Nothing acked before its commit: the prompts acked while no server
	// took commits are at most those whose result was committed before the
	// crash (request_log.created_at is the committing transaction's start;
	// a transaction begun before the crash either committed before it or
	// was lost with it).
	conn := b.pg(t, ctx)
	committedBefore := func(at time.Time) int {
		return queryInt(t, ctx, conn, `SELECT count(*) FROM results r WHERE r.batch_id = 'pf'
			AND EXISTS (SELECT 1 FROM request_log l WHERE l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id
				AND l.delivery = r.delivery AND l.worker_id IS NOT DISTINCT FROM r.worker_id AND l.created_at < $1)`, at)
	}
	for _, c := range []struct {
		what  string
		acked int
		at    time.Time
	}{
		{"while the primary was down", ackedDown, crashed},
		{"before the standby was promoted", ackedBeforePromotion, crashedForGood},
	} {
		committed := committedBefore(c.at)
		if c.acked > committed {
			t.Errorf("%d prompts acked %s, but only %d results were committed before the crash: a prompt was acked before its commit", c.acked, c.what, committed)
		}
		t.Logf("%s: %d prompts acked, %d results committed before the crash", c.what, c.acked, committed)
	}
	t.Logf("%d prompts answered again after a crash lost their in-flight delivery; %d paid twice", r.CrashRedelivered, len(r.ExtraOK))
}
