// Package natstest runs an embedded nats-server with JetStream for tests.
//
// Each call to Start gives a private server on a random port with its store
// in t.TempDir(); it is shut down in t.Cleanup. Restart stops the server and
// starts it again on the same port with the same store directory, so streams,
// consumers and their messages survive, as they would when an operator
// restarts a real broker. Options add user/password, token, nkey, operator
// (creds file) and TLS (CA, server and client certificates generated at run
// time) authentication.
//
// Restart may run on a goroutine of its own, even while the test ends: the
// test's cleanup waits for a start in progress and shuts its server down, and
// a Restart after the cleanup starts nothing, so no server outlives its test.
package natstest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout bounds how long Start and Restart wait for the server.
const readyTimeout = 10 * time.Second

// Server is one embedded nats-server owned by a test.
type Server struct {
	t        testing.TB
	settings settings
	storeDir string

	mu       sync.Mutex
	srv      *server.Server
	port     int
	tls      *TLSFiles
	op       *Operator
	closed   bool           // the test's cleanup ran: start nothing more
	starting sync.WaitGroup // starts in progress, which the cleanup waits for
}

// errClosed is start's error once the test's cleanup has run.
var errClosed = errors.New("server closed: its test has ended")

type settings struct {
	noJetStream bool
	user, pass  string
	token       string
	nkeys       []string // public nkeys of allowed users
	withTLS     bool
	verify      bool // require client certificates
	operator    bool
	maxPayload  int32

	// Cluster member settings (StartCluster).
	name        string
	clusterName string
	clusterPort int               // -1: random
	routes      func() []*url.URL // evaluated at each start
	tags        []string
}

// Option changes how the server is configured.
type Option func(*settings)

// WithUser requires clients to authenticate with this user and password.
func WithUser(user, password string) Option {
	return func(s *settings) { s.user, s.pass = user, password }
}

// WithToken requires clients to authenticate with this token.
func WithToken(token string) Option {
	return func(s *settings) { s.token = token }
}

// WithNKey allows a user identified by the public nkey (a "U..." key).
// Clients authenticate by signing the server's nonce with the seed.
func WithNKey(publicKey string) Option {
	return func(s *settings) { s.nkeys = append(s.nkeys, publicKey) }
}

// WithTLS serves TLS with a server certificate for 127.0.0.1 and localhost
// signed by a CA generated for this test; see Server.TLS for the files.
// When requireClientCert is true, clients must present a certificate signed
// by that CA (Server.TLS().ClientCert / ClientKey is one).
func WithTLS(requireClientCert bool) Option {
	return func(s *settings) { s.withTLS, s.verify = true, requireClientCert }
}

// WithOperator runs the server in operator (decentralised JWT) mode with one
// JetStream-enabled account and one user; Server.Operator().CredsFile is that
// user's .creds file.
func WithOperator() Option {
	return func(s *settings) { s.operator = true }
}

// WithoutJetStream starts a server with JetStream disabled.
func WithoutJetStream() Option {
	return func(s *settings) { s.noJetStream = true }
}

// WithMaxPayload sets the server's max_payload in bytes.
func WithMaxPayload(n int32) Option {
	return func(s *settings) { s.maxPayload = n }
}

// Start runs a new embedded server and waits until it accepts clients. The
// server is shut down when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{t: t, storeDir: t.TempDir(), port: -1}
	for _, o := range opts {
		o(&s.settings)
	}
	if s.settings.withTLS {
		files, err := GenerateTLS(t.TempDir())
		if err != nil {
			t.Fatalf("natstest: generate TLS files: %v", err)
		}
		s.tls = files
	}
	if s.settings.operator {
		op, err := newOperator(t.TempDir())
		if err != nil {
			t.Fatalf("natstest: create operator: %v", err)
		}
		s.op = op
	}
	if err := s.start(); err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(s.close)
	return s
}

// close is the test's cleanup: no start begins after it, it waits for a start
// in progress (a Restart on another goroutine), then shuts the server down.
// Without the wait, a server that a racing Restart made ready after the
// cleanup had found none running would outlive the test (goleak then reports
// its goroutines).
func (s *Server) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.starting.Wait()
	s.Shutdown()
}

