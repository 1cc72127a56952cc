package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/store"
)

// cmdMaintain creates request_log's monthly partitions ahead of time and
// lists them.
func cmdMaintain(ctx context.Context, e *env, args []string) error {
	fs := newFlags("maintain", e)
	ahead := fs.Int("ahead", store.DefaultPartitionsAhead, "months after the current one to create partitions for (0-120)")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *ahead < 0 || *ahead > 120 {
		return &exitError{2, fmt.Errorf("--ahead %d: want 0 to 120 months", *ahead)}
	}
	st, err := e.store(ctx)
	if err != nil {
		return err
	}
	n, err := st.EnsurePartitions(ctx, time.Now(), *ahead)
	if err != nil {
		return err
	}
	ps, err := st.Partitions(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "request_log: created %d partition(s); %d month(s) through %s, plus the default partition\n",
		n, len(ps)-1, lastMonth(ps))
	for _, p := range ps {
		rows := "not analysed yet"
		if p.EstimatedRows >= 0 {
			rows = fmt.Sprintf("about %d rows", p.EstimatedRows)
		}
		if p.Default {
			fmt.Fprintf(e.stdout, "  %-22s %-24s %s\n", p.Name, "months not created yet", rows)
			continue
		}
		fmt.Fprintf(e.stdout, "  %-22s %-24s %s\n", p.Name, p.From.Format("2006-01-02")+" to "+p.To.Format("2006-01-02"), rows)
	}
	return nil
}

func lastMonth(ps []store.Partition) string {
	last := "none"
	for _, p := range ps {
		if !p.Default {
			last = p.From.Format("2006-01")
		}
	}
	return last
}

// cmdPrune removes request_log rows older than --older-than.
func cmdPrune(ctx context.Context, e *env, args []string) error {
	fs := newFlags("prune", e)
	olderThan := fs.String("older-than", "", "remove attempts that started longer ago than this: 90d, 12w, 36h (required)")
	batch := fs.String("batch", "", "only this batch's attempts (deleted in chunks; no partition is dropped)")
	chunk := fs.Int("chunk", store.DefaultPruneChunk, "most rows one DELETE transaction removes")
	dryRun := fs.Bool("dry-run", false, "count what would be removed, remove nothing")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *olderThan == "" {
		return &exitError{2, errors.New("--older-than is required (e.g. --older-than 90d)")}
	}
	age, err := config.ParseAge(*olderThan)
	if err != nil {
		return &exitError{2, fmt.Errorf("--older-than %q: %w", *olderThan, err)}
	}
	if *chunk <= 0 {
		return &exitError{2, fmt.Errorf("--chunk %d: want a positive number of rows", *chunk)}
	}
	st, err := e.store(ctx)
	if err != nil {
		return err
	}
	before := time.Now().Add(-age).UTC()
	rep, err := st.Prune(ctx, store.PruneOptions{Before: before, BatchID: *batch, Chunk: *chunk, DryRun: *dryRun})
	dropped := "dropped"
	if *dryRun {
		dropped = "would drop"
	}
	scope := "request_log"
	if *batch != "" {
		scope = fmt.Sprintf("request_log of batch %s", *batch)
	}
	for _, p := range rep.Dropped {
		fmt.Fprintf(e.stdout, "%s partition %s (%s to %s, %d rows)\n", dropped, p.Name,
			p.From.Format("2006-01-02"), p.To.Format("2006-01-02"), p.Rows)
	}
	if *dryRun {
		fmt.Fprintf(e.stdout, "%s: would remove %d rows that started before %s: %d in %d dropped partition(s), %d deleted in chunks of at most %d\n",
			scope, rep.DroppedRows+rep.Deleted, before.Format(time.RFC3339), rep.DroppedRows, len(rep.Dropped), rep.Deleted, *chunk)
	} else {
		fmt.Fprintf(e.stdout, "%s: removed %d rows that started before %s: %d in %d dropped partition(s), %d deleted in %d chunk(s) of at most %d\n",
			scope, rep.DroppedRows+rep.Deleted, before.Format(time.RFC3339), rep.DroppedRows, len(rep.Dropped), rep.Deleted, rep.Chunks, *chunk)
	}
	return err
}
