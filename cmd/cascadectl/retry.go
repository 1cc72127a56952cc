package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/store"
)

const retryUsage = "retry BATCH [--status failed|succeeded|any] [--tier T] [--model M] [--outcome O] [--routes FILE]"

// cmdRetry republishes chosen prompts of a batch, from Postgres, as a new
// generation: their results rows move to result_history and the workers
// answer them again (with the batch's new routes, given --routes).
func cmdRetry(ctx context.Context, e *env, args []string) error {
	fs := newFlags("retry", e)
	status := fs.String("status", "failed", "results with this status: failed, succeeded or any")
	tier := fs.String("tier", "", "only prompts of this tier")
	model := fs.String("model", "", "only prompts whose answer (or last try) came from this model")
	outcome := fs.String("outcome", "", "only prompts with an attempt that ended with this outcome (e.g. quality_failed)")
	routesFile := fs.String("routes", "", "give the batch these routes first (a new version; validated as enqueue --routes does)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return &exitError{2, errors.New("usage: cascadectl " + retryUsage)}
	}
	batch := pos[0]
	if err := queue.ValidBatchName(batch); err != nil {
		return &exitError{2, err}
	}
	f := store.RetryFilter{Status: *status, Tier: *tier, Model: *model, Outcome: *outcome}
	switch f.Status {
	case "any":
		f.Status = ""
	case "failed", "succeeded":
	default:
		return &exitError{2, fmt.Errorf("--status: %q is not failed, succeeded or any", *status)}
	}
	st, err := e.store(ctx)
	if err != nil {
		return err
	}
	ok, err := st.BatchExists(ctx, batch)
	if err != nil {
		return err
	}
	if !ok {
		return &exitError{2, fmt.Errorf("unknown batch %q", batch)}
	}
	if m, err := st.BatchControls(ctx); err != nil {
		return err
	} else if m[batch].State == store.BatchCanceled {
		return &exitError{2, fmt.Errorf("batch %s is canceled; workers would drop its prompts", batch)}
	}
	if *routesFile != "" {
		if _, err := e.routes(ctx, *routesFile); err != nil {
			return &exitError{2, fmt.Errorf("--routes: %w", err)}
		}
		yaml, err := os.ReadFile(*routesFile)
		if err != nil {
			return &exitError{2, fmt.Errorf("--routes: %w", err)}
		}
		sum, version, err := st.SetBatchRoutes(ctx, batch, filepath.Base(*routesFile), yaml)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "batch %s: routes %s (sha256 %x, version %d)\n", batch, *routesFile, sum[:6], version)
		// Workers apply the new routes before any retried prompt arrives.
		if err := settle(ctx); err != nil {
			return err
		}
	}
	qc, err := e.queue(ctx)
	if err != nil {
		return err
	}
	rs, err := st.Supersede(ctx, batch, f)
	if errors.Is(err, store.ErrTextNotStored) {
		return &exitError{2, fmt.Errorf("%w: the workers run with STORE_PROMPTS=false, so Postgres has no text to send again; "+
			"enqueue the original file again under a new batch name (or the same prompts' lines only)", err)}
	}
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		fmt.Fprintf(e.stdout, "batch %s: no prompt matches; nothing retried\n", batch)
		return nil
	}
	prio, err := st.BatchPriority(ctx, batch)
	if err != nil {
		return err
	}
	if prio == queue.PriorityNormal {
		prio = ""
	}
	pub := queue.NewPublisher(qc, resumePage)
	for _, r := range rs {
		r.Job.Priority = prio // the batch's subject
		id := fmt.Sprintf("%s/retry-%d", queue.MsgID(r.Job.BatchID, r.Job.ID), r.Generation)
		if err := pub.PublishAs(ctx, r.Job, id); err != nil {
			return fmt.Errorf("publishing retried prompts: %w (their earlier results are in result_history)", err)
		}
	}
	if _, err := pub.Wait(ctx); err != nil {
		return fmt.Errorf("publishing retried prompts: %w (their earlier results are in result_history)", err)
	}
	fmt.Fprintf(e.stdout, "batch %s: %d prompt(s) queued again as generation %d; their earlier results are kept in result_history\n",
		batch, len(rs), rs[0].Generation)
	return nil
}
