package gemini_test

import (
	"testing"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/gemini"
	"github.com/promptcascade/promptcascade/internal/providerbatch"
	"github.com/promptcascade/promptcascade/internal/providerbatch/batchfake"
	"github.com/promptcascade/promptcascade/internal/providerbatch/batchtest"
)

func TestBatchConformance(t *testing.T) {
	t.Parallel()
	batchtest.Run(t, batchtest.Harness{
		Protocol: batchfake.Gemini,
		Model:    "gemini-2.5-flash",
		New: func(t testing.TB, env batchtest.Env) providerbatch.Client {
			c, err := gemini.New(gemini.Config{BaseURL: env.BaseURL, APIKey: env.APIKey, HTTPClient: env.HTTPClient})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		KeepsLabel: true,
		Fates:      true,
		// Gemini reports a request that ran out of time as an error
		// (DEADLINE_EXCEEDED), and a cancelled batch as a failed one.
		ExpiredAs:    llm.ItemErrored,
		CanceledEnds: llm.BatchFailed,
	})
}
