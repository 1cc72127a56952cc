package config

import (
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/quality"
)

//go:embed default_routes.yaml
var defaultRoutes []byte

// builtinRoutes is the Source of the built-in routes.
const builtinRoutes = "built-in routes"

// DefaultRoutesYAML returns the built-in routes file (used when ROUTES_FILE is unset).
func DefaultRoutesYAML() []byte { return bytes.Clone(defaultRoutes) }

// DefaultModelMaxRetries is a model's max_retries when the routes file does
// not set it (the article's num_retries=1). A model's timeout defaults to
// the cascade's (cascade.DefaultTimeout).
const DefaultModelMaxRetries = 1

// BuiltinProviders are the provider names every binary knows without a
// providers: entry.
var BuiltinProviders = []string{"sim", "openai", "anthropic", "gemini", "groq"}

// Routes is a validated routes file: plain settings, which cmd/* turns into
// providers and a cascade.
type Routes struct {
	Source     string // file name, or "built-in routes"
	Tiers      map[prompt.Tier][]string
	Models     map[string]Model // every model named in Tiers, resolved
	Classifier classify.Rules   // the heuristic's rules; it also measures the signals under a learned router
	Learned    *Learned         // classifier.kind: learned; nil for the heuristic
	Shadow     Shadow           // shadow labelling; Share 0 is off
	Quality    quality.Rules
	Backoff    Backoff
	Cooldown   Cooldown
	Providers  map[string]Provider // named OpenAI-compatible servers

	// OnRateLimit is what a prompt does when its model is rate-limited or
	// overloaded: "wait" (the default) or "cascade"; TierOnRateLimit
	// overrides it per tier. MaxWait bounds one prompt's wait for one
	// model; 0 means the cascade's default (10m).
	OnRateLimit     string
	TierOnRateLimit map[prompt.Tier]string
	MaxWait         time.Duration

	// Cache is the response cache (cache: {ttl: 30d}); TTL 0 is off.
	Cache Cache
}

// Cache turns the response cache on: a model's answer to the same call
// (system, prompt, parameters) stored within TTL is reused at $0.
type Cache struct{ TTL time.Duration }

// On_rate_limit values.
const (
	OnRateLimitWait    = "wait"
	OnRateLimitCascade = "cascade"
)

// Backoff spaces same-model retries (cascade.Backoff); zero values take
// the cascade's defaults.
type Backoff struct{ Base, Max time.Duration }

// Cooldown takes failing models out of rotation (cascade.Cooldown).
type Cooldown struct {
	Failures        int
	Period          time.Duration
	Window          time.Duration
	MaxFailureShare float64
	MinCalls        int
}

// Model is one model's resolved settings.
type Model struct {
	Name       string        // "provider/model"
	Line       int           // where the routes file defines it (models:) or first names it (tiers:)
	Timeout    time.Duration // per attempt; 0 means the cascade's default
	MaxRetries int
	// HedgeAfter (hedge_after; 0: off): a call with no answer after this
	// long gets a second, identical call on the same model; the first
	// answer wins.
	HedgeAfter time.Duration
	Price      pricing.Price
	Sim        *Sim       // the simulator keys the file sets, for sim/ models; nil for others
	Batch      *BatchMode // set for batch-mode models (batch.go)
	// rpm, tpm and max_concurrency (0: none): static caps of this process's
	// calls to the model. On a sim/ model they are the simulated provider's
	// capacity instead, which the limiter finds as it would a real one's.
	RPM, TPM, MaxConcurrency int
}

// Sim holds the keys a routes file sets for a simulated model; a nil field
// keeps the simulator's default for that model.
type Sim struct {
	Latency, RetryAfter                                         *time.Duration
	ErrorRate, RateLimitRate, TimeoutRate, WeakRate, Capability *float64
}

// Provider is a named OpenAI-compatible server declared in the routes file.
type Provider struct {
	Name            string
	BaseURL         string
	APIKeyEnv       string // name of the variable holding its key; empty for none
	LegacyMaxTokens bool   // send max_tokens instead of max_completion_tokens
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
		return ParseRoutes(builtinRoutes, bytes.NewReader(defaultRoutes), prices)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ROUTES_FILE: %w", err)
	}
	defer f.Close()
	return ParseRoutes(path, f, prices)
}

