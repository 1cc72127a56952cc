package main

import (
	"context"
	"fmt"
	"github.com/promptcascade/promptcascade/bench/internal/proc"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

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
				if c := proc.CPU(pid); c > 0 {
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
