// Package sim is the built-in simulated model provider, registered under the
// name "sim" ("sim/small", "sim/gpt-4o-mini", ...). It behaves like a real
// provider so that demos, tests and benchmarks exercise every path without API
// keys: latency with jitter, token usage computed from the text with tiktoken,
// answers whose length fits the prompt and honours MaxTokens, and the failure
// modes of real APIs (server errors, timeouts, weak answers, and 429s with a
// retry-after: from a capacity — rpm, tpm, max_concurrency, enforced per
// process — or injected at random with RateLimitRate). Weak answers are more
// likely when a low-capability model gets a hard prompt (see
// Model.Capability), so misrouting shows up in the data as it would in life.
//
// Everything a call does is drawn from llm.Request.Seed: the same seed, model
// and prompt give the same outcome, text, usage and latency.
package sim

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/promptcascade/promptcascade/internal/backoff"
	"github.com/promptcascade/promptcascade/internal/limit"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/seed"
	"github.com/promptcascade/promptcascade/internal/tokens"
)

// Name is the provider name the simulated models are registered under.
const Name = "sim"

// DefaultRetryAfter is sent with simulated rate limits when Model.RetryAfter
// is 0.
const DefaultRetryAfter = time.Second

// DefaultMaxTokens caps an answer when the request sets no MaxTokens.
const DefaultMaxTokens = 4096

// Model describes how one simulated model behaves.
type Model struct {
	// Latency is the mean latency of a successful call with a typical
	// (150-token) answer: half of it is a lognormal "time to first token",
	// half grows with the answer's length. 0 means no sleep at all.
	Latency time.Duration
	// Shares of calls that end in each failure, each in [0,1]; the first
	// three must add up to at most 1.
	ErrorRate     float64 // HTTP 500/503, llm.ClassServerError
	RateLimitRate float64 // HTTP 429, llm.ClassRateLimited, with RetryAfter
	TimeoutRate   float64 // no answer: blocks until ctx is done, llm.ClassTimeout
	WeakRate      float64 // of the answered calls: too short, or a refusal
	// Capability in [0,1]: the lower it is, the more often a hard prompt
	// (long, with complex keywords) gets a weak answer, on top of WeakRate:
	// the weak share is WeakRate + (1-Capability) × hardness × 0.8, with
	// hardness in [0,1]. So a WeakRate of 0 still gives weak answers to
	// hard prompts unless Capability is 1. 0 is the weakest model, not
	// "unset".
	Capability float64
	// RetryAfter is sent with random rate limits; 0 means DefaultRetryAfter.
	RetryAfter time.Duration

	// Capacity, enforced per Provider (so per process: N workers each get
	// the full capacity). A call beyond it fails at once with HTTP 429, as
	// a real provider's would, with a retry-after when waiting helps: the
	// time until the rpm or tpm bucket has room (none for max_concurrency).
	// Buckets hold one second's worth. Zero means unlimited.
	RPM            int // requests per minute
	TPM            int // input plus answer tokens per minute
	MaxConcurrency int // calls in progress at once
}

// Validate reports the first out-of-range field, named as in a routes file
// (latency, error_rate, ...).
func (m Model) Validate() error {
	rate := func(name string, v float64) error {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("%s: %v is not in [0,1]", name, v)
		}
		return nil
	}
	switch {
	case m.Latency < 0:
		return fmt.Errorf("latency: %v is negative", m.Latency)
	case m.RetryAfter < 0:
		return fmt.Errorf("retry_after: %v is negative", m.RetryAfter)
	case m.RPM < 0:
		return fmt.Errorf("rpm: %d is negative", m.RPM)
	case m.TPM < 0:
		return fmt.Errorf("tpm: %d is negative", m.TPM)
	case m.MaxConcurrency < 0:
		return fmt.Errorf("max_concurrency: %d is negative", m.MaxConcurrency)
	}
	for _, r := range []struct {
		name string
		v    float64
	}{
		{"error_rate", m.ErrorRate}, {"rate_limit_rate", m.RateLimitRate}, {"timeout_rate", m.TimeoutRate},
		{"weak_rate", m.WeakRate}, {"capability", m.Capability},
	} {
		if err := rate(r.name, r.v); err != nil {
			return err
		}
	}
	if s := m.ErrorRate + m.RateLimitRate + m.TimeoutRate; s > 1+1e-9 {
		return fmt.Errorf("error_rate + rate_limit_rate + timeout_rate: %v is more than 1", s)
	}
	return nil
}

