package worker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/worker"
)

// shortTxStore stands for a database that ends every transaction that runs
// long (connections killed every 100 ms on a loaded machine, a statement
// timeout): a Write of more than max results fails with the error of a
// terminated backend, before anything is written.
type shortTxStore struct {
	worker.Store
	max   int
	mu    sync.Mutex
	cut   int   // Writes refused
	sizes []int // sizes of the Writes that went through
}

func (s *shortTxStore) Write(ctx context.Context, rs []prompt.Result) ([]bool, error) {
	s.mu.Lock()
	if len(rs) > s.max {
		s.cut++
		s.mu.Unlock()
		return nil, &pgconn.PgError{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command"}
	}
	s.sizes = append(s.sizes, len(rs))
	s.mu.Unlock()
	return s.Store.Write(ctx, rs)
}

// A commit batch that fails transiently is retried in halves until the
// pieces fit, so a database that cuts long transactions does not stall a
// large batch forever; every prompt is stored once and acked after it.
func TestCommitSplitsWhenLongTransactionsFail(t *testing.T) {
	b := setup(t, queue.Config{})
	b.cfg.Concurrency = 64
	b.cfg.CommitInterval = 200 * time.Millisecond // large batches form
	jobs := b.publish("b1", 300)
	tp := newTap()
	st := &shortTxStore{Store: tp.store(b.st), max: 8}
	w := b.faultWorker(t, "w", tp.source(queue.NewSource(b.qc, b.cons)), st)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runAll(t, ctx, w)

	reconcile(t, b.dsn, jobs, tp)
	b.queueEmpty(t)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.cut == 0 {
		t.Fatal("no commit had more than 8 prompts: the test did not test splitting")
	}
	stored := 0
	for _, n := range st.sizes {
		stored += n
	}
	if stored != len(jobs) {
		t.Errorf("%d results written in %d commits, want %d (each once)", stored, len(st.sizes), len(jobs))
	}
	t.Logf("%d commits refused, %d went through", st.cut, len(st.sizes))
}
