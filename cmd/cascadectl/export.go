package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/promptcascade/promptcascade/internal/store"
)

// exportUsage is the export command's synopsis.
const exportUsage = "export [BATCH] --format csv|jsonl|openai-batch [--with-text|--no-text] [--status succeeded|failed] [-o FILE]"

func cmdExport(ctx context.Context, e *env, args []string) (err error) {
	fs := newFlags("export", e)
	format := fs.String("format", "csv", "csv, jsonl or openai-batch")
	withText := fs.Bool("with-text", false, "include prompt, system and response text (default for jsonl and openai-batch)")
	noText := fs.Bool("no-text", false, "leave prompt, system and response text out (default for csv)")
	status := fs.String("status", "", "only prompts with this status: succeeded or failed")
	outFile := fs.String("o", "", "write to FILE (replaced only when the export is complete) instead of stdout")
	batch, err := batchArg(fs, args)
	if err != nil {
		return err
	}
	var write func(context.Context, string, io.Writer, ...store.ExportOption) error
	st, err := e.store(ctx)
	if err != nil {
		return err
	}
	text := *format != "csv"
	switch *format {
	case "csv":
		write = st.ExportCSV
	case "jsonl":
		write = st.ExportJSONL
	case "openai-batch":
		write = st.ExportOpenAIBatch
		if batch == "" {
			return &exitError{2, errors.New("--format openai-batch needs a BATCH (custom_ids are unique only within one)")}
		}
	default:
		return &exitError{2, fmt.Errorf("--format: %q is not csv, jsonl or openai-batch", *format)}
	}
	switch {
	case *withText && *noText:
		return &exitError{2, errors.New("--with-text and --no-text exclude each other")}
	case *withText:
		text = true
	case *noText:
		text = false
	}
	if *status != "" && *status != "succeeded" && *status != "failed" {
		return &exitError{2, fmt.Errorf("--status: %q is not succeeded or failed", *status)}
	}
	if batch != "" {
		ok, err := st.BatchExists(ctx, batch)
		if err != nil {
			return err
		}
		if !ok {
			return &exitError{2, fmt.Errorf("unknown batch %q", batch)}
		}
	}
	opts := []store.ExportOption{store.OnlyStatus(*status)}
	if text {
		opts = append(opts, store.IncludeText())
	}

	out := e.stdout
	var tmp *os.File
	if *outFile != "" {
		// Write next to the target and rename at the end, so that an
		// interrupted export never leaves a file that looks complete.
		tmp, err = os.CreateTemp(filepath.Dir(*outFile), "."+filepath.Base(*outFile)+".*")
		if err != nil {
			return err
		}
		defer func() {
			if err != nil {
				tmp.Close()
				_ = os.Remove(tmp.Name())
			}
		}()
		out = tmp
	}
	w := bufio.NewWriterSize(out, 64<<10)
	if err := write(ctx, batch, w, opts...); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if tmp != nil {
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), *outFile); err != nil {
			return err
		}
	}
	return nil
}