// Defaults returns the built-in simulated models, keyed by bare id: the
// article's tiers ("claude-haiku", "gpt-4o-mini", "llama-3.3-70b", "gpt-4o",
// "claude-sonnet") and the generic "small", "medium", "large". Their prices
// are in pricing.Builtin under "sim/<id>". Each has error_rate 0.01,
// timeout_rate 0.002, weak_rate 0.02, no random rate limits and no capacity
// limit; latency and capability differ. A routes file that names one of these
// ids overrides only the keys it sets.
//
// There are no random 429s by default: a real provider answers 429 when its
// capacity is used up, and the worker's limiter reads every 429 as that
// (pausing the model and slowing down). Simulate limits with RPM, TPM and
// MaxConcurrency.
func Defaults() map[string]Model {
	m := func(lat time.Duration, capability float64) Model {
		return Model{Latency: lat, ErrorRate: 0.01, TimeoutRate: 0.002, WeakRate: 0.02,
			Capability: capability, RetryAfter: DefaultRetryAfter}
	}
	return map[string]Model{
		"claude-haiku":  m(500*time.Millisecond, 0.55),
		"gpt-4o-mini":   m(450*time.Millisecond, 0.50),
		"llama-3.3-70b": m(250*time.Millisecond, 0.60),
		"gpt-4o":        m(900*time.Millisecond, 0.85),
		"claude-sonnet": m(1200*time.Millisecond, 0.92),
		"small":         m(150*time.Millisecond, 0.35),
		"medium":        m(400*time.Millisecond, 0.65),
		"large":         m(900*time.Millisecond, 0.90),
	}
}

// DefaultFor returns the defaults of the simulated model id: Defaults()[id],
// or, for an id not listed there, a middling model (capability 0.7) that
// never fails.
func DefaultFor(id string) Model {
	if m, ok := Defaults()[id]; ok {
		return m
	}
	return Model{Capability: 0.7, RetryAfter: DefaultRetryAfter}
}

// Provider is the simulated provider. It is safe for concurrent use.
type Provider struct {
	models map[string]*model
	system atomic.Pointer[systemCount] // token count of the last system prompt seen
	batch  batches                     // batch mode (batch.go)
}

type model struct {
	Model
	id   string
	salt uint64 // hash of the id, so that models given the same seed differ

	mu       sync.Mutex // guards the capacity state
	rpm, tpm limit.Bucket
	inflight int
}

type systemCount struct {
	text string
	n    int
}

// New returns a provider serving models (keys are bare ids: "small" for
// "sim/small"). Out-of-range rates are clamped to [0,1]; call Model.Validate
// first to reject them instead.
func New(models map[string]Model) *Provider {
	p := &Provider{models: make(map[string]*model, len(models))}
	for id, m := range models {
		m.ErrorRate = clamp01(m.ErrorRate)
		m.RateLimitRate = clamp01(m.RateLimitRate)
		m.TimeoutRate = clamp01(m.TimeoutRate)
		m.WeakRate = clamp01(m.WeakRate)
		m.Capability = clamp01(m.Capability)
		if m.Latency < 0 {
			m.Latency = 0
		}
		if m.RetryAfter <= 0 {
			m.RetryAfter = DefaultRetryAfter
		}
		mod := &model{Model: m, id: id, salt: seed.String(id)}
		if m.RPM > 0 {
			mod.rpm = limit.NewBucket(float64(m.RPM), time.Now())
		}
		if m.TPM > 0 {
			mod.tpm = limit.NewBucket(float64(m.TPM), time.Now())
		}
		p.models[id] = mod
	}
	return p
}

