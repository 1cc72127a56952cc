package pgtest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/promptcascade/promptcascade/internal/pgtest"
)

// A standby follows its primary synchronously, refuses writes, and takes
// them once promoted after the primary crashed, with every committed row.
func TestInstanceStandbyPromotedAfterCrash(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	primary := pgtest.StartInstance(t)
	standby := pgtest.StartStandby(t, primary)
	primary.SyncStandby()

	p, err := pgx.Connect(ctx, primary.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	if _, err := p.Exec(ctx, `CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, 100)`); err != nil {
		t.Fatal(err)
	}
	s, err := pgx.Connect(ctx, standby.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	_, err = s.Exec(ctx, `INSERT INTO t VALUES (0)`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "25006" {
		t.Fatalf("write on the standby: %v, want read_only_sql_transaction", err)
	}

	primary.Crash()
	standby.Promote()
	var n int
	if err := s.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 100 {
		t.Fatalf("promoted standby has %d rows (%v), want 100", n, err)
	}
	if _, err := s.Exec(ctx, `INSERT INTO t VALUES (101)`); err != nil {
		t.Fatalf("write after promotion: %v", err)
	}
}
