package input

import (
	"path/filepath"
	"testing"
)

// TestSampleFiles parses the sample files shipped in the repository's
// testdata/ (written by testdata/gen) in every format, with no errors.
func TestSampleFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file   string
		format Format
		jobs   int
	}{
		{"prompts.jsonl", FormatJSONL, 1250},
		{"prompts.csv", FormatCSV, 50},
		{"prompts.txt", FormatText, 50},
		{"openai-batch.jsonl", FormatOpenAIBatch, 50},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			rd, err := Open(filepath.Join("..", "..", "testdata", tt.file), FormatAuto, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			if rd.Format() != tt.format {
				t.Errorf("detected %s, want %s", rd.Format(), tt.format)
			}
			res := drain(t, rd)
			if res.fatal != nil || len(res.errs) != 0 {
				t.Fatalf("fatal %v, line errors %v", res.fatal, res.errs)
			}
			if len(res.jobs) != tt.jobs {
				t.Errorf("read %d jobs, want %d", len(res.jobs), tt.jobs)
			}
			var system, maxTokens, metadata int
			for _, j := range res.jobs {
				if j.System != "" {
					system++
				}
				if j.MaxTokens > 0 {
					maxTokens++
				}
				if j.Metadata != nil {
					metadata++
				}
			}
			if tt.format != FormatText && (system == 0 || maxTokens == 0 || metadata == 0) {
				t.Errorf("%d jobs with a system prompt, %d with max_tokens, %d with metadata; want some of each", system, maxTokens, metadata)
			}
		})
	}
}
