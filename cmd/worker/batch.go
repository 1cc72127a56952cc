package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/providerbatch"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/store"
	"github.com/promptcascade/promptcascade/internal/wire"
)

// batchRunner builds the provider batch submitter and poller for the
// routes' batch-mode models; nil when there are none.
func batchRunner(cfg *config.Worker, routes *config.Routes, reg *llm.Registry, cas *cascade.Cascade,
	st *store.Store, qc *queue.Conn, log *slog.Logger) (*providerbatch.Runner, error) {
	models, err := wire.BatchModels(routes, reg)
	if err != nil || len(models) == 0 {
		return nil, err
	}
	// The runner's tick: a second, or the shortest poll_every or
	// flush_after when that is shorter.
	tick := time.Second
	for _, m := range models {
		tick = min(tick, m.Limits.PollEvery, m.Limits.FlushAfter)
	}
	return providerbatch.New(providerbatch.Config{Models: models, WorkerID: cfg.WorkerID, Tick: tick,
		Hooks: batchFaultHooks(cfg.Fault, log)}, st.Pool(), st, cas, qc, log)
}

// waitingFunc counts the prompts that wait for a provider batch, for the
// worker's idle check.
func waitingFunc(pool *pgxpool.Pool) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) { return providerbatch.Waiting(ctx, pool) }
}
