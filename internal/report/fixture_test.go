package report

import (
	"context"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/pgtest"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/store"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Prices of the fixture's models, USD per million tokens.
var fixturePrices = []store.ModelPrice{
	{Model: "sim/s1", InputPerMTok: 0.1, OutputPerMTok: 0.4, Tiers: []string{"simple"}},
	{Model: "sim/m1", InputPerMTok: 1, OutputPerMTok: 4, Tiers: []string{"simple", "moderate"}},
	{Model: "sim/l1", InputPerMTok: 10, OutputPerMTok: 40, Tiers: []string{"moderate", "complex"}},
}

type attempt struct {
	model   string
	outcome prompt.Outcome
	in, out int
	ms      int
}

// cost is what the fixture's prices charge for a.
func (a attempt) cost() float64 {
	for _, p := range fixturePrices {
		if p.Model == a.model {
			return (float64(a.in)*p.InputPerMTok + float64(a.out)*p.OutputPerMTok) / 1e6
		}
	}
	panic(a.model)
}

type fixtureRow struct {
	batch, id string
	tier      prompt.Tier
	status    prompt.Status
	delivery  int
	words     int
	complex   int
	moderate  int
	ms        int
	attempts  []attempt
}

// fixtureRows is a batch whose view numbers are computed by hand in
// views_test.go (b1), plus a second batch the b1 queries must not see.
//
//	p1 simple   s1 ok                              (and a losing delivery 2: s1 ok)
//	p2 simple   s1 quality_failed, m1 ok           cascaded, under-routed
//	p3 simple   s1 rate_limited, s1 ok             same-model retry: not cascaded
//	p4 moderate m1 ok, 10 words, 1 hit             over-routed candidate
//	p5 moderate m1 server_error, l1 ok             cascaded (an error, not misrouting)
//	p9 moderate m1 cooldown_skip, l1 ok            cascaded; a skip is not a call
//	p6 complex  l1 ok, 60 words                    long: not a candidate
//	p7 complex  l1 quality_failed x2               failed
//	p8 simple   s1 rate_limited                    transient: request_log only
//	b2/q1 simple s1 ok
var fixtureRows = []fixtureRow{
	{"b1", "p1", prompt.TierSimple, prompt.StatusSucceeded, 1, 5, 0, 0, 100, []attempt{{"sim/s1", prompt.OutcomeOK, 1000, 500, 100}}},
	{"b1", "p2", prompt.TierSimple, prompt.StatusSucceeded, 1, 8, 0, 0, 400, []attempt{
		{"sim/s1", prompt.OutcomeQualityFailed, 1000, 500, 150}, {"sim/m1", prompt.OutcomeOK, 1000, 500, 250}}},
	{"b1", "p3", prompt.TierSimple, prompt.StatusSucceeded, 1, 6, 0, 0, 200, []attempt{
		{"sim/s1", prompt.OutcomeRateLimited, 0, 0, 10}, {"sim/s1", prompt.OutcomeOK, 1000, 500, 190}}},
	{"b1", "p4", prompt.TierModerate, prompt.StatusSucceeded, 1, 10, 0, 1, 300, []attempt{{"sim/m1", prompt.OutcomeOK, 2000, 1000, 300}}},
	{"b1", "p5", prompt.TierModerate, prompt.StatusSucceeded, 1, 40, 0, 1, 1000, []attempt{
		{"sim/m1", prompt.OutcomeServerError, 0, 0, 50}, {"sim/l1", prompt.OutcomeOK, 2000, 1000, 1000}}},
	{"b1", "p9", prompt.TierModerate, prompt.StatusSucceeded, 1, 25, 0, 1, 800, []attempt{
		{"sim/m1", prompt.OutcomeCooldownSkip, 0, 0, 0}, {"sim/l1", prompt.OutcomeOK, 1000, 1000, 800}}},
	{"b1", "p6", prompt.TierComplex, prompt.StatusSucceeded, 1, 60, 2, 0, 2000, []attempt{{"sim/l1", prompt.OutcomeOK, 3000, 2000, 2000}}},
	{"b1", "p7", prompt.TierComplex, prompt.StatusFailed, 1, 12, 2, 0, 5000, []attempt{
		{"sim/l1", prompt.OutcomeQualityFailed, 3000, 10, 2500}, {"sim/l1", prompt.OutcomeQualityFailed, 3000, 10, 2500}}},
	{"b1", "p8", prompt.TierSimple, "", 1, 4, 0, 0, 0, []attempt{{"sim/s1", prompt.OutcomeRateLimited, 0, 0, 20}}},
	{"b1", "p1", prompt.TierSimple, prompt.StatusSucceeded, 2, 5, 0, 0, 120, []attempt{{"sim/s1", prompt.OutcomeOK, 1000, 500, 120}}},
	{"b2", "q1", prompt.TierSimple, prompt.StatusSucceeded, 1, 3, 0, 0, 50, []attempt{{"sim/s1", prompt.OutcomeOK, 10, 10, 50}}},
}

func (f fixtureRow) result(seq int) prompt.Result {
	r := prompt.Result{
		Job:      prompt.Job{BatchID: f.batch, ID: f.id, Prompt: "prompt " + f.id, EnqueuedAt: t0},
		Tier:     f.tier,
		Signals:  prompt.Signals{WordCount: f.words, TokenCount: 2 * f.words, ComplexHits: f.complex, ModerateHits: f.moderate},
		Status:   f.status,
		Delivery: f.delivery,
		Latency:  time.Duration(f.ms) * time.Millisecond,
		WorkerID: "w1",
	}
	if f.status != "" {
		r.CompletedAt = t0.Add(time.Duration(seq) * time.Second)
	}
	for i, a := range f.attempts {
		pa := prompt.Attempt{
			Attempt: i + 1, Model: a.model, Outcome: a.outcome, InputTokens: a.in, OutputTokens: a.out,
			CostUSD: a.cost(), Latency: time.Duration(a.ms) * time.Millisecond,
			StartedAt: t0.Add(time.Duration(seq)*time.Second + time.Duration(i)*time.Millisecond),
		}
		if a.outcome != prompt.OutcomeCooldownSkip {
			pa.HTTPStatus = 200
		}
		r.Attempts = append(r.Attempts, pa)
		r.CostUSD += pa.CostUSD
		r.ModelUsed = a.model
		if a.outcome == prompt.OutcomeOK {
			r.InputTokens, r.OutputTokens = a.in, a.out
		}
	}
	return r
}

// fixture returns a store holding fixtureRows, with prices recorded for b1
// only (b2 shows a batch without prices).
func fixture(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), pgtest.Schema(t), store.WithMaxConns(3),
		store.WithPrices(func(_ context.Context, batch string) ([]store.ModelPrice, error) {
			if batch == "b1" {
				return fixturePrices, nil
			}
			return nil, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	// One Write per delivery, in order, as workers commit them.
	for i, f := range fixtureRows {
		if _, err := st.Write(t.Context(), []prompt.Result{f.result(i)}); err != nil {
			t.Fatal(err)
		}
	}
	return st
}
