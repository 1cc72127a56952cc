package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/promptcascade/promptcascade/internal/natstest"
)

func TestEnsureStreamAndConsumerIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	for i := range 3 {
		s, err := b.conn.EnsureStream(ctx)
		if err != nil {
			t.Fatalf("EnsureStream #%d: %v", i, err)
		}
		cfg := s.CachedInfo().Config
		if cfg.Name != "PROMPTS" || cfg.Retention != jetstream.WorkQueuePolicy || cfg.Storage != jetstream.FileStorage ||
			cfg.Discard != jetstream.DiscardNew || cfg.Duplicates != 2*time.Minute ||
			len(cfg.Subjects) != 1 || cfg.Subjects[0] != "prompts.>" || cfg.MaxMsgs != -1 || cfg.MaxBytes != -1 {
			t.Fatalf("stream config %+v", cfg)
		}
		cons, err := b.conn.EnsureConsumer(ctx)
		if err != nil {
			t.Fatalf("EnsureConsumer #%d: %v", i, err)
		}
		cc := cons.CachedInfo().Config
		if cc.Durable != "workers" || cc.AckPolicy != jetstream.AckExplicitPolicy || cc.AckWait != 30*time.Second ||
			cc.MaxDeliver != 10 || cc.MaxAckPending != 20000 || cc.FilterSubject != "prompts.*" {
			t.Fatalf("consumer config %+v", cc)
		}
		for name, filter := range map[string]string{"workers-high": "prompts.high.*", "workers-low": "prompts.low.*"} {
			c, err := b.conn.JetStream().Consumer(ctx, "PROMPTS", name)
			if err != nil {
				t.Fatalf("consumer %s: %v", name, err)
			}
			if cc := c.CachedInfo().Config; cc.FilterSubject != filter || cc.MaxDeliver != 10 || cc.AckWait != 30*time.Second {
				t.Fatalf("consumer %s config %+v", name, cc)
			}
		}
	}
	names := b.conn.JetStream().StreamNames(ctx)
	var n int
	for range names.Name() {
		n++
	}
	if n != 1 {
		t.Fatalf("%d streams, want 1", n)
	}
}

func TestEnsureStreamAppliesExplicitLimitsOnly(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxMsgs: 500})
	ctx := testContext(t)
	if _, err := b.conn.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}

	// An operator raises MaxBytes by hand; a process that does not set
	// MaxBytes keeps it, one that sets DuplicateWindow changes only that.
	s, _ := b.conn.JetStream().Stream(ctx, "PROMPTS")
	cfg := s.CachedInfo().Config
	cfg.MaxBytes = 1 << 30
	if _, err := b.conn.JetStream().UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	c2, err := Connect(ctx, Config{URL: b.srv.URL(), DuplicateWindow: 5 * time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	s, err = c2.EnsureStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := s.CachedInfo().Config
	if got.MaxBytes != 1<<30 || got.MaxMsgs != 500 || got.Duplicates != 5*time.Minute {
		t.Fatalf("after EnsureStream: MaxBytes=%d MaxMsgs=%d Duplicates=%s", got.MaxBytes, got.MaxMsgs, got.Duplicates)
	}
}

func TestEnsureStreamRefusesIncompatible(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		cfg     jetstream.StreamConfig
		setting string
	}{
		{"retention", jetstream.StreamConfig{Name: "PROMPTS", Subjects: []string{"prompts.>"}, Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage}, "retention"},
		{"storage", jetstream.StreamConfig{Name: "PROMPTS", Subjects: []string{"prompts.>"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.MemoryStorage}, "storage"},
		{"subjects", jetstream.StreamConfig{Name: "PROMPTS", Subjects: []string{"other.>"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage}, "subjects"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{})
			ctx := testContext(t)
			if _, err := b.conn.JetStream().CreateStream(ctx, c.cfg); err != nil {
				t.Fatal(err)
			}
			_, err := b.conn.EnsureStream(ctx)
			var conflict *StreamConflictError
			if !errors.As(err, &conflict) || conflict.Setting != c.setting {
				t.Fatalf("EnsureStream = %v, want conflict on %s", err, c.setting)
			}
			if !strings.Contains(err.Error(), "PROMPTS") {
				t.Errorf("message %q should name the stream", err)
			}
			// Untouched.
			s, _ := b.conn.JetStream().Stream(ctx, "PROMPTS")
			if got := s.CachedInfo().Config; got.Retention != c.cfg.Retention || got.Subjects[0] != c.cfg.Subjects[0] {
				t.Fatalf("stream was changed: %+v", got)
			}
		})
	}
}

func TestEnsureStreamSubjectOverlap(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	if _, err := b.conn.JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"prompts.*"}}); err != nil {
		t.Fatal(err)
	}
	_, err := b.conn.EnsureStream(ctx)
	if err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Fatalf("EnsureStream = %v, want a subject overlap error", err)
	}
}

func TestEnsureConsumerWithoutStream(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	_, err := b.conn.EnsureConsumer(testContext(t))
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("EnsureConsumer = %v, want ErrStreamNotFound", err)
	}
}

