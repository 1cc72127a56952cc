package config

import (
	"fmt"
	"strings"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/anthropic"
	"github.com/promptcascade/promptcascade/internal/llm/gemini"
	"github.com/promptcascade/promptcascade/internal/llm/openai"
	"github.com/promptcascade/promptcascade/internal/llm/sim"
	"github.com/promptcascade/promptcascade/internal/pricing"
)

// GroqBaseURL is Groq's OpenAI-compatible endpoint root.
const GroqBaseURL = "https://api.groq.com/openai"

// Registry builds a provider for every provider the routes use. A real
// provider needs its API key unless its base URL is overridden (a local or
// proxy server that takes none). lookup reads the variables named by
// providers.*.api_key_env (os.LookupEnv in production).
func Registry(r *Routes, keys ProviderKeys, lookup func(string) (string, bool)) (*llm.Registry, error) {
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

func needKey(provider, keyVar, key, baseURL string, models []string) error {
	if key == "" && baseURL == "" {
		return fmt.Errorf("%s: the routes use %s but it is not set", keyVar, strings.Join(models, ", "))
	}
	return nil
}

func newProvider(name string, r *Routes, keys ProviderKeys, lookup func(string) (string, bool)) (llm.Provider, error) {
	var models []string
	for m := range r.Models {
		if strings.HasPrefix(m, name+"/") {
			models = append(models, m)
		}
	}
	count := pricing.CountTokens
	switch name {
	case "sim":
		return sim.New(r.SimModels()), nil
	case "openai":
		if err := needKey(name, "OPENAI_API_KEY", keys.OpenAIKey, keys.OpenAIBaseURL, models); err != nil {
			return nil, err
		}
		return openai.New(openai.Config{Name: name, BaseURL: keys.OpenAIBaseURL, APIKey: keys.OpenAIKey, CountTokens: count})
	case "groq":
		if err := needKey(name, "GROQ_API_KEY", keys.GroqKey, keys.GroqBaseURL, models); err != nil {
			return nil, err
		}
		base := keys.GroqBaseURL
		if base == "" {
			base = GroqBaseURL
		}
		return openai.New(openai.Config{Name: name, BaseURL: base, APIKey: keys.GroqKey, CountTokens: count})
	case "anthropic":
		if err := needKey(name, "ANTHROPIC_API_KEY", keys.AnthropicKey, keys.AnthropicBaseURL, models); err != nil {
			return nil, err
		}
		return anthropic.New(anthropic.Config{BaseURL: keys.AnthropicBaseURL, APIKey: keys.AnthropicKey, Version: keys.AnthropicVersion, CountTokens: count})
	case "gemini":
		if err := needKey(name, "GEMINI_API_KEY", keys.GeminiKey, keys.GeminiBaseURL, models); err != nil {
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
