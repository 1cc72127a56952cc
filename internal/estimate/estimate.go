// Package estimate tells what a batch will cost and how long it will take
// before any model is called: each prompt is classified and its tokens
// counted exactly as the worker would, then priced at its tier's first model
// (every prompt answered at once) and at every model of its tier (every
// prompt cascades to the tier's last model). The wall time of both cases
// follows from the calls each model gets and the models' declared limits
// (wall.go).
package estimate

import (
	"fmt"
	"time"

	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/tokens"
)

// DefaultOutputTokens is the expected answer length of a prompt that sets
// no max_tokens: a typical chat answer (the simulated models' mean).
const DefaultOutputTokens = 150

// Model is one model of a tier as the estimate sees it.
type Model struct {
	Name    string
	Price   pricing.Price
	Latency time.Duration // mean time of one call
	Limits  Limits
	// Batch: the model is reached through its provider's batch API, so
	// its calls take no worker slot and no synchronous limit applies.
	Batch bool
}

// Limits are a model's declared caps per worker process, as the routes
// file's rpm, tpm and max_concurrency mean them (0: none).
type Limits struct {
	RPM            int `json:"rpm"`             // calls per minute
	TPM            int `json:"tpm"`             // input plus expected output tokens per minute
	MaxConcurrency int `json:"max_concurrency"` // calls at once
}

// Classifier picks a prompt's tier, as the worker does.
type Classifier interface {
	Classify(text string) (prompt.Tier, prompt.Signals)
}

// Plan is what an Estimator needs: the tiers' models in cascade order and
// the classifier.
type Plan struct {
	Tiers        map[prompt.Tier][]Model
	Classifier   Classifier
	CountTokens  func(string) int
	OutputTokens int // expected answer of a prompt without max_tokens (DefaultOutputTokens)
}

// Tier is the estimate for the prompts of one tier.
type Tier struct {
	Tier         prompt.Tier `json:"tier"`
	Prompts      int64       `json:"prompts"`
	InputTokens  int64       `json:"input_tokens"`
	OutputTokens int64       `json:"output_tokens"` // expected: max_tokens, or the typical answer
	FirstModel   string      `json:"first_model"`
	LastModel    string      `json:"last_model"`
	// CostLowUSD: every prompt answered by the tier's first model.
	// CostHighUSD: every prompt tries every model of the tier, in order,
	// and the last one answers (each call paid in full, retries aside).
	CostLowUSD  float64 `json:"cost_low_usd"`
	CostHighUSD float64 `json:"cost_high_usd"`
	// CallSecondsLow and High are the sum of the synchronous calls' mean
	// latencies in the two cases: the slot-seconds they hold.
	CallSecondsLow  float64 `json:"call_seconds_low"`
	CallSecondsHigh float64 `json:"call_seconds_high"`
}

// Load is what one model is asked for in the two cases, with what the
// wall time needs to know of it.
type Load struct {
	Model string `json:"model"`
	Limits
	LatencySec float64 `json:"latency_seconds"`
	Batch      bool    `json:"batch"`
	CallsLow   int64   `json:"calls_low"`
	CallsHigh  int64   `json:"calls_high"`
	TokensLow  int64   `json:"tokens_low"` // input + expected output tokens of those calls
	TokensHigh int64   `json:"tokens_high"`
}

// Estimate is the whole input's estimate.
type Estimate struct {
	Tiers  []Tier `json:"tiers"` // in prompt.Tiers order, only tiers with prompts
	Total  Tier   `json:"total"`
	Models []Load `json:"models"` // in the order the tiers first name them
}

// Estimator adds prompts one at a time; it keeps only sums.
type Estimator struct {
	p      Plan
	tiers  map[prompt.Tier]*tierSums
	models []Load
}

// tierSums is a tier's running estimate and its models' loads.
type tierSums struct {
	Tier
	loads           []*Load // the tier's models in cascade order
	secLow, secHigh float64 // one prompt's call seconds in the two cases
}

