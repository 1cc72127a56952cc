package queue

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/promptcascade/promptcascade/internal/natstest"
)

func TestConnectChecksVersionAndJetStream(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	if v := b.conn.NATS().ConnectedServerVersion(); checkServerVersion(v, "x") != nil {
		t.Fatalf("embedded server %s refused", v)
	}
	if !strings.Contains(b.logs.String(), "connected to nats-server") {
		t.Errorf("no connect log line:\n%s", b.logs)
	}
}

func TestConnectWithoutJetStream(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, natstest.WithoutJetStream())
	_, err := Connect(testContext(t), Config{URL: srv.URL()}, nil)
	if !errors.Is(err, ErrNoJetStream) {
		t.Fatalf("Connect = %v, want ErrNoJetStream", err)
	}
	if !strings.Contains(err.Error(), srv.URL()) || !strings.Contains(err.Error(), "-js") {
		t.Errorf("message %q should name the server and how to fix it", err)
	}
}

func TestConnectUnreachableTimesOut(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	start := time.Now()
	_, err = Connect(testContext(t), Config{URL: "nats://bob:hunter22@" + addr, ConnectTimeout: 700 * time.Millisecond}, nil)
	if err == nil {
		t.Fatal("Connect to a closed port succeeded")
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("Connect took %s with a 700ms timeout", time.Since(start))
	}
	if !strings.Contains(err.Error(), "cannot reach") || !strings.Contains(err.Error(), addr) {
		t.Errorf("message %q should say the server is unreachable and where", err)
	}
	if strings.Contains(err.Error(), "hunter22") {
		t.Errorf("password leaked: %v", err)
	}
}

func TestConnectWaitsForLateServer(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	url := srv.URL()
	srv.Shutdown()
	go func() {
		time.Sleep(300 * time.Millisecond)
		srv.Restart()
	}()
	c, err := Connect(testContext(t), Config{URL: url, ConnectTimeout: 20 * time.Second}, nil)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	c.Close()
}

func TestConnectAuth(t *testing.T) {
	t.Parallel()
	const secret = "hunter22-secret"
	nkeyPub, nkeySeed := natstest.NKeyUser(t)

	cases := []struct {
		name   string
		server []natstest.Option
		cfg    func(srv *natstest.Server) Config
		bad    func(srv *natstest.Server) Config // wrong credentials: must fail fast without leaking
	}{
		{
			name:   "user/password",
			server: []natstest.Option{natstest.WithUser("alice", secret)},
			cfg:    func(s *natstest.Server) Config { return Config{URL: s.URL(), User: "alice", Password: secret} },
			bad:    func(s *natstest.Server) Config { return Config{URL: s.URL(), User: "alice", Password: secret + "x"} },
		},
		{
			name:   "user/password in URL",
			server: []natstest.Option{natstest.WithUser("alice", secret)},
			cfg: func(s *natstest.Server) Config {
				return Config{URL: withUserinfo(s.URL(), url.UserPassword("alice", secret))}
			},
			bad: func(s *natstest.Server) Config {
				return Config{URL: withUserinfo(s.URL(), url.UserPassword("alice", secret+"x"))}
			},
		},
		{
			name:   "token",
			server: []natstest.Option{natstest.WithToken(secret)},
			cfg:    func(s *natstest.Server) Config { return Config{URL: s.URL(), Token: secret} },
			bad:    func(s *natstest.Server) Config { return Config{URL: s.URL(), Token: secret + "x"} },
		},
		{
			name:   "token in URL",
			server: []natstest.Option{natstest.WithToken(secret)},
			cfg:    func(s *natstest.Server) Config { return Config{URL: withUserinfo(s.URL(), url.User(secret))} },
			bad:    func(s *natstest.Server) Config { return Config{URL: withUserinfo(s.URL(), url.User(secret+"x"))} },
		},
		{
			name:   "nkey seed file",
			server: []natstest.Option{natstest.WithNKey(nkeyPub)},
			cfg:    func(s *natstest.Server) Config { return Config{URL: s.URL(), NKeySeedFile: nkeySeed} },
			bad:    func(s *natstest.Server) Config { return Config{URL: s.URL()} },
		},
		{
			name:   "creds file (operator mode)",
			server: []natstest.Option{natstest.WithOperator()},
			cfg:    func(s *natstest.Server) Config { return Config{URL: s.URL(), CredsFile: s.Operator().CredsFile} },
			bad:    func(s *natstest.Server) Config { return Config{URL: s.URL(), User: "alice", Password: secret} },
		},
		{
			name:   "TLS with custom CA",
			server: []natstest.Option{natstest.WithTLS(false)},
			cfg:    func(s *natstest.Server) Config { return Config{URL: s.URL(), TLSCA: s.TLS().CA} },
			bad:    func(s *natstest.Server) Config { return Config{URL: s.URL(), TLSCA: s.TLS().OtherCA} },
		},
		{
			name:   "TLS with client certificate",
			server: []natstest.Option{natstest.WithTLS(true), natstest.WithUser("alice", secret)},
			cfg: func(s *natstest.Server) Config {
				f := s.TLS()
				return Config{URL: s.URL(), TLSCA: f.CA, TLSCert: f.ClientCert, TLSKey: f.ClientKey, User: "alice", Password: secret}
			},
			bad: func(s *natstest.Server) Config { // no client certificate
				return Config{URL: s.URL(), TLSCA: s.TLS().CA, User: "alice", Password: secret}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := natstest.Start(t, c.server...)
			log, logs := newLogger()
			cfg := c.cfg(srv)
			cfg.ReconnectWait = 50 * time.Millisecond
			conn, err := Connect(testContext(t), cfg, log)
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			defer conn.Close()
			// The connection really works for JetStream.
			if _, err := conn.EnsureStream(testContext(t)); err != nil {
				t.Fatalf("EnsureStream: %v", err)
			}
			if st := publishN(t, conn, "auth", 10); st.Published != 10 {
				t.Fatalf("published %+v", st)
			}
			// A restart exercises the reconnect path and its logging.
			srv.Restart()
			waitConnected(t, conn)
			waitLog(t, logs, "reconnected to nats-server")
			conn.Close()

			badCfg := c.bad(srv)
			badCfg.ConnectTimeout = 20 * time.Second // fail fast must not mean "waited for the timeout"
			start := time.Now()
			_, err = Connect(testContext(t), badCfg, log)
			if err == nil {
				t.Fatal("Connect with wrong credentials succeeded")
			}
			if time.Since(start) > 10*time.Second {
				t.Errorf("wrong credentials took %s to fail; should fail at once", time.Since(start))
			}
			for _, out := range []string{err.Error(), logs.String()} {
				if strings.Contains(out, "hunter22") {
					t.Errorf("secret leaked: %s", out)
				}
			}
		})
	}
}

func withUserinfo(raw string, ui *url.Userinfo) string {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	u.User = ui
	return u.String()
}

func waitLog(t testing.TB, logs *logBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log never got %q:\n%s", want, logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitConnected(t testing.TB, c *Conn) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for c.NATS().Status() != nats.CONNECTED {
		if time.Now().After(deadline) {
			t.Fatalf("not reconnected: %v", c.NATS().Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConnectCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Connect(ctx, Config{URL: "nats://127.0.0.1:1", ConnectTimeout: time.Minute}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Connect = %v, want context.Canceled", err)
	}
}
