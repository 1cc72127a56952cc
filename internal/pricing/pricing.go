// Package pricing knows what model calls cost.
//
// A Table maps "provider/model" strings to a Price (USD per million input,
// output and cache tokens, plus the context window). Builtin returns the table
// shipped with the binary as data (prices.json, with the date the prices were
// taken); LoadLiteLLM adds or overrides models from LiteLLM's
// model_prices_and_context_window.json. Token counts come from
// internal/tokens.
package pricing

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
)

// Price is what one model charges, in USD per million tokens, and how much
// text it accepts.
type Price struct {
	InputPerMTok  float64 // uncached input tokens
	OutputPerMTok float64 // output tokens (reasoning tokens included)
	// CacheReadPerMTok is the price of input tokens served from a prompt
	// cache (Anthropic cache hits, OpenAI/Gemini cached input). 0 means
	// unknown: such tokens are charged at InputPerMTok.
	CacheReadPerMTok float64
	// CacheWritePerMTok is the price of input tokens written to a prompt
	// cache (Anthropic 5-minute cache writes). 0 means the provider does not
	// bill writes separately: such tokens are charged at InputPerMTok.
	CacheWritePerMTok float64
	// ContextWindow is the number of tokens (prompt plus completion) the
	// model accepts; 0 means unknown.
	ContextWindow int
	// MaxOutputTokens is the largest completion the model produces; 0 means
	// unknown.
	MaxOutputTokens int
	// BatchInputPerMTok and BatchOutputPerMTok are the provider batch API's
	// prices (LiteLLM's input_cost_per_token_batches and
	// output_cost_per_token_batches); 0 means not listed: half the
	// synchronous price, which is what OpenAI, Anthropic and Google charge.
	BatchInputPerMTok  float64
	BatchOutputPerMTok float64
}

// BatchDiscount is the share of the synchronous price that a provider batch
// costs when the price table lists no batch price.
const BatchDiscount = 0.5

// Batch returns the price of a call made through the provider's batch API:
// the listed batch prices, else BatchDiscount of the synchronous ones
// (input, output and cache tokens alike). Calling Batch on a batch price is
// not meaningful.
func (p Price) Batch() Price {
	b := p
	b.InputPerMTok = listedOr(p.BatchInputPerMTok, p.InputPerMTok*BatchDiscount)
	b.OutputPerMTok = listedOr(p.BatchOutputPerMTok, p.OutputPerMTok*BatchDiscount)
	b.CacheReadPerMTok = p.CacheReadPerMTok * BatchDiscount
	b.CacheWritePerMTok = p.CacheWritePerMTok * BatchDiscount
	return b
}

func listedOr(listed, def float64) float64 {
	if listed > 0 {
		return listed
	}
	return def
}

// Usage is the token usage of one call, as the provider reported it.
// InputTokens excludes the cache tokens, which are counted separately.
type Usage struct {
	InputTokens      int
	OutputTokens     int
	CacheReadTokens  int
	CacheWriteTokens int
}

// Cost returns the USD cost of u at price p. Cache tokens whose price is 0
// (unknown or not billed separately) are charged at the input price, so an
// incomplete price never makes a call look cheaper than it was.
func (p Price) Cost(u Usage) float64 {
	cr, cw := p.CacheReadPerMTok, p.CacheWritePerMTok
	if cr == 0 {
		cr = p.InputPerMTok
	}
	if cw == 0 {
		cw = p.InputPerMTok
	}
	return (float64(u.InputTokens)*p.InputPerMTok +
		float64(u.OutputTokens)*p.OutputPerMTok +
		float64(u.CacheReadTokens)*cr +
		float64(u.CacheWriteTokens)*cw) / 1e6
}

// Table maps "provider/model" strings to prices. It is safe for concurrent
// use; lookups take a read lock only.
type Table struct {
	mu     sync.RWMutex
	prices map[string]Price
	asOf   string
}

// New returns an empty table.
func New() *Table {
	return &Table{prices: make(map[string]Price)}
}

// Lookup returns the price of model ("provider/model").
func (t *Table) Lookup(model string) (Price, bool) {
	t.mu.RLock()
	p, ok := t.prices[model]
	t.mu.RUnlock()
	return p, ok
}

// Set adds or replaces the price of model ("provider/model").
func (t *Table) Set(model string, p Price) {
	t.mu.Lock()
	t.prices[model] = p
	t.mu.Unlock()
}

// Models returns every model in the table, sorted.
func (t *Table) Models() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]string, 0, len(t.prices))
	for m := range t.prices {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// AsOf returns the date (YYYY-MM-DD) the built-in prices were taken, or ""
// for a table that did not start from Builtin.
func (t *Table) AsOf() string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.asOf
}

//go:embed prices.json
var builtinJSON []byte

var builtin struct {
	once   sync.Once
	prices map[string]Price
	asOf   string
	err    error
}

// Builtin returns a new table holding the built-in prices (prices.json,
// embedded). Each call returns an independent copy, so Set on one table never
// changes another.
func Builtin() *Table {
	builtin.once.Do(func() {
		builtin.prices, builtin.asOf, builtin.err = parseBuiltin(builtinJSON)
	})
	if builtin.err != nil {
		// The file is part of the binary and checked by the package tests.
		panic(builtin.err)
	}
	t := &Table{prices: make(map[string]Price, len(builtin.prices)), asOf: builtin.asOf}
	for k, v := range builtin.prices {
		t.prices[k] = v
	}
	return t
}

type builtinEntry struct {
	Input           *float64 `json:"input"`
	Output          *float64 `json:"output"`
	CacheRead       float64  `json:"cache_read"`
	CacheWrite      float64  `json:"cache_write"`
	ContextWindow   int      `json:"context_window"`
	MaxOutputTokens int      `json:"max_output_tokens"`
	AliasOf         string   `json:"alias_of"`
	Note            string   `json:"note"`
}

func parseBuiltin(data []byte) (map[string]Price, string, error) {
	var f struct {
		AsOf   string                  `json:"prices_as_of"`
		Unit   string                  `json:"unit"`
		Notes  []string                `json:"notes"`
		Models map[string]builtinEntry `json:"models"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, "", fmt.Errorf("pricing: prices.json: %w", err)
	}
	if f.AsOf == "" {
		return nil, "", fmt.Errorf("pricing: prices.json: prices_as_of missing")
	}
	out := make(map[string]Price, len(f.Models))
	for name, e := range f.Models {
		if e.AliasOf != "" {
			continue
		}
		if e.Input == nil || e.Output == nil {
			return nil, "", fmt.Errorf("pricing: prices.json: models.%s: input and output prices required", name)
		}
		out[name] = Price{
			InputPerMTok:      *e.Input,
			OutputPerMTok:     *e.Output,
			CacheReadPerMTok:  e.CacheRead,
			CacheWritePerMTok: e.CacheWrite,
			ContextWindow:     e.ContextWindow,
			MaxOutputTokens:   e.MaxOutputTokens,
		}
	}
	for name, e := range f.Models {
		if e.AliasOf == "" {
			continue
		}
		p, ok := out[e.AliasOf]
		if !ok {
			return nil, "", fmt.Errorf("pricing: prices.json: models.%s: alias_of %q is not a priced model", name, e.AliasOf)
		}
		out[name] = p
	}
	return out, f.AsOf, nil
}
