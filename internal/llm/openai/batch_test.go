package openai_test

import (
	"testing"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/openai"
	"github.com/promptcascade/promptcascade/internal/providerbatch"
	"github.com/promptcascade/promptcascade/internal/providerbatch/batchfake"
	"github.com/promptcascade/promptcascade/internal/providerbatch/batchtest"
)

func TestBatchConformance(t *testing.T) {
	t.Parallel()
	batchtest.Run(t, batchtest.Harness{
		Protocol: batchfake.OpenAI,
		Model:    "gpt-4o-mini",
		New: func(t testing.TB, env batchtest.Env) providerbatch.Client {
			c, err := openai.New(openai.Config{BaseURL: env.BaseURL + "/v1", APIKey: env.APIKey, HTTPClient: env.HTTPClient})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		KeepsLabel:   true,
		Fates:        true,
		ExpiredAs:    llm.ItemExpired,
		CanceledEnds: llm.BatchEnded,
	})
}
