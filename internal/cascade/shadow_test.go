package cascade_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/sim"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

func shadowCascade(t *testing.T, share float64, judge string) *cascade.Cascade {
	t.Helper()
	reg := llm.NewRegistry()
	reg.Register(sim.Name, sim.New(map[string]sim.Model{
		"small": {Capability: 0.3}, "medium": {Capability: 0.6}, "large": {Capability: 0.95},
	}))
	prices := pricing.Builtin()
	policies := map[string]cascade.ModelPolicy{}
	for _, m := range []string{"sim/small", "sim/medium", "sim/large"} {
		p, _ := prices.Lookup(m)
		policies[m] = cascade.ModelPolicy{Model: m, Timeout: time.Second, Price: p}
	}
	c, err := cascade.New(cascade.Settings{
		Tiers: map[prompt.Tier][]string{
			prompt.TierSimple:   {"sim/small", "sim/large"},
			prompt.TierModerate: {"sim/medium", "sim/large"},
			prompt.TierComplex:  {"sim/large"},
		},
		Models: policies,
		Shadow: cascade.Shadow{Share: share, Judge: judge},
		Seed:   3,
	}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestShadow(t *testing.T) {
	t.Parallel()
	c := shadowCascade(t, 0.25, "sim/large")
	ctx := context.Background()
	shadowed, asGood := 0, 0
	const n = 800
	for i := range n {
		p := prompts[i%len(prompts)]
		tier := prompt.Tiers[i%2] // simple or moderate: both have a tier above
		out := c.Run(ctx, prompt.Job{BatchID: "b", ID: fmt.Sprint(i), Prompt: p}, tier, prompt.Signals{}, 1)
		res := out.Result
		if res.Status != prompt.StatusSucceeded {
			continue
		}
		var answer, shadow []prompt.Attempt
		for _, a := range res.Attempts {
			if a.Outcome == prompt.OutcomeShadow {
				shadow = append(shadow, a)
			} else {
				answer = append(answer, a)
			}
		}
		if len(answer) == 0 || answer[len(answer)-1].Outcome != prompt.OutcomeOK || res.ModelUsed != answer[len(answer)-1].Model {
			t.Fatalf("prompt %d: the answer kept is not the last non-shadow attempt: %+v", i, res.Attempts)
		}
		for k := range res.Attempts {
			if res.Attempts[k].Attempt != k+1 {
				t.Fatalf("prompt %d: attempts not numbered 1..n: %+v", i, res.Attempts)
			}
		}
		if res.Shadow == nil {
			if len(shadow) > 0 && shadow[len(shadow)-1].Error == "" {
				t.Fatalf("prompt %d: shadow calls without a verdict or an error: %+v", i, shadow)
			}
			continue
		}
		shadowed++
		ref := map[prompt.Tier]string{prompt.TierSimple: "sim/medium", prompt.TierModerate: "sim/large"}[tier]
		if res.ModelUsed == ref {
			ref = "sim/large"
		}
		if len(shadow) != 2 || shadow[0].Model != ref || shadow[1].Model != "sim/large" || shadow[1].CostUSD <= 0 {
			t.Fatalf("prompt %d: want the tier above's call and the judge's, both logged and paid: %+v", i, shadow)
		}
		if s := res.Shadow; s.Model != res.ModelUsed || s.Reference != ref || s.Judge != "sim/large" {
			t.Fatalf("prompt %d: label %+v", i, s)
		}
		if res.Shadow.AsGood {
			asGood++
		}
	}
	if shadowed < n/4*7/10 || shadowed > n/4*13/10 {
		t.Errorf("%d of %d prompts shadowed, want about a quarter", shadowed, n)
	}
	if asGood == 0 || asGood == shadowed {
		t.Errorf("%d of %d verdicts say the cheap answer is as good: want both verdicts", asGood, shadowed)
	}
	// The top tier has nothing above it.
	out := c.Run(ctx, prompt.Job{BatchID: "b", ID: "top", Prompt: prompts[0]}, prompt.TierComplex, prompt.Signals{}, 1)
	if out.Result.Shadow != nil || hasShadow(out.Result) {
		t.Error("a complex prompt was shadowed")
	}
}

func hasShadow(r prompt.Result) bool {
	for _, a := range r.Attempts {
		if a.Outcome == prompt.OutcomeShadow {
			return true
		}
	}
	return false
}

func TestShadowSettings(t *testing.T) {
	t.Parallel()
	reg := llm.NewRegistry()
	reg.Register(sim.Name, sim.New(map[string]sim.Model{"small": {}}))
	base := cascade.Settings{
		Tiers:  map[prompt.Tier][]string{prompt.TierSimple: {"sim/small"}, prompt.TierModerate: {"sim/small"}, prompt.TierComplex: {"sim/small"}},
		Models: map[string]cascade.ModelPolicy{"sim/small": {Model: "sim/small"}},
	}
	for sh, want := range map[cascade.Shadow]string{
		{Share: 1.5, Judge: "sim/small"}: "shadow.share: must be in [0,1]",
		{Share: 0.1}:                     "shadow.judge: required",
		{Share: 0.1, Judge: "sim/judge"}: `shadow.judge: model "sim/judge": no model policy`,
	} {
		s := base
		s.Shadow = sh
		if _, err := cascade.New(s, reg, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("shadow %+v: %v, want %q", sh, err, want)
		}
	}
}

// A judge the provider does not have is called once, disabled like any
// model that answers "not found", and not called again.
func TestShadowJudgeOutOfService(t *testing.T) {
	t.Parallel()
	reg := llm.NewRegistry()
	reg.Register(sim.Name, sim.New(map[string]sim.Model{"small": {Capability: 1}, "large": {Capability: 1}}))
	pol := map[string]cascade.ModelPolicy{"sim/small": {Model: "sim/small"}, "sim/large": {Model: "sim/large"}, "sim/ghost": {Model: "sim/ghost"}}
	c, err := cascade.New(cascade.Settings{
		Tiers:  map[prompt.Tier][]string{prompt.TierSimple: {"sim/small"}, prompt.TierModerate: {"sim/large"}, prompt.TierComplex: {"sim/large"}},
		Models: pol,
		Shadow: cascade.Shadow{Share: 1, Judge: "sim/ghost"},
	}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	judgeCalls := 0
	for i := range 20 {
		res := c.Run(context.Background(), prompt.Job{BatchID: "b", ID: fmt.Sprint(i), Prompt: "What is the capital of France?"}, prompt.TierSimple, prompt.Signals{}, 1).Result
		if res.Status != prompt.StatusSucceeded || res.Shadow != nil {
			t.Fatalf("prompt %d: status %s, shadow %+v; want an answer and no verdict", i, res.Status, res.Shadow)
		}
		for _, a := range res.Attempts {
			if a.Model == "sim/ghost" {
				judgeCalls++
				if a.Outcome != prompt.OutcomeShadow || !strings.Contains(a.Error, "not_found") {
					t.Errorf("judge attempt %+v: want outcome shadow with the not_found error", a)
				}
			}
		}
	}
	if judgeCalls != 1 {
		t.Errorf("the missing judge was called %d times, want once", judgeCalls)
	}
}
