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
// named natstest-1..n and tagged node:1..n (for placement tests). Servers
// can be stopped and restarted one at a time; a restarted server keeps its
// client port and store, and rejoins through the running ones.
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
	// A clustered server does not start without a route, so the first one
	// routes to itself (nats-server drops a route to itself) on a port
	// found free just before; the others route to the running ones.
	seedPort, err := freePort()
	if err != nil {
		t.Fatalf("natstest: cluster port: %v", err)
	}
	c := &Cluster{t: t}
	for i := range n {
		s := &Server{t: t, storeDir: t.TempDir(), port: -1}
		s.settings = settings{
			name:        fmt.Sprintf("natstest-%d", i+1),
			clusterName: "natstest",
			clusterPort: -1,
			routes:      func() []*url.URL { return c.routesFrom(s) },
			tags:        []string{fmt.Sprintf("node:%d", i+1)},
		}
		if i == 0 {
			s.settings.clusterPort = seedPort
			s.settings.routes = func() []*url.URL {
				if routes := c.routesFrom(s); len(routes) > 0 {
					return routes
				}
				return []*url.URL{{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", seedPort)}}
			}
		}
		if err := s.start(); err != nil {
			t.Fatalf("natstest: cluster server %d: %v", i+1, err)
		}
		t.Cleanup(s.close)
		c.Servers = append(c.Servers, s)
	}
	c.WaitFormed()
	return c
}

// freePort finds a TCP port that is free on 127.0.0.1 now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// routesFrom lists the cluster addresses of the running servers other than
// self: a server (re)starting routes to those, and learns of the others
// through them. Cluster ports are random at every start, so none has to be
// known, or kept free, in advance.
func (c *Cluster) routesFrom(self *Server) []*url.URL {
	var routes []*url.URL
	for _, s := range c.Servers {
		if r := s.Raw(); s != self && r != nil {
			if a := r.ClusterAddr(); a != nil {
				routes = append(routes, &url.URL{Scheme: "nats-route", Host: a.String()})
			}
		}
	}
	return routes
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
// running one, one of them is the JetStream meta leader and it has current
// information on every running server; it fails the test after 30 s.
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
		routed, leader, peers := true, false, 0
		for _, r := range running {
			routed = routed && r.NumRoutes() == len(running)-1 && r.JetStreamEnabled()
			if r.JetStreamIsLeader() {
				leader = true
				// Peers the meta leader has current stats of: only those
				// can be given a stream (or its placement tags matched).
				peers = len(r.JetStreamClusterPeers())
			}
		}
		if routed && leader && peers == len(running) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("natstest: cluster of %d running servers not formed within %s (routed %v, meta leader %v, %d peers current)",
				len(running), clusterReadyTimeout, routed, leader, peers)
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
