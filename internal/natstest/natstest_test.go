package natstest_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/promptcascade/promptcascade/internal/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRestartKeepsStreamsAndPort(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := nats.Connect(srv.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s.1", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	port, url := srv.Port(), srv.URL()
	srv.Restart()
	if srv.Port() != port || srv.URL() != url {
		t.Fatalf("restart moved the server from %s to %s", url, srv.URL())
	}
	for nc.Status() != nats.CONNECTED {
		if ctx.Err() != nil {
			t.Fatal("client did not reconnect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s, err := js.Stream(ctx, "S")
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("stream has %d messages after restart, want 1", n)
	}
	srv.Shutdown()
	srv.Shutdown() // idempotent
	if srv.Raw() != nil {
		t.Fatal("Raw() after Shutdown should be nil")
	}
}

func TestTLSFiles(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, natstest.WithTLS(true))
	f := srv.TLS()
	for _, p := range []string{f.CA, f.OtherCA, f.ServerCert, f.ServerKey, f.ClientCert, f.ClientKey} {
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
	}
	nc, err := nats.Connect(srv.URL(), nats.RootCAs(f.CA), nats.ClientCert(f.ClientCert, f.ClientKey))
	if err != nil {
		t.Fatalf("TLS connect: %v", err)
	}
	nc.Close()
	if _, err := nats.Connect(srv.URL(), nats.RootCAs(f.CA)); err == nil {
		t.Fatal("connected without the required client certificate")
	}
}

func TestWithoutJetStream(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, natstest.WithoutJetStream())
	if srv.Raw().JetStreamEnabled() {
		t.Fatal("JetStream is on")
	}
}

// A Restart on a goroutine of its own that is still starting the server when
// the test ends must not leave that server running: the cleanup waits for it
// (this is what made goleak report nats-server goroutines in the queue tests).
func TestRestartRacingCleanupLeavesNoServer(t *testing.T) {
	var (
		port int
		done = make(chan struct{})
	)
	t.Run("ends while a restart is under way", func(t *testing.T) {
		srv := natstest.Start(t)
		port = srv.Port()
		srv.Shutdown()
		go func() {
			defer close(done)
			srv.Restart() // takes a while; the subtest's cleanup runs meanwhile
		}()
	})
	<-done
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("a server still listens on port %d after its test ended", port)
	}
}

// After the test's cleanup, Restart starts nothing and reports nothing.
func TestRestartAfterCleanupIsANoOp(t *testing.T) {
	var srv *natstest.Server
	t.Run("owner", func(t *testing.T) { srv = natstest.Start(t) })
	srv.Restart()
	if srv.Raw() != nil {
		t.Fatal("Restart after the test's cleanup started a server")
	}
}
