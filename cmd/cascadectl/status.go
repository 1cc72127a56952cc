package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/promptcascade/promptcascade/internal/providerbatch"
	"github.com/promptcascade/promptcascade/internal/store"
)

func cmdStatus(ctx context.Context, e *env, args []string) error {
	fs := newFlags("status", e)
	watch := fs.Bool("watch", false, "refresh until interrupted")
	untilDone := fs.Bool("until-done", false, "with --watch: stop once every prompt of the batch is done or failed")
	interval := fs.Duration("interval", time.Second, "refresh interval for --watch")
	batch, err := batchArg(fs, args)
	if err != nil {
		return err
	}
	st, err := e.store(ctx)
	if err != nil {
		return err
	}
	tty := false
	if f, ok := e.stdout.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	var last string
	drawn := 0
	for {
		rows, err := st.Status(ctx, batch)
		if err != nil {
			return err
		}
		if batch != "" && len(rows) == 0 {
			return &exitError{1, fmt.Errorf("no batch %q", batch)}
		}
		notes := map[string][]store.BatchNote{}
		for _, r := range rows {
			if r.Queued() == 0 {
				continue
			}
			if notes[r.BatchID], err = st.BatchNotes(ctx, r.BatchID); err != nil {
				return err
			}
		}
		load, err := st.LoadByBatch(ctx, batch)
		if err != nil {
			return err
		}
		table, allDone := statusTable(rows, load, notes)
		atProvider, err := providerbatch.WaitingByBatch(ctx, st.Pool())
		if err != nil {
			return err
		}
		if lines := providerLines(rows, atProvider); lines != "" {
			table += lines
			allDone = false
		}
		switch {
		case !*watch:
			fmt.Fprint(e.stdout, table)
		case tty:
			// Redraw in place.
			if drawn > 0 {
				fmt.Fprintf(e.stdout, "\033[%dA\033[J", drawn)
			}
			out := time.Now().Format("15:04:05") + "\n" + table
			fmt.Fprint(e.stdout, out)
			drawn = strings.Count(out, "\n")
		case table != last:
			// Not a terminal (a log, a CI job): print only what changed.
			fmt.Fprint(e.stdout, time.Now().Format("15:04:05")+"\n"+table)
		}
		last = table
		if !*watch || (*untilDone && allDone) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*interval):
		}
	}
}

// progress is what status derives from a BatchStatus.
type progress struct {
	elapsed   time.Duration // since the batch was recorded (until its last result once nothing is queued)
	rate      float64       // prompts done per second over the last minute
	eta       string        // "-" when nothing is queued, "paused", "?" without a rate
	projected float64       // spend so far scaled to every prompt that will be answered
}

func progressOf(r store.BatchStatus) progress {
	var p progress
	if !r.CreatedAt.IsZero() {
		end := r.Now
		if r.Queued() == 0 && !r.LastCompleted.IsZero() {
			end = r.LastCompleted
		}
		p.elapsed = max(end.Sub(r.CreatedAt), 0)
	}
	window := min(p.elapsed, time.Minute).Seconds()
	if window > 0 && r.Queued() > 0 {
		p.rate = float64(r.LastMinute) / window
	}
	switch {
	case r.Queued() == 0:
		p.eta = "-"
	case r.State == store.BatchPaused:
		p.eta = "paused"
	case p.rate > 0:
		p.eta = (time.Duration(float64(r.Queued())/p.rate) * time.Second).Round(time.Second).String()
	default:
		p.eta = "?"
	}
	p.projected = r.SpentUSD
	if d := r.Done(); d > 0 {
		p.projected = r.SpentUSD / float64(d) * float64(d+r.Queued())
	}
	return p
}

// statusTable renders one row per batch and reports whether every batch is
// finished. Its words are verify's: done (= succeeded + failed), queued,
// canceled; in_flight and waiting are the part of queued that workers hold
// (their fresh reports, load), workers how many report the batch.
func statusTable(rows []store.BatchStatus, load map[string]store.BatchLoadSum, workerNotes map[string][]store.BatchNote) (string, bool) {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "batch\tstate\tpriority\ttotal\tdone\tsucceeded\tfailed\tqueued\tin_flight\twaiting\tworkers\tcanceled\telapsed\tprompts/s\teta\tspent_usd\tprojected_usd\tbudget_usd\t")
	allDone := true
	var notes []string
	for _, r := range rows {
		if r.Queued() > 0 {
			allDone = false
		}
		p := progressOf(r)
		state := string(r.State)
		if state == "" {
			state = "-"
		}
		prio := r.Priority
		if prio == "" {
			prio = "-"
		}
		budget := "-"
		if r.BudgetUSD != nil {
			budget = fmt.Sprintf("%.2f", *r.BudgetUSD)
		}
		l := load[r.BatchID]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%.1f\t%s\t%.6f\t%.6f\t%s\t\n", r.BatchID, state, prio, r.Total, r.Done(),
			r.Succeeded, r.Failed, r.Queued(), l.InFlight, l.Waiting, l.Workers, r.Canceled(), p.elapsed.Round(time.Second), p.rate, p.eta, r.SpentUSD, p.projected, budget)
		switch {
		case r.State == store.BatchPaused && strings.HasPrefix(r.StateReason, "budget "):
			notes = append(notes, fmt.Sprintf("batch %s is paused (%s): %d prompt(s) set aside", r.BatchID, r.StateReason, r.Parked))
		case r.State == store.BatchPaused && r.StateReason != "":
			notes = append(notes, fmt.Sprintf("batch %s is paused (%s): %d prompt(s) set aside; `cascadectl resume %s` goes on", r.BatchID, r.StateReason, r.Parked, r.BatchID))
		case r.State == store.BatchPaused:
			notes = append(notes, fmt.Sprintf("batch %s is paused: %d prompt(s) set aside; `cascadectl resume %s` goes on", r.BatchID, r.Parked, r.BatchID))
		}
	}
	tw.Flush()
	for _, r := range rows {
		for _, n := range workerNotes[r.BatchID] {
			notes = append(notes, fmt.Sprintf("batch %s: worker %s %s", r.BatchID, n.WorkerID, n.Note))
		}
	}
	for _, n := range notes {
		fmt.Fprintln(&b, n)
	}
	return b.String(), allDone
}

// providerLines says, per batch shown, how many of its prompts wait for or
// at a provider's batch API, by model ("" when none do). Those prompts are
// neither done nor in the stream's queue.
func providerLines(rows []store.BatchStatus, waiting map[string]map[string]int) string {
	var b strings.Builder
	for _, r := range rows {
		byModel := waiting[r.BatchID]
		if len(byModel) == 0 {
			continue
		}
		models := make([]string, 0, len(byModel))
		total := 0
		for m, n := range byModel {
			models = append(models, m)
			total += n
		}
		sort.Strings(models)
		parts := make([]string, len(models))
		for i, m := range models {
			parts[i] = fmt.Sprintf("%s %d", m, byModel[m])
		}
		fmt.Fprintf(&b, "batch %s: %d prompt(s) wait at provider batches: %s\n", r.BatchID, total, strings.Join(parts, ", "))
	}
	return b.String()
}
