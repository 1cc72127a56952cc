package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/promptcascade/promptcascade/internal/pgtest"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

func TestIsTransientClassifies(t *testing.T) {
	t.Parallel()
	pg := func(code string) error { return fmt.Errorf("store: write: %w", &pgconn.PgError{Code: code}) }
	cases := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("boom"), false},
		{pg("57P01"), true}, // admin_shutdown, pg_terminate_backend
		{pg("57P03"), true}, // cannot_connect_now
		{pg("40001"), true}, // serialization_failure
		{pg("40P01"), true}, // deadlock
		{pg("08006"), true}, // connection_failure
		{pg("53300"), true}, // too_many_connections
		{pg("23505"), false},
		{pg("22P02"), false},
		{pg("42P01"), false},
		{context.DeadlineExceeded, true},
		{fmt.Errorf("x: %w", context.Canceled), false},
		{io.ErrUnexpectedEOF, true},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{fmt.Errorf("x: %w", syscall.ECONNRESET), true},
	}
	for _, c := range cases {
		if got := IsTransient(c.err); got != c.want {
			t.Errorf("IsTransient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestTransientOnTerminatedBackend kills the store's connection the way an
// operator or a restarting server does.
func TestTransientOnTerminatedBackend(t *testing.T) {
	t.Parallel()
	st := setup(t, WithMaxConns(1))
	ctx := t.Context()
	conn, err := st.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid := conn.Conn().PgConn().PID()
	other := open(t, pgtest.URL())
	if _, err := other.Pool().Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `SELECT 1`)
	conn.Release()
	if err == nil {
		t.Fatal("query on a terminated backend succeeded")
	}
	if !IsTransient(err) {
		t.Errorf("IsTransient(%v) = false", err)
	}
	// The pool replaces the connection: the next write works.
	r := res("b", "p", prompt.TierSimple, prompt.StatusSucceeded, 1, 0, att(1, small, prompt.OutcomeOK, 0, 0))
	if _, err := st.Write(ctx, []prompt.Result{r}); err != nil {
		t.Errorf("write after reconnect: %v", err)
	}
}

func TestOpenErrorsHidePassword(t *testing.T) {
	t.Parallel()
	const pw = "s3cr3t-pw"
	for _, dsn := range []string{
		"postgres://user:" + pw + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", // nothing listens on port 1
		"postgres://user:" + pw + "@[::1/db",                                          // unparsable
		"host=127.0.0.1 port=notaport password=" + pw,
	} {
		st, err := Open(t.Context(), dsn)
		if err == nil {
			st.Close()
			t.Errorf("open %q succeeded", dsn)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("error shows the password: %v", err)
		}
	}
	_, err := Open(t.Context(), "postgres://user:"+pw+"@127.0.0.1:1/db?sslmode=disable&connect_timeout=2")
	if !IsTransient(err) {
		t.Errorf("connection refused not transient: %v", err)
	}
}
