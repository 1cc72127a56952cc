package sim_test

import (
	"context"
	"fmt"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/sim"
)

func Example() {
	reg := llm.NewRegistry()
	reg.Register(sim.Name, sim.New(map[string]sim.Model{"small": {Capability: 0.9}}))

	p, id, _ := reg.Resolve("sim/small")
	resp, err := p.Complete(context.Background(), llm.Request{Model: id, Prompt: "What is the capital of France?", Seed: 42})
	fmt.Println(err, resp.FinishReason, resp.InputTokens, resp.OutputTokens > 0)
	// Output: <nil> stop 7 true
}
