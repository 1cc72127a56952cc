package natstest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/promptcascade/promptcascade/internal/natstest"
)

// An R3 stream on the cluster survives its leader's stop: another server
// leads it with every message, and the stopped one rejoins on its ports.
func TestClusterStreamSurvivesLeaderStop(t *testing.T) {
	t.Parallel()
	c := natstest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Replicas: 3, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := js.Publish(ctx, fmt.Sprintf("s.%d", i), []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	leader := c.WaitStreamLeader("S", 10*time.Second)
	port := leader.Port()
	leader.Shutdown()
	next := c.WaitStreamLeader("S", 20*time.Second)
	if next == leader {
		t.Fatal("the stopped server still leads")
	}
	// The client may have been connected to the stopped server; a request
	// can fail while it reconnects and the new leader settles.
	var info *jetstream.StreamInfo
	for info == nil || info.State.Msgs != 10 {
		if ctx.Err() != nil {
			t.Fatalf("stream after the leader stopped: %+v, %v", info, err)
		}
		var s jetstream.Stream
		if s, err = js.Stream(ctx, "S"); err == nil {
			info = s.CachedInfo()
		}
		time.Sleep(20 * time.Millisecond)
	}
	leader.Restart()
	if leader.Port() != port {
		t.Fatalf("restarted on port %d, was %d", leader.Port(), port)
	}
	c.WaitFormed()
}
