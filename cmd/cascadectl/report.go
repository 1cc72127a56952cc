package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/promptcascade/promptcascade/internal/report"
)

func cmdReport(ctx context.Context, e *env, args []string) (err error) {
	fs := newFlags("report", e)
	format := fs.String("format", "text", "output format: "+strings.Join(report.Formats, ", "))
	html := fs.String("html", "", "also write a self-contained HTML report with charts to this file")
	limit := fs.Int("limit", 20, "misrouted prompts listed per batch (the counts cover all)")
	batch, err := batchArg(fs, args)
	if err != nil {
		return err
	}
	if !slices.Contains(report.Formats, *format) {
		return &exitError{2, fmt.Errorf("--format: %q is not one of %s", *format, strings.Join(report.Formats, ", "))}
	}
	if *limit <= 0 {
		return &exitError{2, fmt.Errorf("--limit: must be a positive number, got %d", *limit)}
	}
	st, err := e.store(ctx)
	if err != nil {
		return err
	}
	r, err := report.Load(ctx, st.Pool(), batch, report.Options{MisroutedLimit: *limit})
	if err != nil {
		return err
	}
	if len(r.Batches) == 0 {
		if batch == "" {
			return &exitError{1, errors.New("no results in any batch yet")}
		}
		return &exitError{1, fmt.Errorf("no results for batch %q", batch)}
	}
	if *html != "" {
		if err := writeHTML(*html, r); err != nil {
			return err
		}
	}
	w := bufio.NewWriter(e.stdout)
	defer func() { err = errors.Join(err, w.Flush()) }()
	return r.Write(w, *format)
}

// writeHTML writes the page to a temporary file beside path and renames it,
// so that a browser never sees half a report.
func writeHTML(path string, r *report.Report) error {
	f, err := os.CreateTemp(dirOf(path), ".report-*.html")
	if err != nil {
		return fmt.Errorf("--html: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()) }()
	bw := bufio.NewWriter(f)
	if err := r.WriteHTML(bw); err != nil {
		f.Close()
		return fmt.Errorf("--html %s: %w", path, err)
	}
	if err := errors.Join(bw.Flush(), f.Chmod(0o644), f.Close()); err != nil {
		return fmt.Errorf("--html %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("--html: %w", err)
	}
	return nil
}

func dirOf(path string) string {
	if i := strings.LastIndexAny(path, `/`); i >= 0 {
		return path[:i+1]
	}
	return "."
}
