package cascade

import (
	"context"
	"errors"
	"time"

	"github.com/promptcascade/promptcascade/internal/limit"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/tokens"
)

// errHedgeLost cancels the call that lost a hedged race.
var errHedgeLost = errors.New("hedge lost")

// hedgeCall is one finished call of a hedged attempt; none when the second
// call was never made.
type hedgeCall struct {
	a    prompt.Attempt
	resp llm.Response
	hint time.Duration
	none bool
}

// hedged makes one attempt on t under p with hedging (ModelPolicy.HedgeAfter):
// when the call has not answered after HedgeAfter, a second identical call
// (its own attempt number and seed, as a retry has) starts on t, if the
// Run's CallGate allows it and t's limiter has room at once (otherwise no
// hedge). The first answer (outcome ok) wins and the other call is
// canceled. Both calls are
// recorded: the loser with outcome canceled, error "hedge lost: ...", and
// its cost; a loser that reported no usage is billed as llm.EstimateUsage
// counts (system + prompt as input, the winner's answer as output) and
// marked estimated. When neither answers, the call that ended first is
// recorded here as any failed attempt and the other is returned, as is the
// winner.
func (r *run) hedged(t *target, p *limit.Permit) (prompt.Attempt, llm.Response, time.Duration) {
	n1 := r.n + 1
	r.n = n1
	// The calls run on a copy of r (attempt only reads it), so that a Run
	// that never hedges keeps its state off the heap.
	snap := *r
	done := make(chan hedgeCall, 2)
	ctx1, cancel1 := context.WithCancelCause(r.ctx)
	defer cancel1(nil)
	go func() {
		a, resp, hint := snap.attempt(ctx1, t, p, n1)
		done <- hedgeCall{a: a, resp: resp, hint: hint}
	}()
	timer := time.NewTimer(t.pol.HedgeAfter)
	select {
	case x := <-done:
		timer.Stop()
		return x.a, x.resp, x.hint
	case <-timer.C:
	}

	if r.gate != nil && r.gate(r.ctx, Call{Model: t.name, Price: t.pol.Price}) != nil {
		// The gate refuses another call (the budget, say): the first
		// call, which it allowed, goes on alone.
		x := <-done
		return x.a, x.resp, x.hint
	}
	n2 := n1 + 1
	want := r.want(t, true)
	want.NoWait = true
	ctx2, cancel2 := context.WithCancelCause(r.ctx)
	defer cancel2(nil)
	if p2, err := t.lim.Acquire(ctx2, want); err != nil {
		done <- hedgeCall{none: true}
	} else {
		go func() {
			a, resp, hint := snap.attempt(ctx2, t, p2, n2)
			done <- hedgeCall{a: a, resp: resp, hint: hint}
		}()
	}

	first := <-done
	if first.none { // no room for a second call: wait for the first
		x := <-done
		return x.a, x.resp, x.hint
	}
	if first.a.Attempt == n2 {
		// A hedge was made; the first call may still answer.
		r.n = n2
	}
	if first.a.Outcome == prompt.OutcomeOK {
		cancelOther(first.a.Attempt, n1, cancel1, cancel2)
		other := <-done
		if !other.none {
			r.n = n2
			r.recordLoser(t, other, first.resp)
		}
		return first.a, first.resp, first.hint
	}
	// The first to end failed: the other call decides.
	other := <-done
	if other.none {
		return first.a, first.resp, first.hint
	}
	r.n = n2
	if r.ctx.Err() != nil {
		first.a.Outcome, first.a.HTTPStatus = prompt.OutcomeCanceled, 0
		first.a.Error = "canceled: " + shortText(context.Cause(r.ctx).Error())
		r.record(first.a)
	} else {
		r.record(first.a)
		r.c.observe(t, first.a)
	}
	return other.a, other.resp, max(first.hint, other.hint)
}

// cancelOther cancels the call that did not answer first.
func cancelOther(winner, n1 int, cancel1, cancel2 context.CancelCauseFunc) {
	if winner == n1 {
		cancel2(errHedgeLost)
	} else {
		cancel1(errHedgeLost)
	}
}

// recordLoser records the call that lost a hedged race. Its own usage is
// billed when the provider reported some (it may have answered too);
// otherwise its usage is estimated from the request and the winner's
// answer.
func (r *run) recordLoser(t *target, x hedgeCall, winner llm.Response) {
	a, resp := x.a, x.resp
	if resp.InputTokens == 0 && resp.OutputTokens == 0 && resp.CacheReadTokens == 0 && resp.CacheWriteTokens == 0 {
		est := llm.Response{Text: winner.Text}
		llm.EstimateUsage(&est, r.request(t, a.Attempt), tokens.Count)
		a.InputTokens, a.OutputTokens, a.Estimated = est.InputTokens, est.OutputTokens, true
		a.CostUSD = t.pol.Price.Cost(pricing.Usage{InputTokens: est.InputTokens, OutputTokens: est.OutputTokens})
	}
	a.Outcome, a.HTTPStatus = prompt.OutcomeCanceled, 0
	a.Error = "hedge lost: the other call of this attempt answered first"
	r.record(a)
}