// ParseRoutes parses and validates a routes file. It reports every problem
// of the file, one *FileError each ("routes.yaml:8: models.sim/small:
// unknown key "timout" (did you mean "timeout"?)"), joined.
func ParseRoutes(name string, r io.Reader, prices *pricing.Table) (*Routes, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	d := &doc{file: name}
	root := d.parseYAML(src)
	if root == nil {
		return nil, d.err()
	}
	rf := routesFile{d: d, prices: prices, rt: &Routes{
		Source:      name,
		Tiers:       make(map[prompt.Tier][]string),
		Models:      make(map[string]Model),
		Classifier:  classify.DefaultRules(),
		Quality:     quality.Default(),
		Providers:   make(map[string]Provider),
		OnRateLimit: OnRateLimitWait,
	}, entries: make(map[string]*modelEntry)}
	rf.decode(resolve(root))
	rf.resolveModels()
	if err := d.err(); err != nil {
		return nil, err
	}
	return rf.rt, nil
}

// routesFile decodes one routes file. Each section has its own method, and
// each key is one entry of its section's fields: adding a key is adding a
// field to the settings struct and one entry here.
type routesFile struct {
	d      *doc
	prices *pricing.Table
	rt     *Routes

	judge     *yaml.Node                   // the shadow.judge value, nil when missing
	tiers     *yaml.Node                   // the tiers: value, nil when missing
	tierItems map[prompt.Tier][]*yaml.Node // the list items, for errors about a model
	entries   map[string]*modelEntry       // models: entries
}

// modelEntry is one models: entry as written.
type modelEntry struct {
	key           *yaml.Node
	m             Model
	input, output bool        // the file sets these prices
	batch         *batchEntry // the batch: value, resolved with the providers known
}

func (f *routesFile) decode(root *yaml.Node) {
	f.d.object(root, "", fields{
		"tiers":      f.decodeTiers,
		"models":     f.decodeModels,
		"classifier": f.decodeClassifier,
		"quality":    f.decodeQuality,
		"backoff":    f.decodeBackoff,
		"cooldown":   f.decodeCooldown,
		"providers":  f.decodeProviders,
		"shadow":     f.decodeShadow,
		"on_rate_limit": func(v *yaml.Node) {
			f.onRateLimit(v, "on_rate_limit", &f.rt.OnRateLimit)
		},
		"max_wait": func(v *yaml.Node) {
			if f.d.duration(v, "max_wait", &f.rt.MaxWait) {
				f.d.positive(v, "max_wait", f.rt.MaxWait)
			}
		},
		"cache": f.decodeCache,
	})
}

// decodeCache decodes cache: {ttl: 30d}; ttl is required.
func (f *routesFile) decodeCache(v *yaml.Node) {
	d := f.d
	var ttl *yaml.Node
	d.object(v, "cache", fields{
		"ttl": func(v *yaml.Node) {
			ttl = v
			if !d.scalar(v, "cache.ttl", `an age like "30d" or "12h"`) {
				return
			}
			t, err := ParseAge(v.Value)
			if err != nil {
				d.errorf(v, "cache.ttl", "%q: %v", v.Value, err)
				return
			}
			f.rt.Cache.TTL = t
		},
	})
	if ttl == nil && v.Kind == yaml.MappingNode {
		d.errorf(v, "cache.ttl", "required (e.g. ttl: 30d)")
	}
}

// onRateLimit decodes an on_rate_limit value: wait or cascade.
func (f *routesFile) onRateLimit(v *yaml.Node, key string, dst *string) {
	var o string
	if !f.d.text(v, key, &o) {
		return
	}
	if o != OnRateLimitWait && o != OnRateLimitCascade {
		f.d.errorf(v, key, "%q is not wait or cascade", o)
		return
	}
	*dst = o
}

