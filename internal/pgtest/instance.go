package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Instance is a Postgres server of the test's own, run from the installed
// binaries (initdb, pg_ctl) in a temporary directory on a free port of
// 127.0.0.1, with trust authentication: a test can stop, crash, restart and
// promote it, which it cannot do to the machine's shared server. It is
// stopped and removed when the test ends.
//
// The binaries come from PG_BINDIR, else the newest
// /usr/lib/postgresql/*/bin. Postgres refuses to run as root: as root, the
// instance runs as the "postgres" user.
type Instance struct {
	t    testing.TB
	Dir  string // data directory
	Port int
	bin  string
	cred *syscall.Credential

	mu      sync.Mutex
	running bool
}

var instanceConf = `
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
max_connections = 60
shared_buffers = 16MB
wal_level = replica
max_wal_senders = 4
hot_standby = on
fsync = off
full_page_writes = off
logging_collector = off
# A standby reconnects to a restarted primary within 0.1 s, not 5 s (the
# default): a synchronous commit waits no longer for it than the restart.
wal_retrieve_retry_interval = 100ms
`

// StartInstance initialises and starts a new primary.
func StartInstance(t testing.TB) *Instance {
	t.Helper()
	in := newInstance(t)
	in.run("initdb", "-D", in.Dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	in.writeConf()
	in.Start()
	return in
}

// StartStandby makes a streaming replica of primary (pg_basebackup -R) and
// starts it; it is read-only until promoted.
func StartStandby(t testing.TB, primary *Instance) *Instance {
	t.Helper()
	in := newInstance(t)
	if err := os.Remove(in.Dir); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	in.run("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(primary.Port), "-U", "postgres",
		"-D", in.Dir, "-R", "-X", "stream", "--no-sync")
	in.writeConf()
	in.Start()
	return in
}

func newInstance(t testing.TB) *Instance {
	t.Helper()
	bin := os.Getenv("PG_BINDIR")
	if bin == "" {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) < version(dirs[j]) })
		if len(dirs) > 0 {
			bin = dirs[len(dirs)-1]
		}
	}
	if _, err := os.Stat(filepath.Join(bin, "pg_ctl")); err != nil {
		t.Fatalf("pgtest: no Postgres server binaries (pg_ctl) in %q; install postgresql or set PG_BINDIR", bin)
	}
	in := &Instance{t: t, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("pgtest: running as root, and there is no postgres user to run the server as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		in.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// Not t.TempDir: its parent is private to root.
	root, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	in.Dir = filepath.Join(root, "data")
	if err := os.Mkdir(in.Dir, 0o700); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if in.cred != nil {
		for _, d := range []string{root, in.Dir} {
			if err := os.Chown(d, int(in.cred.Uid), int(in.cred.Gid)); err != nil {
				t.Fatalf("pgtest: %v", err)
			}
		}
	}
	in.Port, err = freePort()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		in.stop("immediate")
		_ = os.RemoveAll(root)
	})
	return in
}

func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (in *Instance) writeConf() {
	in.t.Helper()
	f, err := os.OpenFile(filepath.Join(in.Dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		in.t.Fatalf("pgtest: %v", err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, instanceConf, in.Port, filepath.Dir(in.Dir)); err != nil {
		in.t.Fatalf("pgtest: %v", err)
	}
}

// run runs one of the server binaries to its end (as the postgres user when
// root) and fails the test on error, with its output.
func (in *Instance) run(name string, args ...string) {
	in.t.Helper()
	if out, err := in.exec(name, args...); err != nil {
		in.t.Fatalf("pgtest: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func (in *Instance) exec(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, filepath.Join(in.bin, name), args...)
	c.Dir = filepath.Dir(in.Dir)
	if in.cred != nil {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: in.cred}
	}
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	return out.Bytes(), err
}

// Start starts the server and waits until it accepts connections.
func (in *Instance) Start() {
	in.t.Helper()
	in.run("pg_ctl", "-D", in.Dir, "-l", filepath.Join(filepath.Dir(in.Dir), "server.log"), "-w", "-t", "60", "start")
	in.mu.Lock()
	in.running = true
	in.mu.Unlock()
}

// Crash stops the server the way a power cut or kill -9 would (pg_ctl stop
// -m immediate: no shutdown checkpoint, clients cut off at once).
func (in *Instance) Crash() {
	in.t.Helper()
	if err := in.stop("immediate"); err != nil {
		in.t.Fatalf("pgtest: crash: %v", err)
	}
}

func (in *Instance) stop(mode string) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.running {
		return nil
	}
	if out, err := in.exec("pg_ctl", "-D", in.Dir, "-m", mode, "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop -m %s: %w\n%s", mode, err, out)
	}
	in.running = false
	return nil
}

// Promote turns a standby into a primary and waits until it accepts writes.
func (in *Instance) Promote() {
	in.t.Helper()
	in.run("pg_ctl", "-D", in.Dir, "-w", "-t", "60", "promote")
}

// Reload makes the server re-read its configuration (after SetConf).
func (in *Instance) Reload() {
	in.t.Helper()
	in.run("pg_ctl", "-D", in.Dir, "reload")
}

// SetConf appends settings to postgresql.conf; Reload or a restart applies
// them.
func (in *Instance) SetConf(lines ...string) {
	in.t.Helper()
	f, err := os.OpenFile(filepath.Join(in.Dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		in.t.Fatalf("pgtest: %v", err)
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, strings.Join(lines, "\n")); err != nil {
		in.t.Fatalf("pgtest: %v", err)
	}
}

// DSN is a key=value connection string for the instance's postgres
// database.
func (in *Instance) DSN() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", in.Port)
}

// Log returns the server's log so far (for a failing test's message).
func (in *Instance) Log() string {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(in.Dir), "server.log"))
	return string(b)
}

// SyncStandby makes the primary wait for a standby's confirmation at every
// commit (synchronous_standby_names = '*') and returns once a standby
// replicates synchronously: from then on a crash of the primary loses no
// commit that a client saw succeed.
func (in *Instance) SyncStandby() {
	in.t.Helper()
	in.SetConf("synchronous_standby_names = '*'")
	in.Reload()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, in.DSN())
	if err != nil {
		in.t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(context.Background())
	for {
		var state string
		if err := conn.QueryRow(ctx, `SELECT coalesce(max(sync_state), '') FROM pg_stat_replication`).Scan(&state); err != nil {
			in.t.Fatalf("pgtest: no synchronous standby: %v", err)
		}
		if state == "sync" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
