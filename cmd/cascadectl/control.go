package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/promptcascade/promptcascade/internal/providerbatch"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/store"
)

// controlBatch parses a command whose only argument is a batch that must exist.
func controlBatch(ctx context.Context, e *env, name string, args []string) (string, *store.Store, error) {
	fs := newFlags(name, e)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return "", nil, err
	}
	if len(pos) != 1 {
		return "", nil, &exitError{2, fmt.Errorf("usage: cascadectl %s BATCH", name)}
	}
	batch := pos[0]
	if err := queue.ValidBatchName(batch); err != nil {
		return "", nil, &exitError{2, err}
	}
	st, err := e.store(ctx)
	if err != nil {
		return "", nil, err
	}
	return batch, st, nil
}

// unknownBatch turns store.ErrUnknownBatch into exit status 2.
func unknownBatch(err error) error {
	if errors.Is(err, store.ErrUnknownBatch) {
		return &exitError{2, err}
	}
	return err
}

// settle waits until every worker has seen a state change (see
// store.ControlSettle).
func settle(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(store.ControlSettle):
		return nil
	}
}

func cmdCancel(ctx context.Context, e *env, args []string) error {
	batch, st, err := controlBatch(ctx, e, "cancel", args)
	if err != nil {
		return err
	}
	marked, err := st.CancelBatch(ctx, batch, "canceled by cascadectl cancel")
	if err != nil {
		return unknownBatch(err)
	}
	qc, err := e.queue(ctx)
	if err != nil {
		return fmt.Errorf("batch %s is canceled in Postgres (workers drop its prompts), but its queued messages were not removed: %w", batch, err)
	}
	purged, err := qc.PurgeBatch(ctx, batch)
	if err != nil {
		return fmt.Errorf("batch %s is canceled in Postgres (workers drop its prompts), but its queued messages were not removed: %w", batch, err)
	}
	if err := settle(ctx); err != nil {
		return err
	}
	// Prompts whose calls were running when the state changed may have
	// been answered since; the others stay canceled.
	fmt.Fprintf(e.stdout, "batch %s canceled: %d queued message(s) removed, %d unanswered prompt(s) marked canceled "+
		"(calls already running may still answer a few); no worker starts a model call for it any more\n", batch, purged, marked)
	return cancelProviderBatches(ctx, e, st, batch)
}

// cancelProviderBatches cancels at the provider the provider batches that
// hold only prompts of canceled batches (with the clients of ROUTES_FILE's
// batch-mode models; the workers' pollers do it too, so a cascadectl
// without the routes or keys only says so), then reports where the
// batch's prompts stand with the provider batches.
func cancelProviderBatches(ctx context.Context, e *env, st *store.Store, batch string) error {
	w, err := providerbatch.BatchItems(ctx, st.Pool(), batch)
	if err != nil || w.Items == 0 {
		return err
	}
	if w.Submitted > 0 {
		clients, _, err := batchClients(ctx, e)
		if err != nil {
			fmt.Fprintf(e.stderr, "cascadectl: cannot reach the batch APIs (%v); the workers cancel the provider batches at their next poll\n", err)
			clients = nil
		} else if len(clients) == 0 {
			fmt.Fprintf(e.stderr, "cascadectl: ROUTES_FILE names no batch-mode model; the workers cancel the provider batches at their next poll\n")
		}
		for _, model := range sortedKeys(clients) {
			done, err := providerbatch.CancelAbandoned(ctx, st.Pool(), model, clients[model], nil)
			for _, c := range done {
				if c.Err != nil {
					fmt.Fprintf(e.stderr, "cascadectl: %s refused to cancel %s: %v\n", model, c.ProviderBatchID, c.Err)
				}
			}
			if err != nil {
				fmt.Fprintf(e.stderr, "cascadectl: %v; the workers try again at their next poll\n", err)
			}
		}
		if w, err = providerbatch.BatchItems(ctx, st.Pool(), batch); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "batch %s: %d prompt(s) went to provider batches, %d still wait (%d at a provider, %d of them in provider batches "+
		"shared with other batches: not stored when those end, what the provider bills is logged); cancelled at the provider: %s\n",
		batch, w.Items, w.Waiting, w.Submitted, w.Shared, providerIDs(w.Cancelled))
	return nil
}

