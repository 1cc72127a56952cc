package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

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
		table, allDone := statusTable(rows)
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

// statusTable renders one row per batch and reports whether every batch is finished.
func statusTable(rows []store.BatchStatus) (string, bool) {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "batch\ttotal\tdone\tfailed\tqueued\tcost_usd\t")
	allDone := true
	for _, r := range rows {
		if r.Queued() > 0 {
			allDone = false
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.6f\t\n", r.BatchID, r.Total, r.Succeeded, r.Failed, r.Queued(), r.CostUSD)
	}
	tw.Flush()
	return b.String(), allDone
}
