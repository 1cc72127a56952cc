package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/sim"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

//go:embed default_routes.yaml
var defaultRoutes []byte

// DefaultRoutesYAML returns the built-in routes file (used when ROUTES_FILE is unset).
func DefaultRoutesYAML() []byte { return bytes.Clone(defaultRoutes) }

// Defaults applied to a model that does not set them (the article's timeout=30, num_retries=1).
const (
	DefaultModelTimeout    = 30 * time.Second
	DefaultModelMaxRetries = 1
)

// Routes is a validated routes file.
type Routes struct {
	Source     string // file name, or "built-in defaults"
	Tiers      map[prompt.Tier][]string
	Models     map[string]Model // every model named in Tiers, resolved
	Classifier classify.Rules
	Quality    cascade.QualityRules
	Backoff    cascade.Backoff
	Cooldown   cascade.Cooldown
	Providers  map[string]Provider // named OpenAI-compatible servers
}

// Model is one model's resolved settings.
type Model struct {
	Name       string // "provider/model"
	Timeout    time.Duration
	MaxRetries int
	Price      pricing.Price
	Sim        *sim.Model // set for sim/ models only
}

// Provider is a named OpenAI-compatible server declared in the routes file.
type Provider struct {
	Name            string
	BaseURL         string
	APIKeyEnv       string // name of the variable holding its key; empty for none
	LegacyMaxTokens bool   // send max_tokens instead of max_completion_tokens
}

// duration is a YAML scalar like "250ms" or "10s".
type duration struct{ time.Duration }

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration like \"10s\"", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q", n.Line, s)
	}
	d.Duration = v
	return nil
}

type rawModel struct {
	Latency       *duration `yaml:"latency"`
	Timeout       *duration `yaml:"timeout"`
	MaxRetries    *int      `yaml:"max_retries"`
	ErrorRate     *float64  `yaml:"error_rate"`
	RateLimitRate *float64  `yaml:"rate_limit_rate"`
	TimeoutRate   *float64  `yaml:"timeout_rate"`
	WeakRate      *float64  `yaml:"weak_rate"`
	Capability    *float64  `yaml:"capability"`
	RetryAfter    *duration `yaml:"retry_after"`

	InputCost      *float64 `yaml:"input_cost_per_mtok"`
	OutputCost     *float64 `yaml:"output_cost_per_mtok"`
	CacheReadCost  *float64 `yaml:"cache_read_cost_per_mtok"`
	CacheWriteCost *float64 `yaml:"cache_write_cost_per_mtok"`
	ContextWindow  *int     `yaml:"context_window"`
}

type rawProvider struct {
	Type            string `yaml:"type"`
	BaseURL         string `yaml:"base_url"`
	APIKeyEnv       string `yaml:"api_key_env"`
	LegacyMaxTokens bool   `yaml:"legacy_max_tokens"`
}

type rawRoutes struct {
	Tiers      map[string][]string           `yaml:"tiers"`
	Models     map[string]rawModel           `yaml:"models"`
	Classifier classify.Rules                `yaml:"classifier"`
	Quality    cascade.QualityRules          `yaml:"quality"`
	Backoff    struct{ Base, Max *duration } `yaml:"backoff"`
	Cooldown   struct {
		Failures        *int      `yaml:"failures"`
		Period          *duration `yaml:"period"`
		Window          *duration `yaml:"window"`
		MaxFailureShare *float64  `yaml:"max_failure_share"`
		MinCalls        *int      `yaml:"min_calls"`
	} `yaml:"cooldown"`
	Providers map[string]rawProvider `yaml:"providers"`
}

// LoadPrices returns the built-in price table, with the LiteLLM-format
// PRICING_FILE at path (if any) added over it.
func LoadPrices(path string) (*pricing.Table, error) {
	prices := pricing.Builtin()
	if path == "" {
		return prices, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("PRICING_FILE: %w", err)
	}
	defer f.Close()
	if err := prices.LoadLiteLLM(f); err != nil {
		return nil, fmt.Errorf("PRICING_FILE %s: %w", path, err)
	}
	return prices, nil
}

