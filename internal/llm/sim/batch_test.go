package sim_test

import (
	"testing"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/sim"
	"github.com/promptcascade/promptcascade/internal/providerbatch"
	"github.com/promptcascade/promptcascade/internal/providerbatch/batchtest"
)

func TestBatchConformance(t *testing.T) {
	t.Parallel()
	batchtest.Run(t, batchtest.Harness{
		Model: "small",
		New: func(t testing.TB, _ batchtest.Env) providerbatch.Client {
			return sim.New(map[string]sim.Model{"small": {Capability: 1}})
		},
		KeepsLabel:   true,
		ExpiredAs:    llm.ItemExpired,
		CanceledEnds: llm.BatchEnded,
	})
}