func (f *routesFile) decodeTiers(v *yaml.Node) {
	d := f.d
	f.tiers = v
	f.tierItems = make(map[prompt.Tier][]*yaml.Node)
	d.entries(v, "tiers", func(name string, k, list *yaml.Node) {
		key := "tiers." + name
		tier := prompt.Tier(name)
		if !tier.Valid() {
			d.errorf(k, key, "unknown tier (want simple, moderate, complex)")
			return
		}
		// A tier is a list of models, or {models: [...], on_rate_limit: ...}.
		if list.Kind == yaml.MappingNode {
			entry := list
			list = nil
			d.object(entry, key, fields{
				"models": func(v *yaml.Node) { list = v },
				"on_rate_limit": func(v *yaml.Node) {
					var o string
					f.onRateLimit(v, key+".on_rate_limit", &o)
					if o != "" {
						if f.rt.TierOnRateLimit == nil {
							f.rt.TierOnRateLimit = make(map[prompt.Tier]string)
						}
						f.rt.TierOnRateLimit[tier] = o
					}
				},
			})
			if list == nil {
				d.errorf(entry, key+".models", "required")
				return
			}
			key += ".models"
		}
		var models []string
		if !d.texts(list, key, &models) {
			return
		}
		if len(models) == 0 {
			d.errorf(list, key, "empty; list at least one model")
			return
		}
		for i, m := range models {
			if first := slices.Index(models, m); first != i {
				d.errorf(list.Content[i], fmt.Sprintf("%s[%d]", key, i), "%q is listed twice", m)
			}
		}
		f.rt.Tiers[tier] = models
		f.tierItems[tier] = list.Content
	})
}

func (f *routesFile) decodeModels(v *yaml.Node) {
	f.d.entries(v, "models", func(name string, k, v *yaml.Node) {
		f.entries[name] = f.decodeModel(name, k, v)
	})
}

func (f *routesFile) decodeModel(name string, k, v *yaml.Node) *modelEntry {
	d := f.d
	path := "models." + name
	e := &modelEntry{key: k, m: Model{Name: name, Line: k.Line, MaxRetries: DefaultModelMaxRetries}}
	m := &e.m
	m.Price, _ = f.prices.Lookup(name)
	provider, _, _ := llm.SplitModel(name) // a bad name is reported where the model is resolved
	var s Sim
	if provider == "sim" {
		m.Sim = &s
	}
	cost := func(key string, dst *float64, given *bool) func(*yaml.Node) {
		return func(v *yaml.Node) {
			if d.number(v, path+"."+key, dst) {
				*given = true
				if *dst < 0 {
					d.errorf(v, path+"."+key, "must be >= 0, got %g", *dst)
				}
			}
		}
	}
	var unused bool
	simDur := func(key string, dst **time.Duration) func(*yaml.Node) {
		return func(v *yaml.Node) {
			var x time.Duration
			if f.simOnly(v, path, key, provider) && d.duration(v, path+"."+key, &x) {
				d.nonNegative(v, path+"."+key, x)
				*dst = &x
			}
		}
	}
	simShare := func(key string, dst **float64) func(*yaml.Node) {
		return func(v *yaml.Node) {
			var x float64
			if f.simOnly(v, path, key, provider) && d.number(v, path+"."+key, &x) {
				d.share(v, path+"."+key, x)
				*dst = &x
			}
		}
	}
	d.object(v, path, fields{
		"timeout": func(v *yaml.Node) {
			if d.duration(v, path+".timeout", &m.Timeout) {
				d.positive(v, path+".timeout", m.Timeout)
			}
		},
		"max_retries": func(v *yaml.Node) {
			if d.integer(v, path+".max_retries", &m.MaxRetries) && (m.MaxRetries < 0 || m.MaxRetries > 10) {
				d.errorf(v, path+".max_retries", "must be between 0 and 10, got %d", m.MaxRetries)
			}
		},
		"hedge_after": func(v *yaml.Node) {
			if d.duration(v, path+".hedge_after", &m.HedgeAfter) {
				d.nonNegative(v, path+".hedge_after", m.HedgeAfter)
			}
		},
		"input_cost_per_mtok":       cost("input_cost_per_mtok", &m.Price.InputPerMTok, &e.input),
		"output_cost_per_mtok":      cost("output_cost_per_mtok", &m.Price.OutputPerMTok, &e.output),
		"cache_read_cost_per_mtok":  cost("cache_read_cost_per_mtok", &m.Price.CacheReadPerMTok, &unused),
		"cache_write_cost_per_mtok": cost("cache_write_cost_per_mtok", &m.Price.CacheWritePerMTok, &unused),
		"context_window": func(v *yaml.Node) {
			if d.integer(v, path+".context_window", &m.Price.ContextWindow) {
				d.atLeast(v, path+".context_window", m.Price.ContextWindow, 0)
			}
		},
		"batch":           func(v *yaml.Node) { e.batch = f.decodeBatch(v, path) },
		"rpm":             f.capacity(path, "rpm", &m.RPM),
		"tpm":             f.capacity(path, "tpm", &m.TPM),
		"max_concurrency": f.capacity(path, "max_concurrency", &m.MaxConcurrency),
		// Simulated models only (sim/...).
		"latency":         simDur("latency", &s.Latency),
		"retry_after":     simDur("retry_after", &s.RetryAfter),
		"error_rate":      simShare("error_rate", &s.ErrorRate),
		"rate_limit_rate": simShare("rate_limit_rate", &s.RateLimitRate),
		"timeout_rate":    simShare("timeout_rate", &s.TimeoutRate),
		"weak_rate":       simShare("weak_rate", &s.WeakRate),
		"capability":      simShare("capability", &s.Capability),
	})
	return e
}

