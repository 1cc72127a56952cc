package natstest_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/promptcascade/promptcascade/internal/natstest"
)

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
