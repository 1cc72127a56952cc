package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// clusterReadyTimeout bounds how long StartCluster waits for the routes and
// the JetStream meta leader.
const clusterReadyTimeout = 30 * time.Second

// Cluster is a JetStream cluster of embedded servers in the test's process:
// each on random client and cluster ports with its own store directory,
// routed to every other, named natstest-1..n and tagged node:1..n (for
// placement tests). Servers can be stopped and restarted one at a time;
// a restarted server keeps its ports and store and rejoins.
type Cluster struct {
	t       testing.TB
	Servers []*Server
}

// StartCluster starts n servers (1 to 5) with JetStream clustered and waits
// until they are routed to each other and have elected a meta leader. They
// are shut down when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 || n > 5 {
		t.Fatalf("natstest: cluster of %d servers: want 1 to 5", n)
	}
	ports, err := freePorts(n)
	if err != nil {
		t.Fatalf("natstest: cluster ports: %v", err)
	}
	c := &Cluster{t: t}
	for i := range n {
		var routes []*url.URL
		for j, p := range ports {
			if j != i {
				routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", p)})
			}
		}
		s := &Server{t: t, storeDir: t.TempDir(), port: -1, settings: settings{
			name:        fmt.Sprintf("natstest-%d", i+1),
			clusterName: "natstest",
			clusterPort: ports[i],
			routes:      routes,
			tags:        []string{fmt.Sprintf("node:%d", i+1)},
		}}
		if err := s.start(); err != nil {
			t.Fatalf("natstest: cluster server %d: %v", i+1, err)
		}
		t.Cleanup(s.Shutdown)
		c.Servers = append(c.Servers, s)
	}
	c.WaitFormed()
	return c
}

// freePorts finds n TCP ports that are free on 127.0.0.1 now. The cluster
// ports must be known before any server starts (each routes to the others);
// another process taking one in between makes that server fail to start.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// URL is every server's client URL, separated by commas (what NATS_URL
// takes for a cluster).
func (c *Cluster) URL() string {
	urls := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		urls[i] = s.URL()
	}
	return strings.Join(urls, ",")
}

// WaitFormed waits until every running server is routed to every other
// running one and one of them is the JetStream meta leader; it fails the
// test after 30 s.
func (c *Cluster) WaitFormed() {
	c.t.Helper()
	deadline := time.Now().Add(clusterReadyTimeout)
	for {
		var running []*server.Server
		for _, s := range c.Servers {
			if r := s.Raw(); r != nil {
				running = append(running, r)
			}
		}
		routed, leader := true, false
		for _, r := range running {
			routed = routed && r.NumRoutes() == len(running)-1 && r.JetStreamEnabled()
			leader = leader || r.JetStreamIsLeader()
		}
		if routed && leader {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("natstest: cluster of %d running servers not formed within %s (routed %v, meta leader %v)",
				len(running), clusterReadyTimeout, routed, leader)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StreamLeader returns the running server that leads stream (in the default
// account), or nil when none does right now.
func (c *Cluster) StreamLeader(stream string) *Server {
	for _, s := range c.Servers {
		if r := s.Raw(); r != nil && r.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return s
		}
	}
	return nil
}

// WaitStreamLeader waits up to timeout for stream to have a leader and
// returns it; it fails the test when none is elected in time.
func (c *Cluster) WaitStreamLeader(stream string, timeout time.Duration) *Server {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if s := c.StreamLeader(stream); s != nil {
			return s
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("natstest: stream %s has no leader after %s", stream, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Name is the server's name (natstest-N in a cluster).
func (s *Server) Name() string {
	if s.settings.name == "" {
		return "natstest"
	}
	return s.settings.name
}
