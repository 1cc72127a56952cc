package anthropic_test

import (
	"testing"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/anthropic"
	"github.com/promptcascade/promptcascade/internal/providerbatch"
	"github.com/promptcascade/promptcascade/internal/providerbatch/batchfake"
	"github.com/promptcascade/promptcascade/internal/providerbatch/batchtest"
)

func TestBatchConformance(t *testing.T) {
	t.Parallel()
	batchtest.Run(t, batchtest.Harness{
		Protocol: batchfake.Anthropic,
		Model:    "claude-haiku-4-5",
		New: func(t testing.TB, env batchtest.Env) providerbatch.Client {
			c, err := anthropic.New(anthropic.Config{BaseURL: env.BaseURL, APIKey: env.APIKey, HTTPClient: env.HTTPClient})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		Fates:        true,
		ExpiredAs:    llm.ItemExpired,
		CanceledEnds: llm.BatchEnded,
	})
}