func TestEnsureConsumerUpdates(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	if _, err := b.conn.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.conn.EnsureConsumer(ctx); err != nil {
		t.Fatal(err)
	}
	c2, err := Connect(ctx, Config{URL: b.srv.URL(), AckWait: 5 * time.Second, MaxDeliver: 3, MaxAckPending: 100}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	cons, err := c2.EnsureConsumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cc := cons.CachedInfo().Config
	if cc.AckWait != 5*time.Second || cc.MaxDeliver != 3 || cc.MaxAckPending != 100 {
		t.Fatalf("consumer not updated: %+v", cc)
	}
}

// On a cluster the stream gets NATS_STREAM_REPLICAS copies and the placement
// tags; an existing stream with fewer replicas is reported with the command
// that raises them, and left as it is.
func TestEnsureStreamReplicasAndPlacement(t *testing.T) {
	t.Parallel()
	cl := natstest.StartCluster(t, 3)
	ctx := testContext(t)
	connect := func(cfg Config) (*Conn, *logBuffer) {
		t.Helper()
		cfg.URL = cl.URL()
		log, logs := newLogger()
		c, err := Connect(ctx, cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c, logs
	}

	r3, _ := connect(Config{Stream: "R3", SubjectPrefix: "r3", Replicas: 3})
	s, err := r3.EnsureStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(ctx); err != nil || info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("R3 stream: %+v, %v", info, err)
	}

	placed, _ := connect(Config{Stream: "PLACED", SubjectPrefix: "placed", PlacementTags: []string{"node:2"}})
	s, err = placed.EnsureStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(ctx); err != nil || info.Cluster == nil || info.Cluster.Leader != "natstest-2" {
		t.Fatalf("stream placed on node:2: %+v, %v", info, err)
	}

	r1, _ := connect(Config{Stream: "R1", SubjectPrefix: "r1"})
	if _, err := r1.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	again, logs := connect(Config{Stream: "R1", SubjectPrefix: "r1", Replicas: 3})
	s, err = again.EnsureStream(ctx)
	if err != nil {
		t.Fatalf("existing R1 stream with Replicas 3: %v", err)
	}
	if info, err := s.Info(ctx); err != nil || info.Config.Replicas != 1 {
		t.Fatalf("existing stream changed: %+v, %v", info, err)
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, `fix="nats stream edit R1 --replicas 3"`) {
		t.Fatalf("no warning naming the fix:\n%s", out)
	}
}

// TestPermanent: only failures that waiting cannot fix are permanent; a
// broker that is down, restarting or without JetStream for now is not.
func TestPermanent(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return fmt.Errorf("queue: look up stream PROMPTS: %w", err) }
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{wrap(&StreamConflictError{Stream: "PROMPTS", Setting: "retention", Have: "Limits", Want: "WorkQueue"}), true},
		{wrap(nats.ErrConnectionClosed), true},
		{wrap(nats.ErrAuthorization), true},
		{wrap(nats.ErrPermissionViolation), true},
		{wrap(context.DeadlineExceeded), false},
		{wrap(nats.ErrNoResponders), false},
		{wrap(nats.ErrTimeout), false},
		{wrap(jetstream.ErrJetStreamNotEnabled), false},
		{wrap(nats.ErrConnectionReconnecting), false},
	} {
		if got := Permanent(tc.err); got != tc.want {
			t.Errorf("Permanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// A single server cannot hold more than one replica: creating the stream
// fails with the server's reason, and nothing is created.
func TestEnsureStreamReplicasOnSingleServer(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Replicas: 3})
	_, err := b.conn.EnsureStream(testContext(t))
	if err == nil || !strings.Contains(err.Error(), "create stream PROMPTS") || !strings.Contains(err.Error(), "replicas") {
		t.Fatalf("EnsureStream with 3 replicas on one server: %v", err)
	}
	if _, err := b.conn.JetStream().Stream(testContext(t), "PROMPTS"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("stream after the failed create: %v", err)
	}
}

// A consumer made before priorities existed filters prompts.>, which
// overlaps the high and low consumers' filters (a work-queue stream refuses
// that): EnsureConsumer narrows it first, and its queued messages stay.
func TestEnsureConsumerNarrowsPrePriorityConsumer(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	if _, err := b.conn.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	old := b.conn.ConsumerConfig()
	old.FilterSubject = "prompts.>"
	if _, err := b.conn.JetStream().CreateConsumer(ctx, "PROMPTS", old); err != nil {
		t.Fatal(err)
	}
	if _, err := b.conn.JetStream().Publish(ctx, "prompts.old", []byte("x")); err != nil {
		t.Fatal(err)
	}
	cons, err := b.conn.EnsureConsumer(ctx)
	if err != nil {
		t.Fatalf("EnsureConsumer over a pre-priority consumer: %v", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.FilterSubject != "prompts.*" || info.NumPending != 1 {
		t.Fatalf("after EnsureConsumer: filter %q, %d pending; want prompts.* and 1", info.Config.FilterSubject, info.NumPending)
	}
}
