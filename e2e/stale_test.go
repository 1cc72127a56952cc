package e2e

import (
	"syscall"
	"testing"
	"time"
)

// A worker paused while it waits to retry a rate-limited model loses the
// prompt to another worker (AckWait passes without heartbeats). When it
// resumes it must not pay for another call: its late heartbeat marks what it
// holds as suspect, and before the retry it finds the other worker's result
// and acks without calling.
func TestFaultPausedDuringBackoffDoesNotPayAgain(t *testing.T) {
	b, ctx := setup(t, 45*time.Second)
	b.enqueueLines(t, ctx, "stale", `{"id":"only","prompt":"What is the capital of France?"}`)
	routes := routesEnv(t, `
on_rate_limit: cascade   # sim/limited always answers 429: fall back to sim/open
tiers:
  simple:   [sim/limited, sim/open]
  moderate: [sim/open]
  complex:  [sim/open]
models:
  sim/limited:               # always 429 with a 3 s retry-after
    latency: 0s
    max_retries: 1
    rate_limit_rate: 1.0
    retry_after: 3s
    input_cost_per_mtok: 1
    output_cost_per_mtok: 1
  sim/open:
    latency: 0s
    weak_rate: 0
    error_rate: 0
    rate_limit_rate: 0
    timeout_rate: 0
    input_cost_per_mtok: 1
    output_cost_per_mtok: 1
backoff: {base: 100ms, max: 10s}
cooldown: {failures: 0}
`)
	common := []string{routes, "NATS_ACK_WAIT=1s", "WORKER_EXIT_WHEN_IDLE=true"}
	addr := freeAddr(t)
	paused := b.startWorker(t, ctx, "paused", append(common, "METRICS_ADDR="+addr)...)
	// It holds the prompt, has had its 429 and waits 3 s to retry: stop it
	// there (not after a fixed sleep, which a loaded machine outlasts).
	waitUntil(t, ctx, "the worker to hold the prompt", func() bool {
		n, ok := inFlight(ctx, addr)
		return ok && n == 1
	})
	waitUntil(t, ctx, "the worker's first call to be rate-limited", func() bool {
		time.Sleep(20 * time.Millisecond)
		return series(scrape(t, ctx, addr), "promptcascade_model_rate_limited_total")["model=sim/limited"] == 1
	})
	paused.signal(t, syscall.SIGSTOP)

	conn := b.pg(t, ctx)
	taker := b.startWorker(t, ctx, "taker", common...)
	waitUntil(t, ctx, "the taker to commit the prompt", func() bool {
		time.Sleep(50 * time.Millisecond)
		return queryInt(t, ctx, conn, `SELECT count(*) FROM results WHERE batch_id = 'stale' AND worker_id = 'taker'`) == 1
	})
	time.Sleep(3 * time.Second) // the paused worker's backoff has long run out
	paused.signal(t, syscall.SIGCONT)
	paused.waitOK(t, 20*time.Second)
	taker.waitOK(t, 20*time.Second)

	// The paused worker made exactly one call (the 429 before the pause);
	// its retry and the cascade to sim/open never happened.
	if n := queryInt(t, ctx, conn, `SELECT count(*) FROM request_log WHERE batch_id = 'stale' AND worker_id = 'paused'`); n != 1 {
		t.Fatalf("the paused worker logged %d attempts, want 1 (no call after resuming)\n%s", n, paused.out)
	}
	if n := queryInt(t, ctx, conn, `SELECT count(*) FROM request_log WHERE batch_id = 'stale' AND outcome = 'ok'`); n != 1 {
		t.Fatalf("%d ok answers, want 1", n)
	}
	if got := paused.alreadyDone(t); got != 1 {
		t.Fatalf("paused worker already_done = %d, want 1\n%s", got, paused.out)
	}
	b.ctl(t, within(t, ctx, 20*time.Second), 0, "verify", "stale")
}
