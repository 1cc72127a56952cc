package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/sim"
	"github.com/promptcascade/promptcascade/internal/providerbatch"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/store"
)

// batchRunner builds the provider batch submitter and poller for the
// routes' batch-mode models; nil when there are none.
func batchRunner(cfg *config.Worker, routes *config.Routes, reg *llm.Registry, cas *cascade.Cascade,
	st *store.Store, qc *queue.Conn, log *slog.Logger) (*providerbatch.Runner, error) {
	var models []providerbatch.Model
	for name, m := range routes.BatchModels() {
		p, id, err := reg.Resolve(name)
		if err != nil {
			return nil, err
		}
		client, ok := p.(providerbatch.Client)
		if !ok {
			return nil, fmt.Errorf("models.%s.batch: provider has no batch API", name)
		}
		if sp, ok := p.(*sim.Provider); ok {
			sp.SetBatch(id, sim.BatchConfig{Delay: m.Batch.SimDelay, ExpireRate: m.Batch.SimExpireRate})
		}
		models = append(models, providerbatch.Model{Name: name, Client: client, Price: m.Price, Limits: providerbatch.Limits{
			MaxRequests: m.Batch.MaxRequests, MaxBytes: m.Batch.MaxBytes, FlushAfter: m.Batch.FlushAfter, PollEvery: m.Batch.PollEvery,
		}})
	}
	if len(models) == 0 {
		return nil, nil
	}
	tick := minPoll(models)
	return providerbatch.New(providerbatch.Config{Models: models, WorkerID: cfg.WorkerID, Tick: tick,
		Hooks: batchFaultHooks(cfg.Fault, log)}, st.Pool(), st, cas, qc, log)
}

// minPoll is the runner's tick: a second, or the shortest poll_every or
// flush_after when that is shorter.
func minPoll(models []providerbatch.Model) time.Duration {
	d := time.Second
	for _, m := range models {
		d = min(d, m.Limits.PollEvery, m.Limits.FlushAfter)
	}
	return d
}

// waitingFunc counts the prompts that wait for a provider batch, for the
// worker's idle check.
func waitingFunc(pool *pgxpool.Pool) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) { return providerbatch.Waiting(ctx, pool) }
}