// Models returns the bare ids the provider serves, sorted.
func (p *Provider) Models() []string {
	out := make([]string, 0, len(p.models))
	for id := range p.models {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Unlimited reports whether the model (a bare id) can never answer 429 or
// overloaded: it has no rpm, tpm or max_concurrency and no random rate
// limits (llm.Unlimited).
func (p *Provider) Unlimited(model string) bool {
	m, ok := p.models[model]
	return ok && m.RPM == 0 && m.TPM == 0 && m.MaxConcurrency == 0 && m.RateLimitRate == 0
}

// kind is what a simulated call ends with.
type kind uint8

const (
	kindOK kind = iota
	kindWeak
	kindServerError
	kindRateLimited
	kindTimeout
)

// plan is everything a call will do, drawn from the seed before any waiting.
type plan struct {
	kind       kind
	status     int
	latency    time.Duration
	text       string
	finish     string
	outTokens  int
	retryAfter time.Duration
}

// Complete simulates one chat completion. Unknown models fail with
// llm.ClassNotFound (HTTP 404); a ctx that is already done, or that ends
// while the simulated latency runs, fails with llm.ClassTimeout.
func (p *Provider) Complete(ctx context.Context, req llm.Request) (llm.Response, error) {
	m, ok := p.models[req.Model]
	if !ok {
		return llm.Response{}, &llm.Error{Class: llm.ClassNotFound, Provider: Name, Model: req.Model, HTTPStatus: 404,
			Message: fmt.Sprintf("model %q does not exist (simulated)", req.Model)}
	}
	if err := ctx.Err(); err != nil {
		return llm.Response{}, timeoutError(m.id, err)
	}
	pl := m.plan(req)
	reqID := requestID(req.Seed)
	inTokens := p.systemTokens(req.System) + tokens.Count(req.Prompt)
	if wait, over := m.admit(inTokens + pl.outTokens); over {
		return llm.Response{}, &llm.Error{Class: llm.ClassRateLimited, Provider: Name, Model: m.id,
			HTTPStatus: 429, RequestID: reqID, RetryAfter: wait, Message: "over the simulated capacity (rpm, tpm or max_concurrency)"}
	}
	defer m.leave()

	if pl.kind == kindTimeout {
		<-ctx.Done()
		return llm.Response{}, timeoutError(m.id, ctx.Err())
	}
	if pl.latency > 0 { // no latency: no wait, and no second look at ctx
		if err := backoff.Sleep(ctx, pl.latency); err != nil {
			return llm.Response{}, timeoutError(m.id, err)
		}
	}
	switch pl.kind {
	case kindServerError:
		msg := "internal server error (simulated)"
		if pl.status == 503 {
			msg = "service unavailable (simulated)"
		}
		return llm.Response{}, &llm.Error{Class: llm.ClassServerError, Provider: Name, Model: m.id,
			HTTPStatus: pl.status, RequestID: reqID, Message: msg}
	case kindRateLimited:
		return llm.Response{}, &llm.Error{Class: llm.ClassRateLimited, Provider: Name, Model: m.id,
			HTTPStatus: 429, RequestID: reqID, RetryAfter: pl.retryAfter, Message: "rate limit exceeded (simulated)"}
	}
	return llm.Response{
		Text:         pl.text,
		FinishReason: pl.finish,
		InputTokens:  inTokens,
		OutputTokens: pl.outTokens,
		HTTPStatus:   200,
		RequestID:    reqID,
	}, nil
}

// admit takes a call's share of the model's capacity, or reports that the
// call is over it and how long until the buckets have room (0: unknown,
// when only max_concurrency is full).
func (m *model) admit(tokens int) (wait time.Duration, over bool) {
	if m.RPM == 0 && m.TPM == 0 && m.MaxConcurrency == 0 {
		return 0, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	wait = max(m.rpm.Wait(now, 1), m.tpm.Wait(now, float64(tokens)))
	if wait > 0 || (m.MaxConcurrency > 0 && m.inflight >= m.MaxConcurrency) {
		return wait, true
	}
	m.rpm.Take(1)
	m.tpm.Take(float64(tokens))
	m.inflight++
	return 0, false
}

func (m *model) leave() {
	if m.RPM == 0 && m.TPM == 0 && m.MaxConcurrency == 0 {
		return
	}
	m.mu.Lock()
	m.inflight--
	m.mu.Unlock()
}

// plan draws the call's outcome, latency and answer from the seed. The order
// of draws is fixed, which is what makes a seed reproducible.
func (m *model) plan(req llm.Request) plan {
	r := newRNG(req.Seed ^ m.salt)
	u := r.Float()
	z := norm(&r)
	lognormal := math.Exp(latencySigma*z - latencySigma*latencySigma/2) // mean 1
	base := float64(m.Latency)

	switch {
	case u < m.TimeoutRate:
		return plan{kind: kindTimeout}
	case u < m.TimeoutRate+m.RateLimitRate:
		return plan{kind: kindRateLimited, status: 429, retryAfter: m.RetryAfter,
			latency: time.Duration(base * 0.05 * lognormal)}
	case u < m.TimeoutRate+m.RateLimitRate+m.ErrorRate:
		status := 500
		if r.Uint64()&1 == 1 {
			status = 503
		}
		return plan{kind: kindServerError, status: status, latency: time.Duration(base * 0.3 * lognormal)}
	}

	if req.System == llm.JudgeSystem {
		if p, a, b, ok := llm.ParseJudgePrompt(req.Prompt); ok {
			pl := plan{kind: kindOK, finish: "stop"}
			pl.text = judge(&r, p, a, b)
			pl.outTokens = tokens.Count(pl.text)
			pl.latency = time.Duration(base * 0.5 * lognormal)
			return pl
		}
	}
	maxTokens := req.MaxTokens
	if maxTokens <= 0 {
		maxTokens = DefaultMaxTokens
	}
	d := measure(req.Prompt)
	pl := plan{kind: kindOK}
	if r.Float() < m.weakProbability(d) {
		pl.kind = kindWeak
		pl.text, pl.outTokens, pl.finish = weakAnswer(&r, maxTokens)
	} else {
		pl.text, pl.outTokens, pl.finish = answer(&r, req.Prompt, d, maxTokens)
	}
	pl.latency = time.Duration(base*0.5*lognormal + base*0.5*float64(pl.outTokens)/typicalAnswerTokens)
	return pl
}

const (
	latencySigma        = 0.4
	typicalAnswerTokens = 150.0
	// weakSlope scales how much a hard prompt raises the weak share of a
	// low-capability model: capability 0 on the hardest prompt adds 0.8.
	weakSlope = 0.8
)

// judgeSlope scales how often the simulated judge finds the cheaper answer
// worse on the hardest prompt.
const judgeSlope = 0.6

// judge plays the pairwise judge of llm.JudgePrompt: answer A is found
// worse than B with probability judgeSlope times the prompt's hardness (the
// same measure that makes simulated models answer weakly), and whenever it
// is less than half as long as B. So shadow labels from simulated runs carry
// the signal a real judge's would.
func judge(r *rng, prompt, a, b string) string {
	pNo := judgeSlope * measure(prompt).hardness()
	if wa, wb := len(strings.Fields(a)), len(strings.Fields(b)); 2*wa < wb {
		pNo = 1
	}
	if r.Float() < pNo {
		return "NO. Answer B is more complete and more exact."
	}
	return "YES. Answer A is as good as answer B."
}

func (m *model) weakProbability(d difficulty) float64 {
	return clamp01(m.WeakRate + (1-m.Capability)*d.hardness()*weakSlope)
}

// systemTokens counts the system prompt, remembering the last one: most jobs
// of a batch share it.
func (p *Provider) systemTokens(s string) int {
	if s == "" {
		return 0
	}
	if c := p.system.Load(); c != nil && c.text == s {
		return c.n
	}
	n := tokens.Count(s)
	p.system.Store(&systemCount{text: s, n: n})
	return n
}

func timeoutError(id string, cause error) *llm.Error {
	return &llm.Error{Class: llm.ClassTimeout, Provider: Name, Model: id,
		Message: "no response before the deadline (simulated)", Err: cause}
}

func requestID(seed uint64) string {
	var b [20]byte
	return string(strconv.AppendUint(append(b[:0], "sim-"...), seed, 16))
}

func clamp01(v float64) float64 {
	if !(v > 0) { // also NaN
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
}

// rng is the project's seeded generator (splitmix64).
type rng = seed.RNG

func newRNG(s uint64) rng { return seed.New(s) }

// norm returns a standard normal value (Box-Muller).
func norm(r *rng) float64 {
	u1 := 1 - r.Float() // (0,1]
	u2 := r.Float()
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}
