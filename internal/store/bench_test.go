package store

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// BenchmarkWrite commits batches of 256 results with 1 to 3 attempts each
// (about 2 request_log rows per result), the worker's hot path. rows/s counts
// results plus request_log rows; results/s the prompts.
func BenchmarkWrite(b *testing.B) {
	st := setup(b)
	batch, nlog := benchBatch()
	benchWrites(b, st, batch, nlog)
}

// BenchmarkWriteWorker commits batches of 256 results of one ok attempt
// each, the shape of a worker's commits at sim latency 0.
func BenchmarkWriteWorker(b *testing.B) {
	st := setup(b)
	batch := workerBatch()
	benchWrites(b, st, batch, len(batch))
}

// workerBatch is 256 results of one ok attempt each, the shape of a
// worker's commits at sim latency 0.
func workerBatch() []prompt.Result {
	batch := make([]prompt.Result, 256)
	text := strings.Repeat("Explain the difference between a process and a thread. ", 4)
	for i := range batch {
		batch[i] = res("bench", "", prompt.TierSimple, prompt.StatusSucceeded, 1, 150*time.Millisecond,
			att(1, small, prompt.OutcomeOK, 0.00012345, 150*time.Millisecond))
		batch[i].Job.Prompt, batch[i].Response = text, text+text
	}
	return batch
}

// benchWrites commits batch once per iteration under fresh ids and reports
// the Postgres backends' CPU and the rows written (nlog request_log rows per
// batch).
func benchWrites(b *testing.B, st *Store, batch []prompt.Result, nlog int) {
	b.Helper()
	cpu := startBackendCPU(b, st)
	for it := 0; b.Loop(); it++ {
		for i := range batch {
			batch[i].Job.ID = fmt.Sprintf("%d-%d", it, i)
		}
		if _, err := st.Write(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b, len(batch))
	reportRows(b, len(batch), nlog)
}

// backendCPU sums the CPU time of the Postgres backends of a Store's pool
// (from /proc/<pid>/schedstat: Postgres runs on this machine in the test
// setup), so that a benchmark can report Postgres CPU per result whatever
// else the shared machine runs. Without /proc access it reports nothing.
type backendCPU struct {
	st    *Store
	start map[uint32]int64 // backend pid: CPU ns when the benchmark began
}

func startBackendCPU(b *testing.B, st *Store) *backendCPU {
	b.Helper()
	// One write first, so that the measured loop starts on warm connections.
	warm, _ := benchBatch()
	for i := range warm {
		warm[i].Job.ID = fmt.Sprintf("warm-%d", i)
	}
	if _, err := st.Write(b.Context(), warm); err != nil {
		b.Fatal(err)
	}
	c := &backendCPU{st: st, start: map[uint32]int64{}}
	for _, pid := range c.pids(b) {
		c.start[pid] = schedNS(pid)
	}
	b.ResetTimer()
	return c
}

func (c *backendCPU) pids(b *testing.B) []uint32 {
	b.Helper()
	var pids []uint32
	for _, conn := range c.st.pool.AcquireAllIdle(context.Background()) {
		pids = append(pids, conn.Conn().PgConn().PID())
		conn.Release()
	}
	return pids
}

// report adds pg-µs/result: the backends' CPU since the start per result.
func (c *backendCPU) report(b *testing.B, perOp int) {
	b.Helper()
	b.StopTimer()
	var ns int64
	for _, pid := range c.pids(b) {
		now := schedNS(pid)
		if now < 0 {
			return
		}
		ns += now - c.start[pid] // a backend started during the loop counts whole
	}
	b.ReportMetric(float64(ns)/1e3/float64(b.N*perOp), "pg-µs/result")
}

// schedNS is the CPU time in ns that process pid has run, or -1.
func schedNS(pid uint32) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	if err != nil {
		return -1
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return -1
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// BenchmarkWriteParallel is BenchmarkWrite with 4 concurrent writers (as a
// worker committing from several goroutines): commits share WAL flushes.
func BenchmarkWriteParallel(b *testing.B) {
	st := setup(b, WithMaxConns(4))
	var next atomic.Int64
	_, nlog := benchBatch()
	b.SetParallelism(2) // 2 x GOMAXPROCS writers
	cpu := startBackendCPU(b, st)
	b.RunParallel(func(pb *testing.PB) {
		batch, _ := benchBatch()
		for pb.Next() {
			it := next.Add(1)
			for i := range batch {
				batch[i].Job.ID = fmt.Sprintf("%d-%d", it, i)
			}
			if _, err := st.Write(context.Background(), batch); err != nil {
				b.Error(err)
				return
			}
		}
	})
	cpu.report(b, 256)
	reportRows(b, 256, nlog)
}

func reportRows(b *testing.B, size, nlog int) {
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N*(size+nlog))/secs, "rows/s")
	b.ReportMetric(float64(b.N*size)/secs, "results/s")
}

// benchBatch is 256 succeeded results with 1, 2 or 3 attempts each.
func benchBatch() ([]prompt.Result, int) {
	const size = 256
	text := strings.Repeat("Explain the difference between a process and a thread. ", 4)
	models := []string{small, medium, large}
	batch := make([]prompt.Result, size)
	nlog := 0
	for i := range batch {
		n := 1 + i%3
		atts := make([]prompt.Attempt, n)
		for j := range atts {
			out := prompt.OutcomeQualityFailed
			if j == n-1 {
				out = prompt.OutcomeOK
			}
			atts[j] = att(j+1, models[j], out, 0.00012345, 150*time.Millisecond)
		}
		r := res("bench", "", prompt.TierSimple, prompt.StatusSucceeded, 1, 150*time.Millisecond, atts...)
		r.Job.Prompt = text
		r.Response = text + text
		batch[i] = r
		nlog += n
	}
	return batch, nlog
}