// capacity decodes rpm, tpm or max_concurrency: a count, 0 for none.
func (f *routesFile) capacity(path, key string, dst *int) func(*yaml.Node) {
	return func(v *yaml.Node) {
		if f.d.integer(v, path+"."+key, dst) && *dst < 0 {
			f.d.errorf(v, path+"."+key, "must be >= 0 (0: no limit), got %d", *dst)
		}
	}
}

// simOnly reports whether a simulator key may be set on this model.
func (f *routesFile) simOnly(v *yaml.Node, path, key, provider string) bool {
	if provider != "sim" {
		f.d.errorf(v, path+"."+key, "only simulated (sim/) models take this key")
		return false
	}
	return true
}

func (f *routesFile) decodeClassifier(v *yaml.Node) {
	d, c := f.d, &f.rt.Classifier
	const p = "classifier."
	var kind classifierKind
	known := f.kindFields(&kind)
	rules := fields{
		"complex_keywords":    func(v *yaml.Node) { d.texts(v, p+"complex_keywords", &c.ComplexKeywords) },
		"moderate_keywords":   func(v *yaml.Node) { d.texts(v, p+"moderate_keywords", &c.ModerateKeywords) },
		"complex_min_hits":    func(v *yaml.Node) { d.integer(v, p+"complex_min_hits", &c.ComplexMinHits) },
		"complex_long_hits":   func(v *yaml.Node) { d.integer(v, p+"complex_long_hits", &c.ComplexLongHits) },
		"complex_long_words":  func(v *yaml.Node) { d.integer(v, p+"complex_long_words", &c.ComplexLongWords) },
		"moderate_min_hits":   func(v *yaml.Node) { d.integer(v, p+"moderate_min_hits", &c.ModerateMinHits) },
		"moderate_long_words": func(v *yaml.Node) { d.integer(v, p+"moderate_long_words", &c.ModerateLongWords) },
	}
	for k, fn := range rules {
		known[k] = fn
	}
	d.object(v, "classifier", known)
	f.validated(v, c.Validate())
	f.learned(v, &kind)
}

func (f *routesFile) decodeQuality(v *yaml.Node) {
	d, q := f.d, &f.rt.Quality
	d.object(v, "quality", fields{
		"long_prompt_words":  func(v *yaml.Node) { d.integer(v, "quality.long_prompt_words", &q.LongPromptWords) },
		"min_response_words": func(v *yaml.Node) { d.integer(v, "quality.min_response_words", &q.MinResponseWords) },
		"refusal_phrases":    func(v *yaml.Node) { d.texts(v, "quality.refusal_phrases", &q.RefusalPhrases) },
	})
	f.validated(v, q.Validate())
}

