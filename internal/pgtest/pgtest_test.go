package pgtest

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestSchemaIsolatedAndDropped(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("use", func(t *testing.T) {
		dsn := Schema(t)
		conn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if err := conn.QueryRow(t.Context(), `SELECT current_schema()`).Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "pgt_") || !strings.Contains(name, "use") {
			t.Errorf("schema %q", name)
		}
		if _, err := conn.Exec(t.Context(), `CREATE TABLE x (id int)`); err != nil {
			t.Fatal(err)
		}
	})
	conn, err := pgx.Connect(t.Context(), URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if name == "" || n != 0 {
		t.Errorf("schema %q still exists after cleanup", name)
	}
}

func TestSchemaNamesAreUnique(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("TestVeryLong/Name-With Chars", 5)
	a, b := schemaName(long), schemaName(long)
	if a == b || len(a) > 63 || strings.Trim(a, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		t.Errorf("names %q %q", a, b)
	}
}

func TestWithSearchPath(t *testing.T) {
	t.Parallel()
	got, _ := withSearchPath("postgres://u@h:5432/db?sslmode=disable", "s1")
	if got != "postgres://u@h:5432/db?search_path=s1&sslmode=disable" {
		t.Errorf("url: %s", got)
	}
	got, _ = withSearchPath("host=h dbname=db ", "s1")
	if got != "host=h dbname=db search_path=s1" {
		t.Errorf("key=value: %s", got)
	}
}

// fakeTB records a fatal failure the way testing.T does (stopping the
// goroutine) so that the unreachable-server path can be tested.
type fakeTB struct {
	testing.TB
	fatal string
}

func (f *fakeTB) Helper()        {}
func (f *fakeTB) Name() string   { return "TestFake" }
func (f *fakeTB) Cleanup(func()) {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestUnreachableServerFailsTheTest(t *testing.T) {
	t.Parallel()
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		schemaAt(f, "postgres://postgres:hunter2@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	}()
	<-done
	if !strings.Contains(f.fatal, "cannot connect to the test Postgres") || !strings.Contains(f.fatal, "TEST_DATABASE_URL") {
		t.Errorf("failure message = %q", f.fatal)
	}
	if strings.Contains(f.fatal, "hunter2") {
		t.Errorf("failure message shows the password: %q", f.fatal)
	}
}