func (s *Server) options() (*server.Options, error) {
	name := "natstest"
	if s.settings.name != "" {
		name = s.settings.name
	}
	o := &server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       s.port,
		NoLog:      true,
		NoSigs:     true,
		JetStream:  !s.settings.noJetStream,
		StoreDir:   s.storeDir,
		MaxPayload: s.settings.maxPayload,
	}
	st := s.settings
	if st.clusterName != "" {
		o.Cluster = server.ClusterOpts{Name: st.clusterName, Host: "127.0.0.1", Port: st.clusterPort, PoolSize: -1}
		o.Routes = st.routes()
		o.Tags = st.tags
		o.JetStreamMaxMemory = 256 << 20
		o.JetStreamMaxStore = 1 << 30
	}
	o.Username, o.Password = st.user, st.pass
	o.Authorization = st.token
	for _, k := range st.nkeys {
		o.Nkeys = append(o.Nkeys, &server.NkeyUser{Nkey: k})
	}
	if s.tls != nil {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
			CertFile: s.tls.ServerCert,
			KeyFile:  s.tls.ServerKey,
			CaFile:   s.tls.CA,
			Verify:   st.verify,
			Timeout:  2,
		})
		if err != nil {
			return nil, fmt.Errorf("server TLS config: %w", err)
		}
		o.TLS = true
		o.TLSVerify = st.verify
		o.TLSConfig = tc
		o.TLSTimeout = 2
	}
	if s.op != nil {
		s.op.configure(o)
	}
	return o, nil
}

func (s *Server) start() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	s.starting.Add(1)
	s.mu.Unlock()
	defer s.starting.Done()
	o, err := s.options()
	if err != nil {
		return err
	}
	srv, err := server.NewServer(o)
	if err != nil {
		return fmt.Errorf("new server: %w", err)
	}
	started := make(chan struct{})
	go func() {
		defer close(started)
		srv.Start()
	}()
	if !srv.ReadyForConnections(readyTimeout) {
		<-started
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("server on port %d not ready within %s", s.port, readyTimeout)
	}
	addr, ok := srv.Addr().(*net.TCPAddr)
	if !ok {
		srv.Shutdown()
		return fmt.Errorf("unexpected listener address %v", srv.Addr())
	}
	// Start returns once everything it starts runs (the listeners are up
	// before that, JetStream's cluster setup may come after): a Shutdown
	// before then could miss goroutines started later.
	<-started
	s.mu.Lock()
	s.srv = srv
	s.port = addr.Port
	s.mu.Unlock()
	return nil
}

// URL is the client URL: nats://127.0.0.1:PORT, or tls://... with WithTLS.
// It carries no credentials.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	scheme := "nats"
	if s.tls != nil {
		scheme = "tls"
	}
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, s.port)
}

// Port is the TCP port the server listens on (stable across Restart).
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// StoreDir is the JetStream store directory.
func (s *Server) StoreDir() string { return s.storeDir }

// TLS returns the generated certificate files, or nil without WithTLS.
func (s *Server) TLS() *TLSFiles { return s.tls }

// Operator returns the operator-mode identities, or nil without WithOperator.
func (s *Server) Operator() *Operator { return s.op }

// Raw returns the running *server.Server (nil while shut down).
func (s *Server) Raw() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Shutdown stops the server and waits until it has stopped. It is safe to
// call more than once.
func (s *Server) Shutdown() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Shutdown()
	srv.WaitForShutdown()
}

// Restart stops the server if it runs and starts it again on the same port
// with the same store directory and settings. It may be called from any
// goroutine; a failure to start again is reported with t.Errorf. After the
// test's cleanup it does nothing.
func (s *Server) Restart() {
	s.t.Helper()
	s.Shutdown()
	// The port was just released; another process could grab it, in which
	// case retrying a few times is all we can do.
	var err error
	for range 20 {
		if err = s.start(); err == nil || errors.Is(err, errClosed) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Errorf("natstest: restart: %v", err)
}
