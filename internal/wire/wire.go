// Package wire builds the worker's parts from the plain settings of
// internal/config: one provider per provider the routes use, and the
// cascade over them. cmd/worker calls it; tests that run a real worker
// stack call it too. Only cmd/worker (and tests) import it, so enqueue and
// cascadectl link no provider code.
package wire

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/limit"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/anthropic"
	"github.com/promptcascade/promptcascade/internal/llm/gemini"
	"github.com/promptcascade/promptcascade/internal/llm/openai"
	"github.com/promptcascade/promptcascade/internal/llm/sim"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/tokens"
)

// GroqBaseURL is Groq's OpenAI-compatible endpoint root.
const GroqBaseURL = "https://api.groq.com/openai"

// Cascade builds the providers the routes use and the cascade over them.
func Cascade(r *config.Routes, keys config.ProviderKeys, lookup func(string) (string, bool), seed uint64, log *slog.Logger) (*cascade.Cascade, error) {
	reg, err := Registry(r, keys, lookup)
	if err != nil {
		return nil, err
	}
	return cascade.New(CascadeSettings(r, seed), reg, log)
}

// CascadeSettings returns the cascade's settings for these routes.
func CascadeSettings(r *config.Routes, seed uint64) cascade.Settings {
	s := cascade.Settings{
		Tiers:     r.Tiers,
		Models:    make(map[string]cascade.ModelPolicy, len(r.Models)),
		Quality:   r.Quality,
		Backoff:   cascade.Backoff(r.Backoff),
		Cooldown:  cascade.Cooldown(r.Cooldown),
		Shadow:    cascade.Shadow(r.Shadow),
		Seed:      seed,
		CacheTTL:  r.Cache.TTL,
		RateLimit: cascade.RateLimit{OnRateLimit: cascade.OnRateLimit(r.OnRateLimit), MaxWait: r.MaxWait},
	}
	for tier, o := range r.TierOnRateLimit {
		if s.RateLimit.Tiers == nil {
			s.RateLimit.Tiers = make(map[prompt.Tier]cascade.OnRateLimit)
		}
		s.RateLimit.Tiers[tier] = cascade.OnRateLimit(o)
	}
	for name, m := range r.Models {
		pol := cascade.ModelPolicy{Model: name, Timeout: m.Timeout, MaxRetries: m.MaxRetries, HedgeAfter: m.HedgeAfter, Price: m.Price, Batch: m.Batch != nil}
		if m.Sim == nil {
			// On sim/ models the keys are the simulated capacity
			// (SimModels): the limiter must find it, as with a real one.
			pol.Caps = limit.Caps{RPM: m.RPM, TPM: m.TPM, MaxConcurrency: m.MaxConcurrency}
		}
		s.Models[name] = pol
	}
	return s
}

// Registry builds a provider for every provider the routes use. A real
// provider needs its API key unless its base URL is overridden (a local or
// proxy server that takes none). lookup reads the variables named by
// providers.*.api_key_env (os.LookupEnv in production).
func Registry(r *config.Routes, keys config.ProviderKeys, lookup func(string) (string, bool)) (*llm.Registry, error) {
	reg := llm.NewRegistry()
	for _, name := range r.ProviderNames() {
		p, err := newProvider(name, r, keys, lookup)
		if err != nil {
			return nil, err
		}
		reg.Register(name, p)
	}
	return reg, nil
}

// SimModels returns the simulated models of the routes keyed by bare id
// ("small" for "sim/small"): the simulator's defaults for that id with the
// routes file's keys over them. An out-of-range combination is reported
// like any routes-file error.
func SimModels(r *config.Routes) (map[string]sim.Model, error) {
	out := make(map[string]sim.Model)
	for name, m := range r.Models {
		if m.Sim == nil {
			continue
		}
		id := strings.TrimPrefix(name, "sim/")
		s := sim.DefaultFor(id)
		o := m.Sim
		for _, d := range []struct {
			src *float64
			dst *float64
		}{
			{o.ErrorRate, &s.ErrorRate}, {o.RateLimitRate, &s.RateLimitRate}, {o.TimeoutRate, &s.TimeoutRate},
			{o.WeakRate, &s.WeakRate}, {o.Capability, &s.Capability},
		} {
			if d.src != nil {
				*d.dst = *d.src
			}
		}
		if o.Latency != nil {
			s.Latency = *o.Latency
		}
		if o.RetryAfter != nil {
			s.RetryAfter = *o.RetryAfter
		}
		s.RPM, s.TPM, s.MaxConcurrency = m.RPM, m.TPM, m.MaxConcurrency
		if err := s.Validate(); err != nil {
			return nil, r.ModelError(m, err)
		}
		out[id] = s
	}
	return out, nil
}

func needKey(keyVar, key, baseURL string, models []string) error {
	if key == "" && baseURL == "" {
		return fmt.Errorf("%s: the routes use %s but it is not set", keyVar, strings.Join(models, ", "))
	}
	return nil
}

func newProvider(name string, r *config.Routes, keys config.ProviderKeys, lookup func(string) (string, bool)) (llm.Provider, error) {
	var models []string
	for m := range r.Models {
		if strings.HasPrefix(m, name+"/") {
			models = append(models, m)
		}
	}
	count := tokens.Count
	switch name {
	case "sim":
		ms, err := SimModels(r)
		if err != nil {
			return nil, err
		}
		return sim.New(ms), nil
	case "openai":
		if err := needKey("OPENAI_API_KEY", keys.OpenAIKey, keys.OpenAIBaseURL, models); err != nil {
			return nil, err
		}
		return openai.New(openai.Config{Name: name, BaseURL: keys.OpenAIBaseURL, APIKey: keys.OpenAIKey, CountTokens: count})
	case "groq":
		if err := needKey("GROQ_API_KEY", keys.GroqKey, keys.GroqBaseURL, models); err != nil {
			return nil, err
		}
		base := keys.GroqBaseURL
		if base == "" {
			base = GroqBaseURL
		}
		return openai.New(openai.Config{Name: name, BaseURL: base, APIKey: keys.GroqKey, CountTokens: count})
	case "anthropic":
		if err := needKey("ANTHROPIC_API_KEY", keys.AnthropicKey, keys.AnthropicBaseURL, models); err != nil {
			return nil, err
		}
		return anthropic.New(anthropic.Config{BaseURL: keys.AnthropicBaseURL, APIKey: keys.AnthropicKey, Version: keys.AnthropicVersion, CountTokens: count})
	case "gemini":
		if err := needKey("GEMINI_API_KEY", keys.GeminiKey, keys.GeminiBaseURL, models); err != nil {
			return nil, err
		}
		return gemini.New(gemini.Config{BaseURL: keys.GeminiBaseURL, APIKey: keys.GeminiKey, CountTokens: count})
	}
	p, ok := r.Providers[name]
	if !ok {
		return nil, fmt.Errorf("provider %q: not built in and not declared under providers: in %s", name, r.Source)
	}
	var key string
	if p.APIKeyEnv != "" {
		key, _ = lookup(p.APIKeyEnv)
	}
	return openai.New(openai.Config{Name: name, BaseURL: p.BaseURL, APIKey: key, LegacyMaxTokens: p.LegacyMaxTokens, CountTokens: count})
}
