package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/promptcascade/promptcascade/internal/labels"
	"github.com/promptcascade/promptcascade/internal/store"
)

func cmdLabels(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "import" {
		return &exitError{2, errors.New("want: labels import [--dataset NAME] [--format auto|csv|jsonl] FILE [FILE ...]")}
	}
	fs := newFlags("labels import", e)
	dataset := fs.String("dataset", "", "dataset name the labels are stored under (default: the file's base name)")
	format := fs.String("format", "auto", "auto, csv (RouteLLM evaluation layout) or jsonl")
	files, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return &exitError{2, fmt.Errorf("no FILE given")}
	}
	if *dataset != "" && len(files) > 1 {
		return &exitError{2, fmt.Errorf("--dataset names one file's labels; got %d files", len(files))}
	}
	f, err := parseLabelsFormat(*format)
	if err != nil {
		return err
	}
	sets, bad, err := readLabelFiles(e, files, f)
	if err != nil {
		return err
	}
	st, err := e.store(ctx)
	if err != nil {
		return err
	}
	for _, s := range sets {
		name := *dataset
		if name == "" {
			name = filepath.Base(s.Name)
		}
		ls := make([]store.Label, 0, len(s.Items)*len(s.Models))
		for _, it := range s.Items {
			for _, m := range s.Models {
				if c, ok := it.Correct[m]; ok {
					ls = append(ls, store.Label{Source: store.LabelImport, Dataset: name, ItemID: it.ID, Prompt: it.Prompt, Model: m, Correct: c})
				}
			}
		}
		n, err := st.SaveLabels(ctx, ls)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: %d prompts x %d models as dataset %q: %d labels new or changed, %d unchanged, %d bad rows skipped\n",
			s.Name, len(s.Items), len(s.Models), name, n, int64(len(ls))-n, len(s.Bad))
	}
	if bad > 0 {
		return &exitError{1, fmt.Errorf("%d bad row(s) skipped", bad)}
	}
	return nil
}

func parseLabelsFormat(s string) (labels.Format, error) {
	switch s {
	case "auto":
		return labels.Auto, nil
	case "csv":
		return labels.CSV, nil
	case "jsonl":
		return labels.JSONL, nil
	}
	return 0, &exitError{2, fmt.Errorf("--format: %q is not auto, csv or jsonl", s)}
}

// readLabelFiles reads every file, printing each bad row to stderr; it
// returns the sets and the number of bad rows.
func readLabelFiles(e *env, files []string, f labels.Format) ([]*labels.Set, int, error) {
	var sets []*labels.Set
	bad := 0
	for _, name := range files {
		fh, err := os.Open(name)
		if err != nil {
			return nil, 0, err
		}
		s, err := labels.Read(fh, name, f)
		fh.Close()
		if err != nil {
			return nil, 0, err
		}
		for _, b := range s.Bad {
			fmt.Fprintln(e.stderr, b)
		}
		bad += len(s.Bad)
		sets = append(sets, s)
	}
	return sets, bad, nil
}
