package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// procCPU is the CPU time (user + system) process pid has used so far, read
// from /proc/<pid>/stat (0 where /proc is not readable).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; the fields after it
	// start after its closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	// utime and stime are fields 14 and 15 of stat, 12 and 13 after the
	// name; USER_HZ is 100 on Linux.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// pgSampler follows the CPU time of the Postgres backends of one
// application_name (the process under measurement's connections) while it
// runs: Postgres has no per-backend CPU counter, so it reads each backend's
// /proc/<pid>/stat every 20 ms and keeps the last reading of each (a
// backend's work after its last reading, at most 20 ms of it, is not
// counted). It needs Postgres on this machine.
type pgSampler struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	last map[int]time.Duration
}

func (b *bench) samplePostgres(ctx context.Context, app string) (*pgSampler, error) {
	conn, err := pgx.Connect(ctx, b.base)
	if err != nil {
		return nil, err
	}
	s := &pgSampler{stop: make(chan struct{}), done: make(chan struct{}), last: map[int]time.Duration{}}
	go func() {
		defer close(s.done)
		defer conn.Close(context.Background())
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var pids []int
		for n := 0; ; n++ {
			if n%5 == 0 {
				pids = pids[:0]
				rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, app)
				if err == nil {
					for rows.Next() {
						var pid int
						if rows.Scan(&pid) == nil {
							pids = append(pids, pid)
						}
					}
					rows.Close()
				}
			}
			s.mu.Lock()
			for _, pid := range pids {
				if c := procCPU(pid); c > 0 {
					s.last[pid] = c
				}
			}
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s, nil
}

// total stops the sampler and returns the backends' CPU time.
func (s *pgSampler) total() time.Duration {
	close(s.stop)
	<-s.done
	var t time.Duration
	for _, c := range s.last {
		t += c
	}
	return t
}

// withApp returns the DSN with application_name set.
func withApp(dsn, app string) string {
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "application_name=" + app
}

// perLine formats CPU time per line in µs.
func perLine(d time.Duration, n int) string {
	return fmt.Sprintf("%.1f", float64(d.Microseconds())/float64(n))
}