// New returns an Estimator for p. Every tier the classifier may pick must
// have at least one model.
func New(p Plan) (*Estimator, error) {
	if p.Classifier == nil || p.CountTokens == nil {
		return nil, fmt.Errorf("estimate: plan needs a classifier and a token counter")
	}
	if p.OutputTokens <= 0 {
		p.OutputTokens = DefaultOutputTokens
	}
	e := &Estimator{p: p, tiers: map[prompt.Tier]*tierSums{}}
	index := map[string]int{}
	for _, t := range prompt.Tiers {
		ms := p.Tiers[t]
		if len(ms) == 0 {
			return nil, fmt.Errorf("estimate: tier %s has no models", t)
		}
		for _, m := range ms {
			if _, ok := index[m.Name]; !ok {
				index[m.Name] = len(e.models)
				e.models = append(e.models, Load{Model: m.Name, Limits: m.Limits, LatencySec: m.Latency.Seconds(), Batch: m.Batch})
			}
		}
	}
	for _, t := range prompt.Tiers {
		ms := p.Tiers[t]
		ts := &tierSums{Tier: Tier{Tier: t, FirstModel: ms[0].Name, LastModel: ms[len(ms)-1].Name}}
		for i, m := range ms {
			ts.loads = append(ts.loads, &e.models[index[m.Name]])
			sec := m.Latency.Seconds()
			if m.Batch {
				sec = 0
			}
			if i == 0 {
				ts.secLow = sec
			}
			ts.secHigh += sec
		}
		e.tiers[t] = ts
	}
	return e, nil
}

// Add counts one prompt.
func (e *Estimator) Add(job prompt.Job) {
	tier, _ := e.p.Classifier.Classify(job.Prompt)
	t := e.tiers[tier]
	if t == nil {
		t = e.tiers[prompt.TierComplex]
	}
	in := e.p.CountTokens(job.System) + e.p.CountTokens(job.Prompt)
	out := e.p.OutputTokens
	if job.MaxTokens > 0 {
		out = job.MaxTokens
	}
	u := pricing.Usage{InputTokens: in, OutputTokens: out}
	ms := e.p.Tiers[t.Tier.Tier]
	tok := int64(in + out)
	t.Prompts++
	t.InputTokens += int64(in)
	t.OutputTokens += int64(out)
	t.CostLowUSD += ms[0].Price.Cost(u)
	t.CallSecondsLow += t.secLow
	t.CallSecondsHigh += t.secHigh
	t.loads[0].CallsLow++
	t.loads[0].TokensLow += tok
	for i, m := range ms {
		t.CostHighUSD += m.Price.Cost(u)
		t.loads[i].CallsHigh++
		t.loads[i].TokensHigh += tok
	}
}

// Result returns the estimate so far.
func (e *Estimator) Result() Estimate {
	var out Estimate
	out.Total.Tier = "total"
	for _, tier := range prompt.Tiers {
		t := e.tiers[tier].Tier
		if t.Prompts == 0 {
			continue
		}
		out.Tiers = append(out.Tiers, t)
		out.Total.Prompts += t.Prompts
		out.Total.InputTokens += t.InputTokens
		out.Total.OutputTokens += t.OutputTokens
		out.Total.CostLowUSD += t.CostLowUSD
		out.Total.CostHighUSD += t.CostHighUSD
		out.Total.CallSecondsLow += t.CallSecondsLow
		out.Total.CallSecondsHigh += t.CallSecondsHigh
	}
	out.Models = append([]Load(nil), e.models...)
	return out
}

// FromRoutes builds a Plan from a routes file's tiers, model prices and
// declared limits. latency gives a model's mean call time (nil: 0, when
// only cost matters).
func FromRoutes(r *config.Routes, cl Classifier, latency func(config.Model) time.Duration) Plan {
	p := Plan{Tiers: map[prompt.Tier][]Model{}, Classifier: cl, CountTokens: tokens.Count}
	for tier, names := range r.Tiers {
		for _, n := range names {
			m := r.Models[n]
			var lat time.Duration
			if latency != nil {
				lat = latency(m)
			}
			price := m.Price
			if m.Batch != nil {
				// A batch-mode model is paid at the batch price.
				price = price.Batch()
			}
			p.Tiers[tier] = append(p.Tiers[tier], Model{Name: n, Price: price, Latency: lat, Batch: m.Batch != nil,
				Limits: Limits{RPM: m.RPM, TPM: m.TPM, MaxConcurrency: m.MaxConcurrency}})
		}
	}
	return p
}
