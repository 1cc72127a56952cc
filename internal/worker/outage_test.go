package worker_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/worker"
)

// TestBrokerFaultLongOutageIsWaitedOut (issue 7, bug 5): the broker's
// JetStream stops answering (a server down, restarting or recovering its
// store) for far longer than the recreation attempts that used to end the
// worker. The worker keeps waiting, logs the outage once a minute (on an
// injected clock that runs ten seconds per reading, so the test takes
// seconds), and goes on answering once the broker is back.
func TestBrokerFaultLongOutageIsWaitedOut(t *testing.T) {
	faultTest(t)
	b := setup(t, queue.Config{})
	b.cfg.ExitWhenIdle = false
	b.cfg.RecoverTimeout = 100 * time.Millisecond
	b.cfg.RecoverMaxWait = 20 * time.Millisecond
	var ticks atomic.Int64
	epoch := time.Now()
	b.cfg.Now = func() time.Time { return epoch.Add(time.Duration(ticks.Add(1)) * 10 * time.Second) }
	var logs syncBuf
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	jobs := b.publish("a", 20)
	tp := newTap()
	src := tp.source(queue.NewSource(b.qc, b.cons))
	w := worker.New(b.cfg, src, tp.store(b.st), classify.Default(), b.cascade,
		slog.New(slog.NewTextHandler(&logs, nil)).With("worker", "w"))
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	waitFor(t, func() bool { return w.Stats().Succeeded == int64(len(jobs)) })

	if err := b.nats.Raw().DisableJetStream(); err != nil {
		t.Fatal(err)
	}
	// Three times the old limit (8 attempts, then exit 1).
	const attempts = 24
	deadline := time.After(30 * time.Second)
	for src.recovers.Load() < attempts {
		select {
		case err := <-done:
			t.Fatalf("Run returned during the outage after %d recreation attempts: %v\n%s", src.recovers.Load(), err, logs.String())
		case <-deadline:
			t.Fatalf("only %d recreation attempts in 30s\n%s", src.recovers.Load(), logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	b.nats.Shutdown() // and back with JetStream and its store
	b.nats.Restart()

	more := b.publish("b", 20)
	waitFor(t, func() bool { return w.Stats().Succeeded == int64(len(jobs)+len(more)) })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v after the broker came back", err)
	}

	out := logs.String()
	lines := strings.Count(out, "the broker is not answering")
	tries := src.recovers.Load()
	t.Logf("%d recreation attempts, %d outage log lines", tries, lines)
	if lines < 2 || int64(lines) > tries/3 {
		t.Errorf("%d outage log lines for %d attempts: want one a minute (every ~6 attempts on this clock), not one per attempt\n%s", lines, tries, out)
	}
	if strings.Contains(out, "giving up") {
		t.Errorf("the worker gave up on a broker that was down:\n%s", out)
	}
	if w.Stats().Recovered == 0 {
		t.Error("no recovery counted: the outage did not reach the recreation path")
	}
	reconcile(t, b.dsn, append(jobs, more...), tp)
}
