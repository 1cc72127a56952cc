package cascade

import (
	"fmt"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/tokens"
)

// Shadow labels prompts without effort: a share of the prompts answered in
// a tier below the top is also sent to the tier above, and a judge model
// compares the two answers (llm.JudgePrompt). The verdict becomes a label
// (Result.Shadow) for the next `router train --from-db`; the two calls are
// attempts with outcome shadow, so reports can tell label spend from answer
// spend. The answer kept never changes.
type Shadow struct {
	Share float64 // of eligible prompts, in [0,1]; 0 turns shadowing off
	Judge string  // "provider/model"; needs a ModelPolicy in Settings.Models
}

func (c *Cascade) setShadow(s Shadow, policies map[string]ModelPolicy, reg *llm.Registry) error {
	if s.Share == 0 {
		return nil
	}
	if !(s.Share > 0 && s.Share <= 1) {
		return fmt.Errorf("shadow.share: must be in [0,1], got %g", s.Share)
	}
	if s.Judge == "" {
		return fmt.Errorf("shadow.judge: required when shadow.share is set")
	}
	t, err := newTarget(s.Judge, policies, reg)
	if err != nil {
		return fmt.Errorf("shadow.judge: %w", err)
	}
	c.shadowShare, c.judge = s.Share, t
	return nil
}

// above returns the tier above t, or "" for the top tier.
func above(t prompt.Tier) prompt.Tier {
	for i, x := range prompt.Tiers {
		if x == t && i+1 < len(prompt.Tiers) {
			return prompt.Tiers[i+1]
		}
	}
	return ""
}

// shadowed reports whether the succeeded Run r is drawn for shadowing: a
// fixed share of (batch, id) pairs, the same on every delivery.
func (r *run) shadowed() bool {
	c := r.c
	res := &r.out.Result
	if c.judge == nil || res.Status != prompt.StatusSucceeded || above(res.Tier) == "" {
		return false
	}
	h := seedBase(c.seed^0x5ad0, res.Job.BatchID, res.Job.ID, 0)
	return unitFloat(h) < c.shadowShare
}

// shadow runs the shadow step after a successful cascade.
func (r *run) shadow() {
	if !r.shadowed() {
		return
	}
	res := &r.out.Result
	var ref *target
	for _, t := range r.c.tiers[above(res.Tier)] {
		if t.name != res.ModelUsed {
			ref = t
			break
		}
	}
	if ref == nil || !r.c.available(ref) || !r.c.available(r.c.judge) ||
		(r.gate != nil && r.gate(r.ctx, Call{Model: ref.name, Price: ref.pol.Price}) != nil) {
		return // labels are not worth calling a model that is out of service, or over the budget
	}
	// Shadow calls are real calls: they go through the limiter and tell on
	// the models' health like any (a judge that answers "not found" is
	// disabled, as in a tier).
	a, resp, called := r.optionalCall(ref)
	if !called {
		return
	}
	r.c.observe(ref, a)
	refOK := a.Outcome == prompt.OutcomeOK
	r.recordShadow(a)
	if !refOK || r.ctx.Err() != nil {
		return
	}
	judged := *res
	judged.Job.System = llm.JudgeSystem
	judged.Job.Prompt = llm.JudgePrompt(res.Job.Prompt, res.Response, resp.Text)
	judged.Job.MaxTokens = 64
	judged.Signals.TokenCount = tokens.Count(judged.Job.System) + tokens.Count(judged.Job.Prompt) // for the limiter
	// The judge's reply is one word: the quality gate is not for it.
	j := run{c: r.c, ctx: r.ctx, base: r.base, n: r.n, need: 0}
	j.out.Result = judged
	if r.gate != nil && r.gate(r.ctx, Call{Model: r.c.judge.name, Price: r.c.judge.pol.Price}) != nil {
		return
	}
	ja, jresp, called := j.optionalCall(r.c.judge)
	if called {
		r.c.observe(r.c.judge, ja)
	}
	r.n = j.n
	if !called {
		return
	}
	good, ok := false, false
	if ja.Outcome == prompt.OutcomeOK || ja.Outcome == prompt.OutcomeQualityFailed {
		if good, ok = llm.ParseVerdict(jresp.Text); !ok {
			ja.Error = "judge reply is not YES or NO: " + shortText(jresp.Text)
		} else {
			ja.Error = ""
		}
	}
	r.recordShadow(ja)
	if ok {
		res.Shadow = &prompt.ShadowLabel{Model: res.ModelUsed, Reference: ref.name, Judge: r.c.judge.name, AsGood: good}
	}
}

// recordShadow records a shadow call: its outcome is shadow, and a failure
// is told by its error.
func (r *run) recordShadow(a prompt.Attempt) {
	if a.Outcome != prompt.OutcomeOK && a.Error == "" {
		a.Error = string(a.Outcome)
	} else if a.Outcome != prompt.OutcomeOK {
		a.Error = string(a.Outcome) + ": " + a.Error
	}
	a.Outcome = prompt.OutcomeShadow
	r.record(a)
}

// available reports whether t may be called now: not disabled, not cooling
// down.
func (c *Cascade) available(t *target) bool {
	now := c.now()
	if d := t.disabled.Load(); d != nil && !d.expired(now) {
		return false
	}
	return !c.cooldown.on() || t.coolingFor(now, c.cooldown.Failures) == 0
}
