package pricing

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// litellmEntry holds the fields of one model_prices_and_context_window.json
// entry that pricing uses; every other field is ignored. Pointers tell a
// missing field from a zero one.
type litellmEntry struct {
	Provider   string   `json:"litellm_provider"`
	Input      *float64 `json:"input_cost_per_token"`
	Output     *float64 `json:"output_cost_per_token"`
	CacheRead  *float64 `json:"cache_read_input_token_cost"`
	CacheWrite *float64 `json:"cache_creation_input_token_cost"`
	MaxInput   *float64 `json:"max_input_tokens"`
	MaxOutput  *float64 `json:"max_output_tokens"`
	BatchIn    *float64 `json:"input_cost_per_token_batches"`
	BatchOut   *float64 `json:"output_cost_per_token_batches"`
}

// LoadLiteLLM reads LiteLLM's model_prices_and_context_window.json format and
// adds its token-priced models to t, overriding models already there. Keys
// are mapped to "provider/model" with litellm_provider ("gpt-4o" with
// provider "openai" becomes "openai/gpt-4o"; "anthropic/claude-..." stays as
// it is). When a bare key and a prefixed key map to the same name, the
// prefixed one wins. The "sample_spec" entry and entries without token
// prices (image, audio, per-call models) are skipped.
//
// Per-token prices become per-million prices; max_input_tokens becomes
// ContextWindow (LiteLLM's input limit, so the context check stays on the safe
// side). A malformed file changes nothing and returns an error naming the key.
func (t *Table) LoadLiteLLM(r io.Reader) error {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("pricing: litellm file: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("pricing: litellm file: want a JSON object at the top")
	}
	parsed := make(map[string]Price)
	explicit := make(map[string]bool) // names that came from a "provider/..." key
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("pricing: litellm file: %w", err)
		}
		key := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("pricing: litellm file: key %q: %w", key, err)
		}
		if key == "sample_spec" {
			continue
		}
		var e litellmEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) && te.Field != "" {
				return fmt.Errorf("pricing: litellm file: key %q: field %s: want a %s, got %s", key, te.Field, te.Type, te.Value)
			}
			return fmt.Errorf("pricing: litellm file: key %q: %w", key, err)
		}
		if e.Input == nil && e.Output == nil {
			continue // not priced per token
		}
		name, isExplicit, err := litellmName(key, e.Provider)
		if err != nil {
			return err
		}
		p, err := e.price(key)
		if err != nil {
			return err
		}
		if explicit[name] && !isExplicit {
			continue
		}
		parsed[name] = p
		if isExplicit {
			explicit[name] = true
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("pricing: litellm file: %w", err)
	}
	t.mu.Lock()
	for k, v := range parsed {
		t.prices[k] = v
	}
	t.mu.Unlock()
	return nil
}

func litellmName(key, provider string) (name string, explicit bool, err error) {
	if provider == "" {
		if strings.Contains(key, "/") {
			return key, true, nil
		}
		return "", false, fmt.Errorf("pricing: litellm file: key %q: litellm_provider missing", key)
	}
	if strings.HasPrefix(key, provider+"/") {
		return key, true, nil
	}
	return provider + "/" + key, false, nil
}

func (e litellmEntry) price(key string) (Price, error) {
	var p Price
	perM := func(field string, v *float64) (float64, error) {
		if v == nil {
			return 0, nil
		}
		if *v < 0 || math.IsInf(*v, 0) || math.IsNaN(*v) {
			return 0, fmt.Errorf("pricing: litellm file: key %q: %s: %v is not a price", key, field, *v)
		}
		// Round away float noise (2.5e-06*1e6 = 2.4999999999999996).
		return math.Round(*v*1e15) / 1e9, nil
	}
	tokens := func(field string, v *float64) (int, error) {
		if v == nil {
			return 0, nil
		}
		if *v < 0 || *v > math.MaxInt32 || *v != math.Trunc(*v) {
			return 0, fmt.Errorf("pricing: litellm file: key %q: %s: %v is not a token count", key, field, *v)
		}
		return int(*v), nil
	}
	var err error
	if p.InputPerMTok, err = perM("input_cost_per_token", e.Input); err != nil {
		return p, err
	}
	if p.OutputPerMTok, err = perM("output_cost_per_token", e.Output); err != nil {
		return p, err
	}
	if p.CacheReadPerMTok, err = perM("cache_read_input_token_cost", e.CacheRead); err != nil {
		return p, err
	}
	if p.CacheWritePerMTok, err = perM("cache_creation_input_token_cost", e.CacheWrite); err != nil {
		return p, err
	}
	if p.BatchInputPerMTok, err = perM("input_cost_per_token_batches", e.BatchIn); err != nil {
		return p, err
	}
	if p.BatchOutputPerMTok, err = perM("output_cost_per_token_batches", e.BatchOut); err != nil {
		return p, err
	}
	if p.ContextWindow, err = tokens("max_input_tokens", e.MaxInput); err != nil {
		return p, err
	}
	if p.MaxOutputTokens, err = tokens("max_output_tokens", e.MaxOutput); err != nil {
		return p, err
	}
	// The legacy max_tokens field is the context size for some entries and
	// the output limit for others, so it is not used.
	return p, nil
}