// validated reports the errors of a section's own Validate (which name
// their keys) at the section's line.
func (f *routesFile) validated(section *yaml.Node, err error) {
	if err == nil {
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		f.d.errs = append(f.d.errs, &FileError{File: f.d.file, Line: section.Line, Msg: e.Error()})
	}
}

func (f *routesFile) decodeBackoff(v *yaml.Node) {
	d, b := f.d, &f.rt.Backoff
	var maxNode *yaml.Node
	d.object(v, "backoff", fields{
		"base": func(v *yaml.Node) {
			if d.duration(v, "backoff.base", &b.Base) {
				d.positive(v, "backoff.base", b.Base)
			}
		},
		"max": func(v *yaml.Node) {
			if d.duration(v, "backoff.max", &b.Max) {
				d.positive(v, "backoff.max", b.Max)
				maxNode = v
			}
		},
	})
	if maxNode != nil && b.Base > 0 && b.Max > 0 && b.Max < b.Base {
		d.errorf(maxNode, "backoff.max", "must be >= backoff.base (%s), got %s", b.Base, b.Max)
	}
}

func (f *routesFile) decodeCooldown(v *yaml.Node) {
	d, c := f.d, &f.rt.Cooldown
	d.object(v, "cooldown", fields{
		"failures": func(v *yaml.Node) {
			if d.integer(v, "cooldown.failures", &c.Failures) && c.Failures < 0 {
				d.errorf(v, "cooldown.failures", "must be >= 0 (0 turns cooldown off), got %d", c.Failures)
			}
		},
		"period": func(v *yaml.Node) { d.duration(v, "cooldown.period", &c.Period) },
		"window": func(v *yaml.Node) { d.duration(v, "cooldown.window", &c.Window) },
		"max_failure_share": func(v *yaml.Node) {
			d.number(v, "cooldown.max_failure_share", &c.MaxFailureShare)
		},
		"min_calls": func(v *yaml.Node) {
			if d.integer(v, "cooldown.min_calls", &c.MinCalls) && c.MinCalls < 0 {
				d.errorf(v, "cooldown.min_calls", "must be >= 0 (0 means the default), got %d", c.MinCalls)
			}
		},
	})
	if c.Failures > 0 && c.Period <= 0 {
		d.errorf(v, "cooldown.period", "must be > 0 when cooldown.failures is set")
	}
	if c.MaxFailureShare != 0 || c.Window != 0 || c.MinCalls != 0 {
		switch {
		case !(c.MaxFailureShare > 0 && c.MaxFailureShare < 1):
			d.errorf(v, "cooldown.max_failure_share", "must be > 0 and < 1 (cooldown.window and cooldown.min_calls need it), got %g", c.MaxFailureShare)
		case c.Window <= 0:
			d.errorf(v, "cooldown.window", "must be > 0 when cooldown.max_failure_share is set")
		case c.Period <= 0:
			d.errorf(v, "cooldown.period", "must be > 0 when cooldown.max_failure_share is set")
		}
	}
}

func (f *routesFile) decodeProviders(v *yaml.Node) {
	d := f.d
	d.entries(v, "providers", func(name string, k, v *yaml.Node) {
		path := "providers." + name
		if slices.Contains(BuiltinProviders, name) {
			d.errorf(k, path, "%q is a built-in provider; configure it with %s_BASE_URL", name, strings.ToUpper(name))
			return
		}
		p := Provider{Name: name}
		var typ string
		d.object(v, path, fields{
			"type": func(v *yaml.Node) {
				if d.text(v, path+".type", &typ) && typ != "openai" {
					d.errorf(v, path+".type", "%q is not supported (only \"openai\"-compatible servers)", typ)
				}
			},
			"base_url":          func(v *yaml.Node) { d.text(v, path+".base_url", &p.BaseURL) },
			"api_key_env":       func(v *yaml.Node) { d.text(v, path+".api_key_env", &p.APIKeyEnv) },
			"legacy_max_tokens": func(v *yaml.Node) { d.boolean(v, path+".legacy_max_tokens", &p.LegacyMaxTokens) },
		})
		if p.BaseURL == "" {
			d.errorf(k, path+".base_url", "required")
			return
		}
		f.rt.Providers[name] = p
	})
}