// LoadRoutes reads the routes file at path ("" means the built-in defaults)
// and resolves every model's price from the file or from prices.
func LoadRoutes(path string, prices *pricing.Table) (*Routes, error) {
	if path == "" {
		return ParseRoutes("built-in routes", bytes.NewReader(defaultRoutes), prices)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ROUTES_FILE: %w", err)
	}
	defer f.Close()
	return ParseRoutes(path, f, prices)
}

// ParseRoutes parses and validates a routes file. Every error names the key.
func ParseRoutes(name string, r io.Reader, prices *pricing.Table) (*Routes, error) {
	raw := rawRoutes{Classifier: classify.DefaultRules(), Quality: cascade.DefaultQuality()}
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty routes file", name)
		}
		return nil, fmt.Errorf("%s: %s", name, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	rt, errs := raw.resolve(prices)
	if len(errs) > 0 {
		for i, e := range errs {
			errs[i] = fmt.Errorf("%s: %w", name, e)
		}
		return nil, errors.Join(errs...)
	}
	rt.Source = name
	return rt, nil
}

func (raw *rawRoutes) resolve(prices *pricing.Table) (*Routes, []error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	rt := &Routes{
		Tiers:      make(map[prompt.Tier][]string),
		Models:     make(map[string]Model),
		Classifier: raw.Classifier,
		Quality:    raw.Quality,
		Backoff:    cascade.Backoff{Base: 200 * time.Millisecond, Max: 10 * time.Second},
		Providers:  make(map[string]Provider),
	}
	if err := raw.Classifier.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := raw.Quality.Validate(); err != nil {
		errs = append(errs, err)
	}
	if b := raw.Backoff.Base; b != nil {
		rt.Backoff.Base = b.Duration
	}
	if m := raw.Backoff.Max; m != nil {
		rt.Backoff.Max = m.Duration
	}
	if rt.Backoff.Base <= 0 {
		bad("backoff.base: must be > 0")
	}
	if rt.Backoff.Max < rt.Backoff.Base {
		bad("backoff.max: must be >= backoff.base (%s)", rt.Backoff.Base)
	}
	if f := raw.Cooldown.Failures; f != nil {
		if *f < 0 {
			bad("cooldown.failures: must be >= 0 (0 turns cooldown off), got %d", *f)
		}
		rt.Cooldown.Failures = *f
	}
	if p := raw.Cooldown.Period; p != nil {
		rt.Cooldown.Period = p.Duration
	}
	if rt.Cooldown.Failures > 0 && rt.Cooldown.Period <= 0 {
		bad("cooldown.period: must be > 0 when cooldown.failures is set")
	}
	if w := raw.Cooldown.Window; w != nil {
		rt.Cooldown.Window = w.Duration
	}
	if s := raw.Cooldown.MaxFailureShare; s != nil {
		rt.Cooldown.MaxFailureShare = *s
	}
	if m := raw.Cooldown.MinCalls; m != nil {
		rt.Cooldown.MinCalls = *m
	}
	if c := rt.Cooldown; c.MaxFailureShare != 0 || c.Window != 0 || c.MinCalls != 0 {
		switch {
		case !(c.MaxFailureShare > 0 && c.MaxFailureShare < 1):
			bad("cooldown.max_failure_share: must be > 0 and < 1 (cooldown.window and cooldown.min_calls need it), got %g", c.MaxFailureShare)
		case c.Window <= 0:
			bad("cooldown.window: must be > 0 when cooldown.max_failure_share is set")
		case c.MinCalls < 0:
			bad("cooldown.min_calls: must be >= 0 (0 means %d), got %d", cascade.DefaultCooldownMinCalls, c.MinCalls)
		case c.Period <= 0:
			bad("cooldown.period: must be > 0 when cooldown.max_failure_share is set")
		}
	}

	for name, p := range raw.Providers {
		key := "providers." + name
		switch {
		case builtinProvider(name):
			bad("%s: %q is a built-in provider; configure it with %s_BASE_URL", key, name, strings.ToUpper(name))
		case p.Type != "" && p.Type != "openai":
			bad("%s.type: %q is not supported (only \"openai\"-compatible servers)", key, p.Type)
		case p.BaseURL == "":
			bad("%s.base_url: required", key)
		default:
			rt.Providers[name] = Provider{Name: name, BaseURL: p.BaseURL, APIKeyEnv: p.APIKeyEnv, LegacyMaxTokens: p.LegacyMaxTokens}
		}
	}

	if len(raw.Tiers) == 0 {
		bad("tiers: missing (want simple, moderate and complex)")
	}
	for tier := range raw.Tiers {
		if !prompt.Tier(tier).Valid() {
			bad("tiers.%s: unknown tier (want simple, moderate, complex)", tier)
		}
	}
	for _, tier := range prompt.Tiers {
		models, ok := raw.Tiers[string(tier)]
		if !ok && len(raw.Tiers) > 0 {
			bad("tiers.%s: missing", tier)
			continue
		}
		if ok && len(models) == 0 {
			bad("tiers.%s: empty; list at least one model", tier)
			continue
		}
		for i, m := range models {
			key := fmt.Sprintf("tiers.%s[%d]", tier, i)
			if slices.Index(models, m) != i {
				bad("%s: %q is listed twice", key, m)
				continue
			}
			if _, ok := rt.Models[m]; !ok {
				mod, err := raw.model(m, prices, rt.Providers)
				if err != nil {
					bad("%s: %w", key, err)
					continue
				}
				rt.Models[m] = mod
			}
		}
		rt.Tiers[tier] = models
	}
	for name := range raw.Models {
		if _, used := rt.Models[name]; !used {
			// Validate unused entries too, so typos surface at start.
			if _, err := raw.model(name, prices, rt.Providers); err != nil {
				bad("%w", err)
			}
		}
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return rt, errs
}

func builtinProvider(name string) bool {
	switch name {
	case "sim", "openai", "anthropic", "gemini", "groq":
		return true
	}
	return false
}

// model resolves one model's settings: the routes file first, then the price table.
func (raw *rawRoutes) model(name string, prices *pricing.Table, providers map[string]Provider) (Model, error) {
	provider, _, err := llm.SplitModel(name)
	if err != nil {
		return Model{}, err
	}
	if _, named := providers[provider]; !builtinProvider(provider) && !named {
		return Model{}, fmt.Errorf("model %q: unknown provider %q (built in: sim, openai, anthropic, gemini, groq; declare others under providers:)", name, provider)
	}
	key := "models." + name
	rm, inFile := raw.Models[name]
	price, priced := prices.Lookup(name)
	if !inFile && !priced {
		return Model{}, fmt.Errorf("unknown model %q: not under models: and no built-in price (add it under models: with input_cost_per_mtok and output_cost_per_mtok)", name)
	}
	m := Model{Name: name, Timeout: DefaultModelTimeout, MaxRetries: DefaultModelMaxRetries, Price: price}
	if rm.Timeout != nil {
		if rm.Timeout.Duration <= 0 {
			return Model{}, fmt.Errorf("%s.timeout: must be > 0", key)
		}
		m.Timeout = rm.Timeout.Duration
	}
	if rm.MaxRetries != nil {
		if *rm.MaxRetries < 0 || *rm.MaxRetries > 10 {
			return Model{}, fmt.Errorf("%s.max_retries: must be between 0 and 10, got %d", key, *rm.MaxRetries)
		}
		m.MaxRetries = *rm.MaxRetries
	}
	setCost := func(field string, dst *float64, v *float64) error {
		if v == nil {
			return nil
		}
		if *v < 0 {
			return fmt.Errorf("%s.%s: must be >= 0, got %g", key, field, *v)
		}
		*dst = *v
		return nil
	}
	if err := errors.Join(
		setCost("input_cost_per_mtok", &m.Price.InputPerMTok, rm.InputCost),
		setCost("output_cost_per_mtok", &m.Price.OutputPerMTok, rm.OutputCost),
		setCost("cache_read_cost_per_mtok", &m.Price.CacheReadPerMTok, rm.CacheReadCost),
		setCost("cache_write_cost_per_mtok", &m.Price.CacheWritePerMTok, rm.CacheWriteCost),
	); err != nil {
		return Model{}, err
	}
	if !priced && (rm.InputCost == nil || rm.OutputCost == nil) {
		return Model{}, fmt.Errorf("%s: no built-in price; set input_cost_per_mtok and output_cost_per_mtok", key)
	}
	if rm.ContextWindow != nil {
		if *rm.ContextWindow < 0 {
			return Model{}, fmt.Errorf("%s.context_window: must be >= 0, got %d", key, *rm.ContextWindow)
		}
		m.Price.ContextWindow = *rm.ContextWindow
	}

	simOnly := map[string]bool{
		"latency": rm.Latency != nil, "error_rate": rm.ErrorRate != nil, "rate_limit_rate": rm.RateLimitRate != nil,
		"timeout_rate": rm.TimeoutRate != nil, "weak_rate": rm.WeakRate != nil, "capability": rm.Capability != nil,
		"retry_after": rm.RetryAfter != nil,
	}
	if provider != "sim" {
		for _, f := range sortedTrue(simOnly) {
			return Model{}, fmt.Errorf("%s.%s: only simulated (sim/) models take this key", key, f)
		}
		return m, nil
	}
	_, id, _ := llm.SplitModel(name)
	s, known := sim.Defaults()[id]
	if !known {
		s = sim.Model{Capability: 0.7, RetryAfter: sim.DefaultRetryAfter}
	}
	for _, d := range []struct {
		src *duration
		dst *time.Duration
	}{{rm.Latency, &s.Latency}, {rm.RetryAfter, &s.RetryAfter}} {
		if d.src != nil {
			*d.dst = d.src.Duration
		}
	}
	for _, r := range []struct {
		src *float64
		dst *float64
	}{
		{rm.ErrorRate, &s.ErrorRate}, {rm.RateLimitRate, &s.RateLimitRate}, {rm.TimeoutRate, &s.TimeoutRate},
		{rm.WeakRate, &s.WeakRate}, {rm.Capability, &s.Capability},
	} {
		if r.src != nil {
			*r.dst = *r.src
		}
	}
	if err := s.Validate(); err != nil {
		return Model{}, fmt.Errorf("%s.%w", key, err)
	}
	m.Sim = &s
	return m, nil
}

func sortedTrue(m map[string]bool) []string {
	var out []string
	for k, v := range m {
		if v {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// CascadeSettings returns the cascade's settings for these routes.
func (r *Routes) CascadeSettings(seed uint64) cascade.Settings {
	s := cascade.Settings{
		Tiers:    r.Tiers,
		Models:   make(map[string]cascade.ModelPolicy, len(r.Models)),
		Quality:  r.Quality,
		Backoff:  r.Backoff,
		Cooldown: r.Cooldown,
		Seed:     seed,
	}
	for name, m := range r.Models {
		s.Models[name] = cascade.ModelPolicy{Model: name, Timeout: m.Timeout, MaxRetries: m.MaxRetries, Price: m.Price}
	}
	return s
}

// SimModels returns the simulated models keyed by bare id ("small" for "sim/small").
func (r *Routes) SimModels() map[string]sim.Model {
	out := make(map[string]sim.Model)
	for name, m := range r.Models {
		if m.Sim != nil {
			out[strings.TrimPrefix(name, "sim/")] = *m.Sim
		}
	}
	return out
}

// ProviderNames returns the provider names the routes use, sorted.
func (r *Routes) ProviderNames() []string {
	seen := map[string]bool{}
	for name := range r.Models {
		p, _, _ := llm.SplitModel(name)
		seen[p] = true
	}
	return sortedTrue(seen)
}
