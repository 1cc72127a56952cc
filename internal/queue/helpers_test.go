package queue

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/promptcascade/promptcascade/internal/natstest"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// nats.go v1.55 starts this per async-publish context and can leave
		// it waiting on a nil channel after the connection closed (a library
		// goroutine, not ours; seen once in several hundred runs).
		goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"),
	)
}

// logBuffer collects log output; safe for use after the test ended.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

type testBundle struct {
	srv  *natstest.Server
	conn *Conn
	logs *logBuffer
}

// setup starts an embedded server and connects to it with cfg (URL filled
// in); the connection is closed in t.Cleanup.
func setup(t testing.TB, cfg Config, opts ...natstest.Option) *testBundle {
	t.Helper()
	srv := natstest.Start(t, opts...)
	if cfg.URL == "" {
		cfg.URL = srv.URL()
	}
	if cfg.ReconnectWait == 0 {
		cfg.ReconnectWait = 50 * time.Millisecond
	}
	log, logs := newLogger()
	conn, err := Connect(testContext(t), cfg, log)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(conn.Close)
	return &testBundle{srv: srv, conn: conn, logs: logs}
}

func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func job(batch string, i int) prompt.Job {
	return prompt.Job{
		BatchID:    batch,
		ID:         fmt.Sprintf("p%06d", i),
		Prompt:     fmt.Sprintf("Explain item %d in two sentences.", i),
		MaxTokens:  256,
		EnqueuedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// publishN publishes jobs 0..n-1 of batch and waits for their acks.
func publishN(t testing.TB, c *Conn, batch string, n int) Stats {
	t.Helper()
	ctx := testContext(t)
	p := NewPublisher(c, 1024)
	for i := range n {
		if err := p.Publish(ctx, job(batch, i)); err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
	}
	st, err := p.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return st
}

func streamMsgs(t testing.TB, c *Conn) uint64 {
	t.Helper()
	s, err := c.JetStream().Stream(testContext(t), c.Config().Stream)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	info, err := s.Info(testContext(t))
	if err != nil {
		t.Fatalf("stream Info: %v", err)
	}
	return info.State.Msgs
}