func providerIDs(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func cmdPause(ctx context.Context, e *env, args []string) error {
	batch, st, err := controlBatch(ctx, e, "pause", args)
	if err != nil {
		return err
	}
	prev, err := st.SetBatchState(ctx, batch, store.BatchPaused, "paused by cascadectl pause")
	if err != nil {
		return unknownBatch(err)
	}
	if err := settle(ctx); err != nil {
		return err
	}
	if prev == store.BatchPaused {
		fmt.Fprintf(e.stdout, "batch %s was already paused\n", batch)
		return nil
	}
	fmt.Fprintf(e.stdout, "batch %s paused: no worker starts a model call for it any more; its queued prompts are set aside until `cascadectl resume %s`\n", batch, batch)
	return nil
}

func cmdResume(ctx context.Context, e *env, args []string) error {
	batch, st, err := controlBatch(ctx, e, "resume", args)
	if err != nil {
		return err
	}
	prev, err := st.SetBatchState(ctx, batch, store.BatchRunning, "")
	if err != nil {
		return unknownBatch(err)
	}
	// Wait until no worker parks this batch's messages any more, then put
	// every parked one back on the queue.
	if err := settle(ctx); err != nil {
		return err
	}
	n, err := republishParked(ctx, e, st, batch)
	if err != nil {
		return fmt.Errorf("batch %s is running again, but %w (running resume again is safe)", batch, err)
	}
	if prev == store.BatchRunning && n == 0 {
		fmt.Fprintf(e.stdout, "batch %s was not paused\n", batch)
		return nil
	}
	fmt.Fprintf(e.stdout, "batch %s resumed: %d prompt(s) set aside while paused are queued again\n", batch, n)
	return nil
}

// resumePage is how many parked messages resume republishes per round.
const resumePage = 1000

// republishParked puts every parked message of batch back on the queue,
// deleting each page once the stream has stored it: those kept in
// Postgres, then those kept in the stream (see republishStreamParked).
// The message id of a republished prompt is <batch>/<id>/parked-<when it
// was parked>, so an interrupted resume run again is deduplicated by
// JetStream.
func republishParked(ctx context.Context, e *env, st *store.Store, batch string) (int, error) {
	var qc *queue.Conn
	total := 0
	for {
		ps, err := st.ParkedMessages(ctx, batch, resumePage)
		if err != nil {
			return total, err
		}
		if len(ps) == 0 {
			n, err := republishStreamParked(ctx, e, st, batch)
			return total + n, err
		}
		if qc == nil {
			if qc, err = e.queue(ctx); err != nil {
				return total, err
			}
		}
		pub := queue.NewPublisher(qc, resumePage)
		ids := make([]string, 0, len(ps))
		for _, p := range ps {
			job, err := queue.DecodeJob(p.Payload, qc.MessageLimit())
			if err != nil {
				return total, fmt.Errorf("parked message %s/%s: %w", batch, p.PromptID, err)
			}
			id := fmt.Sprintf("%s/parked-%d", queue.MsgID(job.BatchID, job.ID), p.ParkedAt.UnixMicro())
			if err := pub.PublishAs(ctx, job, id); err != nil {
				return total, err
			}
			ids = append(ids, p.PromptID)
		}
		if _, err := pub.Wait(ctx); err != nil {
			return total, err
		}
		if err := st.Unpark(ctx, batch, ids); err != nil {
			return total, err
		}
		total += len(ids)
	}
}

// republishStreamParked puts batch's messages that workers with
// STORE_PROMPTS=false parked in the stream (queue.ParkedSubject; their
// batch_parked rows hold only the ids) back on the batch's subject, page by
// page: publish, then drop the rows, then delete the parked copies. The
// message id is <batch>/<id>/parked-s<the parked copy's stream sequence>.
func republishStreamParked(ctx context.Context, e *env, st *store.Store, batch string) (int, error) {
	n, err := st.ParkedInStream(ctx, batch)
	if err != nil || n == 0 {
		return 0, err
	}
	qc, err := e.queue(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for after := uint64(0); ; {
		ms, err := qc.ParkedMessages(ctx, batch, after, resumePage)
		if err != nil {
			return total, err
		}
		if len(ms) == 0 {
			break
		}
		pub := queue.NewPublisher(qc, resumePage)
		ids := make([]string, 0, len(ms))
		seqs := make([]uint64, 0, len(ms))
		for _, m := range ms {
			job, err := queue.DecodeJob(m.Data, qc.MessageLimit())
			if err != nil {
				return total, fmt.Errorf("parked message at stream sequence %d: %w", m.Seq, err)
			}
			if err := pub.PublishAs(ctx, job, fmt.Sprintf("%s/parked-s%d", queue.MsgID(job.BatchID, job.ID), m.Seq)); err != nil {
				return total, err
			}
			ids, seqs = append(ids, job.ID), append(seqs, m.Seq)
		}
		if _, err := pub.Wait(ctx); err != nil {
			return total, err
		}
		if err := st.Unpark(ctx, batch, ids); err != nil {
			return total, err
		}
		if err := qc.DeleteParked(ctx, seqs); err != nil {
			return total, err
		}
		total += len(ids)
		after = ms[len(ms)-1].Seq
	}
	if left, err := st.ParkedInStream(ctx, batch); err != nil {
		return total, err
	} else if left > 0 {
		fmt.Fprintf(e.stderr, "cascadectl: %d parked prompt(s) of batch %s are not in the stream yet (a worker may still be setting them aside); run resume again in a minute\n", left, batch)
	}
	return total, nil
}

const budgetUsage = "budget BATCH AMOUNT|none"

// parseBudget reads a budget in USD ("25.00", "$25") or "none".
func parseBudget(s string) (*float64, error) {
	if s == "none" {
		return nil, nil
	}
	v, err := store.ParseUSD(s)
	if err != nil {
		return nil, fmt.Errorf("budget %w, or none", err)
	}
	return &v, nil
}

func cmdBudget(ctx context.Context, e *env, args []string) error {
	fs := newFlags("budget", e)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return &exitError{2, errors.New("usage: cascadectl " + budgetUsage)}
	}
	batch := pos[0]
	if err := queue.ValidBatchName(batch); err != nil {
		return &exitError{2, err}
	}
	usd, err := parseBudget(pos[1])
	if err != nil {
		return &exitError{2, err}
	}
	st, err := e.store(ctx)
	if err != nil {
		return err
	}
	b, resumed, err := st.SetBudget(ctx, batch, usd)
	if err != nil {
		return unknownBatch(err)
	}
	limit := "no budget"
	if b.BudgetUSD != nil {
		limit = fmt.Sprintf("budget $%.6f", *b.BudgetUSD)
	}
	fmt.Fprintf(e.stdout, "batch %s: %s; $%.6f spent, $%.6f held for calls in flight\n", batch, limit, b.SpentUSD, b.HeldUSD)
	switch {
	case resumed:
		if err := settle(ctx); err != nil {
			return err
		}
		n, err := republishParked(ctx, e, st, batch)
		if err != nil {
			return fmt.Errorf("batch %s is running again, but %w (cascadectl resume %s finishes it)", batch, err, batch)
		}
		fmt.Fprintf(e.stdout, "batch %s resumed: %d prompt(s) set aside while paused are queued again\n", batch, n)
	case b.State == store.BatchPaused:
		fmt.Fprintf(e.stdout, "batch %s stays paused (%s)\n", batch, b.Reason)
	}
	return nil
}
