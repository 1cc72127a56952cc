// Package llm is the seam between promptcascade and model providers. It owns
// the Provider interface that every adapter (openai, anthropic, gemini, sim)
// implements, the typed Error that carries a behavioural Class, and the
// Registry that resolves "provider/model" strings to a Provider.
package llm

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Request is one chat completion: a system message and one user message.
type Request struct {
	// Model is the provider's own model id, with the "provider/" prefix
	// already removed ("gpt-4o-mini", not "openai/gpt-4o-mini").
	Model     string
	System    string
	Prompt    string
	MaxTokens int // 0 means the adapter's default

	// Seed is a deterministic per-call value chosen by the cascade. The
	// simulated provider draws its randomness from it so that a run is
	// reproducible; real providers ignore it.
	Seed uint64
}

// Response is a successful completion.
type Response struct {
	Text         string
	FinishReason string // normalised: "stop", "length", "content_filter", "tool_calls", or the provider's value

	InputTokens      int // billed input tokens, excluding cache reads and writes
	OutputTokens     int // billed output tokens (reasoning tokens included)
	CacheReadTokens  int
	CacheWriteTokens int
	// UsageEstimated is true when the provider reported no usage and the
	// token counts were estimated locally.
	UsageEstimated bool

	HTTPStatus int
	RequestID  string // provider's request id, for support tickets
	Quota      Quota  // rate-limit headers of the reply, when sent
}

// Provider sends one request to one provider. Implementations must be safe for
// concurrent use, honour ctx (deadline and cancellation), and return failures
// as *Error so that callers can act on the Class.
type Provider interface {
	Complete(ctx context.Context, req Request) (Response, error)
}

// Unlimited is implemented by a provider that can tell that one of its
// models never answers with a rate limit or an overload, whatever the load
// (the simulator's models without a capacity or random rate limits). The
// cascade gives such a model no adaptive limiter: there is no capacity to
// find, so its calls start at once, up to the worker's slots.
type Unlimited interface {
	Unlimited(model string) bool
}

// Registry maps provider names ("openai", "sim", ...) to providers.
type Registry struct {
	mu        sync.RWMutex
	providers map[string]Provider
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{providers: make(map[string]Provider)}
}

// Register adds or replaces the provider for name.
func (r *Registry) Register(name string, p Provider) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.providers[name] = p
}

// Names returns the registered provider names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.providers))
	for n := range r.providers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Resolve splits "provider/model" and returns the provider and the bare model id.
func (r *Registry) Resolve(model string) (Provider, string, error) {
	name, id, err := SplitModel(model)
	if err != nil {
		return nil, "", err
	}
	r.mu.RLock()
	p, ok := r.providers[name]
	r.mu.RUnlock()
	if !ok {
		return nil, "", fmt.Errorf("model %q: unknown provider %q (known: %s)", model, name, strings.Join(r.Names(), ", "))
	}
	return p, id, nil
}

// SplitModel splits "provider/model" into its two parts. The model part may
// itself contain slashes ("together/meta-llama/Llama-3-70b").
func SplitModel(model string) (provider, id string, err error) {
	provider, id, ok := strings.Cut(model, "/")
	if !ok || provider == "" || id == "" {
		return "", "", fmt.Errorf("model %q: want \"provider/model\"", model)
	}
	return provider, id, nil
}

// Quota is what a provider's rate-limit headers said about the caller's
// capacity when it answered (OpenAI's x-ratelimit-*, Anthropic's
// anthropic-ratelimit-*). The zero value means the provider sent none.
type Quota struct {
	Requests, Tokens QuotaWindow
}

// QuotaWindow is one rate-limit window.
type QuotaWindow struct {
	Known     bool    // Remaining was sent
	Limit     float64 // the window's size; 0 when not sent
	Remaining float64
	Reset     time.Duration // until the window is full again; 0 when not sent
}
