package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/natstest"
	"github.com/promptcascade/promptcascade/internal/pgtest"
)

// clusterRoutes: sim models slow enough that the batch is still being worked
// when the stream leader goes, and error-free so that every prompt is
// answered on its first delivery unless the broker interferes.
const clusterRoutes = `
tiers:
  simple:   [sim/quick]
  moderate: [sim/quick]
  complex:  [sim/quick]
models:
  sim/quick:
    latency: 100ms
    timeout: 5s
    error_rate: 0
    rate_limit_rate: 0
    timeout_rate: 0
    capability: 1
    input_cost_per_mtok: 0.15
    output_cost_per_mtok: 0.6
`

// An R3 stream on a 3-node JetStream cluster; three workers, each connected
// to a different node. When a third of the batch is stored, the server
// leading the stream is stopped; once another leads, it is restarted. The
// batch completes with every prompt answered exactly once, and nothing that
// was committed is paid for again. The pause is measured and logged.
func TestClusterStreamLeaderStoppedMidBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	t.Parallel()
	cl := natstest.StartCluster(t, 3)
	b := bundleWith(t, pgtest.Schema(t), cl.Servers[0], "NATS_URL="+cl.URL(), "NATS_STREAM_REPLICAS=3", routesEnv(t, clusterRoutes))
	ctx := within(t, t.Context(), 90*time.Second)

	const n = 3000
	b.enqueueFile(t, ctx, "cl", genPrompts(t, b.root, n))
	js := b.jetStream(t)
	info, err := promptsStream(t, ctx, js).Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 || info.State.Msgs != n {
		t.Fatalf("stream after enqueue: replicas %d, cluster %+v, %d messages; want R3 with %d", info.Config.Replicas, info.Cluster, info.State.Msgs, n)
	}

	// NATS_ACK_WAIT is the default 30s: acks lost with the stopped server
	// come back after it (found answered, acked without a call). With 5s,
	// the new consumer leader redelivered prompts still being worked at once
	// in one run of two, and they were paid twice (see the README).
	var ws []*proc
	for i, s := range cl.Servers {
		ws = append(ws, b.startWorker(t, ctx, fmt.Sprint("w", i+1), "WORKER_EXIT_WHEN_IDLE=true",
			"WORKER_CONCURRENCY=16", "NATS_ACK_WAIT=30s", "NATS_URL="+s.URL()))
	}
	conn := b.pg(t, ctx)
	waitUntil(t, within(t, ctx, 40*time.Second), "a third of the batch stored", func() bool {
		for _, w := range ws {
			if w.exited() {
				t.Fatalf("worker exited early:\n%s", w.out)
			}
		}
		return queryInt(t, ctx, conn, `SELECT count(*) FROM results`) >= n/3
	})
	leader := cl.StreamLeader("PROMPTS")
	if leader == nil {
		t.Fatal("the stream has no leader")
	}
	var stoppedAt time.Time
	if err := conn.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&stoppedAt); err != nil {
		t.Fatal(err)
	}
	done := queryInt(t, ctx, conn, `SELECT count(*) FROM results`)
	stop := time.Now()
	leader.Shutdown()
	next := cl.WaitStreamLeader("PROMPTS", 20*time.Second)
	elected := time.Since(stop)
	time.Sleep(time.Second) // run on two nodes for a moment
	leader.Restart()
	cl.WaitFormed()
	rejoined := time.Since(stop)
	for _, w := range ws {
		w.waitOK(t, 60*time.Second)
	}

	if logs := allOutput(ws); !strings.Contains(logs, "reconnected to nats-server") {
		t.Errorf("no worker reconnected: the stop did not reach a worker's node\n%s", logs)
	}
	r := b.reconcile(t, ctx, "cl", n)
	if r.Succeeded != n {
		t.Errorf("%d of %d prompts succeeded; the models do not fail", r.Succeeded, n)
	}
	if len(r.ExtraOK) > 0 {
		t.Errorf("%d prompts were answered twice: %v", len(r.ExtraOK), r.ExtraOK[:min(len(r.ExtraOK), 10)])
	}
	if done >= n {
		t.Fatal("the whole batch was stored before the leader stopped: the test tested nothing")
	}

	// The pause: the longest time without a commit, before and after the stop
	// (request_log.created_at is each commit's transaction time).
	var before, after float64
	if err := conn.QueryRow(ctx, `
		WITH c AS (SELECT DISTINCT created_at AS t FROM request_log WHERE batch_id = 'cl'),
		     g AS (SELECT t, t - lag(t) OVER (ORDER BY t) AS gap FROM c)
		SELECT coalesce(extract(epoch FROM max(gap) FILTER (WHERE t < $1)), 0),
		       coalesce(extract(epoch FROM max(gap) FILTER (WHERE t >= $1)), 0)
		FROM g`, stoppedAt).Scan(&before, &after); err != nil {
		t.Fatal(err)
	}
	redelivered := queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'cl' AND delivery > 1`)
	t.Logf("stream leader %s stopped with %d of %d stored; %s leads after %s; restarted and rejoined after %s",
		leader.Name(), done, n, next.Name(), elected.Round(time.Millisecond), rejoined.Round(time.Millisecond))
	t.Logf("longest time without a commit: %.3fs after the stop (%.3fs before it); %d results from a redelivery",
		after, before, redelivered)
}

// bundleWith is setup's bundle for a test that brings its own Postgres DSN
// and NATS server (a cluster member, a failover pair): the binaries use dsn
// and nats, then env (later settings win).
func bundleWith(t *testing.T, dsn string, nats *natstest.Server, env ...string) *bundle {
	t.Helper()
	b := &bundle{bin: binaries(t), dsn: dsn, nats: nats}
	_, file, _, _ := runtime.Caller(0)
	b.root = filepath.Dir(filepath.Dir(file))
	b.env = append(append(os.Environ(), "NATS_URL="+nats.URL(), "DATABASE_URL="+dsn, "LOG_LEVEL=info", "ROUTES_FILE="), env...)
	return b
}

// allOutput is the output of every process so far.
func allOutput(ps []*proc) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.out.String())
	}
	return b.String()
}
