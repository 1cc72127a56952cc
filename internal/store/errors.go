package store

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// IsTransient reports whether err is a database failure that may go away if
// the same operation is retried later: the server is unreachable, restarting
// or shutting down, the connection broke, a statement or lock timed out, or a
// transaction lost a serialization conflict or deadlock. The worker Naks the
// deliveries of a Write that failed transiently instead of failing them.
//
// It classifies by error type and SQLSTATE, never by message text. A context
// deadline counts as transient (the database was too slow); cancellation of
// the caller's own context does not.
//
// Every Store write is idempotent, so retrying after a transient error is
// safe even when it struck during COMMIT and the outcome is unknown.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return transientSQLState(pgErr.Code)
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return true
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	return errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE)
}

// transientSQLState reports whether a server error code is worth a retry.
func transientSQLState(code string) bool {
	switch code {
	case "40001", // serialization_failure
		"40P01", // deadlock_detected
		"55P03", // lock_not_available
		"57014", // query_canceled (statement_timeout)
		"57P01", // admin_shutdown (also pg_terminate_backend)
		"57P02", // crash_shutdown
		"57P03", // cannot_connect_now (starting up, shutting down)
		"57P05", // idle_session_timeout
		"25P03", // idle_in_transaction_session_timeout
		"25006", // read_only_sql_transaction (connected to a standby during failover)
		"58000", // system_error
		"58030": // io_error
		return true
	}
	if len(code) == 5 {
		switch code[:2] {
		case "08", // connection_exception
			"53": // insufficient_resources (too many connections, out of memory, disk full)
			return true
		}
	}
	return false
}