// resolveModels checks the tiers and resolves every model they name, and
// every models: entry, from the file and the price table.
func (f *routesFile) resolveModels() {
	d := f.d
	if f.tiers == nil {
		d.errorf(nil, "tiers", "missing (want simple, moderate and complex)")
	} else if !d.reported("tiers") {
		for _, tier := range prompt.Tiers {
			if _, ok := f.tierItems[tier]; !ok && f.rt.Tiers[tier] == nil && !d.reported("tiers."+string(tier)) {
				d.errorAt(d.lines["tiers"], "tiers."+string(tier), "missing")
			}
		}
	}
	for _, tier := range prompt.Tiers {
		for i, item := range f.tierItems[tier] {
			name := item.Value
			if _, done := f.rt.Models[name]; done {
				continue
			}
			if m, ok := f.model(name, item, fmt.Sprintf("tiers.%s[%d]", tier, i)); ok {
				f.rt.Models[name] = m
			}
		}
	}
	if j := f.judge; j != nil {
		if _, done := f.rt.Models[j.Value]; !done {
			if m, ok := f.model(j.Value, j, "shadow.judge"); ok {
				f.rt.Models[j.Value] = m
			}
		}
	}
	for name, e := range f.entries {
		if _, used := f.rt.Models[name]; !used {
			// Validate unused entries too, so typos surface at start.
			f.model(name, e.key, "models."+name)
		}
	}
}

// reported reports whether an error was already recorded for key.
func (d *doc) reported(key string) bool {
	for _, e := range d.errs {
		if e.Key == key {
			return true
		}
	}
	return false
}

// model resolves one model named at n (under key): the routes file first,
// then the price table.
func (f *routesFile) model(name string, n *yaml.Node, key string) (Model, bool) {
	d := f.d
	provider, _, err := llm.SplitModel(name)
	if err != nil {
		d.errorf(n, key, "%v", err)
		return Model{}, false
	}
	if _, named := f.rt.Providers[provider]; !slices.Contains(BuiltinProviders, provider) && !named {
		d.errorf(n, key, "model %q: unknown provider %q (built in: %s; declare others under providers:)", name, provider, strings.Join(BuiltinProviders, ", "))
		return Model{}, false
	}
	_, priced := f.prices.Lookup(name)
	e, inFile := f.entries[name]
	switch {
	case inFile && !priced && !(e.input && e.output):
		if !d.reported("models." + name) {
			d.errorf(e.key, "models."+name, "no built-in price; set input_cost_per_mtok and output_cost_per_mtok")
		}
		return Model{}, false
	case inFile:
		m := e.m
		m.Batch = f.resolveBatch(e.batch, name, provider)
		return m, true
	case !priced:
		d.errorf(n, key, "unknown model %q: not under models: and no built-in price (add it under models: with input_cost_per_mtok and output_cost_per_mtok)", name)
		return Model{}, false
	}
	m := Model{Name: name, Line: n.Line, MaxRetries: DefaultModelMaxRetries}
	m.Price, _ = f.prices.Lookup(name)
	if provider == "sim" {
		m.Sim = &Sim{}
	}
	return m, true
}

// ProviderNames returns the provider names the routes use, sorted.
func (r *Routes) ProviderNames() []string {
	var out []string
	for name := range r.Models {
		p, _, _ := llm.SplitModel(name)
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// ModelError is a problem with one model that only the code building it
// finds (a simulator setting out of range), reported like any routes error.
func (r *Routes) ModelError(m Model, err error) error {
	return &FileError{File: r.Source, Line: m.Line, Key: "models." + m.Name, Msg: err.Error()}
}
