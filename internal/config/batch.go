package config

import (
	"time"

	"go.yaml.in/yaml/v3"
)

// BatchMode is a model's `batch:` setting: the model is reached through its
// provider's batch API (half price, answers within 24 hours) instead of
// synchronous calls.
type BatchMode struct {
	MaxRequests int           // a provider batch is sent once this many prompts wait
	MaxBytes    int64         // ... or their requests reach this many bytes
	FlushAfter  time.Duration // ... or the oldest has waited this long
	PollEvery   time.Duration // how often a submitted batch is polled
	// SimDelay and SimExpireRate configure the simulated provider's batch
	// mode (sim/ models only): results after SimDelay, a share expired.
	SimDelay      time.Duration
	SimExpireRate float64
}

// BatchLimit is what a provider's batch API accepts per batch.
type BatchLimit struct {
	MaxRequests int   // 0: no documented limit
	MaxBytes    int64 // request bytes per batch
}

// Batch defaults that do not depend on the provider.
const (
	DefaultBatchFlushAfter = 5 * time.Minute
	DefaultBatchPollEvery  = time.Minute
)

// BatchLimits are the providers' documented per-batch limits; the defaults
// of max_requests and max_bytes are these limits. Gemini documents no
// request count (10,000 of ours) and takes up to 2 GB, the Files API's limit
// on an input file (its client sends a batch inline when the body is at most
// 20 MB, else as an uploaded file: internal/llm/gemini). OpenAI-compatible
// servers declared under providers: are held to OpenAI's.
var BatchLimits = map[string]BatchLimit{
	"openai":    {MaxRequests: 50_000, MaxBytes: 200 << 20},
	"anthropic": {MaxRequests: 100_000, MaxBytes: 256 << 20},
	"gemini":    {MaxBytes: 2_000_000_000},
	"sim":       {MaxRequests: 100_000, MaxBytes: 256 << 20},
}

// defaultBatchRequests is max_requests when the provider documents no limit.
const defaultBatchRequests = 10_000

// batchEntry is a model's batch: value as written: `true`, `false`, or a map
// of max_requests, max_bytes, flush_after, poll_every (sim: delay,
// expire_rate). It is checked against the provider's limits once the
// providers are known (resolveBatch).
type batchEntry struct {
	node                  *yaml.Node
	on                    bool
	maxRequests, maxBytes *int
	flushAfter, pollEvery *time.Duration
	delay                 *time.Duration
	expireRate            *float64
	nodes                 map[string]*yaml.Node // each key's value, for errors at its line
}

func (f *routesFile) decodeBatch(v *yaml.Node, path string) *batchEntry {
	d := f.d
	key := path + ".batch"
	b := &batchEntry{node: v, nodes: map[string]*yaml.Node{}}
	if v.Kind == yaml.ScalarNode {
		d.boolean(v, key, &b.on)
		return b
	}
	b.on = true
	intKey := func(name string, dst **int) func(*yaml.Node) {
		return func(v *yaml.Node) {
			var x int
			if d.integer(v, key+"."+name, &x) {
				*dst, b.nodes[name] = &x, v
			}
		}
	}
	durKey := func(name string, dst **time.Duration) func(*yaml.Node) {
		return func(v *yaml.Node) {
			var x time.Duration
			if d.duration(v, key+"."+name, &x) {
				*dst, b.nodes[name] = &x, v
			}
		}
	}
	d.object(v, key, fields{
		"max_requests": intKey("max_requests", &b.maxRequests),
		"max_bytes":    intKey("max_bytes", &b.maxBytes),
		"flush_after":  durKey("flush_after", &b.flushAfter),
		"poll_every":   durKey("poll_every", &b.pollEvery),
		"delay":        durKey("delay", &b.delay),
		"expire_rate": func(v *yaml.Node) {
			var x float64
			if d.number(v, key+".expire_rate", &x) {
				d.share(v, key+".expire_rate", x)
				b.expireRate, b.nodes["expire_rate"] = &x, v
			}
		},
	})
	return b
}

// resolveBatch checks a model's batch setting against its provider's
// limits; nil means not batch-mode.
func (f *routesFile) resolveBatch(b *batchEntry, name, provider string) *BatchMode {
	if b == nil || !b.on {
		return nil
	}
	d := f.d
	key := "models." + name + ".batch"
	kind := provider
	if _, named := f.rt.Providers[provider]; named {
		kind = "openai"
	}
	limit, ok := BatchLimits[kind]
	if !ok {
		d.errorf(b.node, key, "provider %q has no batch API (batch mode works with openai, anthropic, gemini, sim and OpenAI-compatible servers)", provider)
		return nil
	}
	m := &BatchMode{MaxRequests: limit.MaxRequests, MaxBytes: limit.MaxBytes, FlushAfter: DefaultBatchFlushAfter, PollEvery: DefaultBatchPollEvery}
	if m.MaxRequests == 0 {
		m.MaxRequests = defaultBatchRequests
	}
	maxReq := limit.MaxRequests
	if maxReq == 0 {
		maxReq = defaultBatchRequests
	}
	if v := b.maxRequests; v != nil {
		if *v <= 0 || *v > maxReq {
			d.errorf(b.nodes["max_requests"], key+".max_requests", "must be between 1 and %s's limit of %d, got %d", provider, maxReq, *v)
		}
		m.MaxRequests = *v
	}
	if v := b.maxBytes; v != nil {
		if *v <= 0 || int64(*v) > limit.MaxBytes {
			d.errorf(b.nodes["max_bytes"], key+".max_bytes", "must be between 1 and %s's limit of %d, got %d", provider, limit.MaxBytes, *v)
		}
		m.MaxBytes = int64(*v)
	}
	for _, x := range []struct {
		name string
		src  *time.Duration
		dst  *time.Duration
	}{{"flush_after", b.flushAfter, &m.FlushAfter}, {"poll_every", b.pollEvery, &m.PollEvery}} {
		if x.src != nil {
			d.positive(b.nodes[x.name], key+"."+x.name, *x.src)
			*x.dst = *x.src
		}
	}
	for _, simKey := range []string{"delay", "expire_rate"} {
		if n := b.nodes[simKey]; n != nil && kind != "sim" {
			d.errorf(n, key+"."+simKey, "only simulated (sim/) models take this key")
		}
	}
	if b.delay != nil {
		d.nonNegative(b.nodes["delay"], key+".delay", *b.delay)
		m.SimDelay = *b.delay
	}
	if b.expireRate != nil {
		m.SimExpireRate = *b.expireRate
	}
	return m
}

// BatchModels returns the batch-mode models of the routes, by name.
func (r *Routes) BatchModels() map[string]Model {
	out := map[string]Model{}
	for name, m := range r.Models {
		if m.Batch != nil {
			out[name] = m
		}
	}
	return out
}
