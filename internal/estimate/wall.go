package estimate

import "time"

// What a bound is set by (Bound.Binds).
const (
	BindsConcurrency    = "concurrency"     // the workers' slots: workers × concurrency
	BindsMaxConcurrency = "max_concurrency" // the model's max_concurrency, below the worker's concurrency
	BindsRPM            = "rpm"
	BindsTPM            = "tpm"
	BindsProviderBatch  = "provider batch" // answered through the provider's batch API: not timed
)

// Bound is a time and the limit that sets it ("" when there is nothing to do).
type Bound struct {
	Seconds float64 `json:"seconds"`
	Binds   string  `json:"binds"`
}

// Duration is b's time.
func (b Bound) Duration() time.Duration { return time.Duration(b.Seconds * float64(time.Second)) }

// ModelTime is the time one model needs for its calls on its own, in the
// two cases.
type ModelTime struct {
	Model string `json:"model"`
	Low   Bound  `json:"low"`
	High  Bound  `json:"high"`
}

// Wall is the expected wall time of an estimate for some workers, each
// with concurrency prompts in flight.
type Wall struct {
	Workers     int `json:"workers"`
	Concurrency int `json:"concurrency"`
	// Low: every first model answers; High: every prompt cascades. Binds
	// is BindsConcurrency or "<model> <limit>".
	Low    Bound       `json:"low"`
	High   Bound       `json:"high"`
	Models []ModelTime `json:"models"`
}

// WallTime is the expected wall time of e's calls on workers processes with
// concurrency prompts in flight each, under the models' declared limits,
// which are per worker process (so N workers have N times each limit).
//
// A model's calls on their own take the longest of:
//   - calls × latency / (workers × min(concurrency, max_concurrency)),
//   - calls × 60 s / (workers × rpm),
//   - tokens × 60 s / (workers × tpm), tokens being input + expected output;
//
// and every synchronous call holds one of the workers × concurrency slots
// for its latency, so the batch takes at least the sum of all calls'
// latencies over the slots. The wall time is the longest of these bounds:
// what a steady run with the input's tiers mixed reaches, retries, the
// cascade's waits and the limiter's probing aside. A batch-mode model's
// calls take no slot and are not timed (its provider answers within 24 h).
func (e Estimate) WallTime(workers, concurrency int) Wall {
	workers, concurrency = max(workers, 1), max(concurrency, 1)
	w := Wall{Workers: workers, Concurrency: concurrency}
	slots := float64(workers * concurrency)
	var low, high float64 // slot-seconds
	for _, l := range e.Models {
		if !l.Batch {
			low += float64(l.CallsLow) * l.LatencySec
			high += float64(l.CallsHigh) * l.LatencySec
		}
	}
	w.Low = Bound{Seconds: low / slots, Binds: BindsConcurrency}
	w.High = Bound{Seconds: high / slots, Binds: BindsConcurrency}
	// A model held by nothing but the slots is within the slots' bound.
	longer := func(b Bound, than Bound) bool { return b.Binds != BindsConcurrency && b.Seconds > than.Seconds }
	for _, l := range e.Models {
		mt := ModelTime{Model: l.Model, Low: l.bound(l.CallsLow, l.TokensLow, workers, concurrency),
			High: l.bound(l.CallsHigh, l.TokensHigh, workers, concurrency)}
		w.Models = append(w.Models, mt)
		if longer(mt.Low, w.Low) {
			w.Low = Bound{Seconds: mt.Low.Seconds, Binds: l.Model + " " + mt.Low.Binds}
		}
		if longer(mt.High, w.High) {
			w.High = Bound{Seconds: mt.High.Seconds, Binds: l.Model + " " + mt.High.Binds}
		}
	}
	if e.Total.Prompts == 0 {
		w.Low.Binds, w.High.Binds = "", ""
	}
	return w
}

// bound is the time l's model needs for calls calls of tokens tokens.
func (l Load) bound(calls, tokens int64, workers, concurrency int) Bound {
	switch {
	case calls == 0:
		return Bound{}
	case l.Batch:
		return Bound{Binds: BindsProviderBatch}
	}
	w := float64(workers)
	conc, binds := concurrency, BindsConcurrency
	if l.MaxConcurrency > 0 && l.MaxConcurrency < concurrency {
		conc, binds = l.MaxConcurrency, BindsMaxConcurrency
	}
	b := Bound{Seconds: float64(calls) * l.LatencySec / (w * float64(conc)), Binds: binds}
	if l.RPM > 0 {
		if s := float64(calls) * 60 / (w * float64(l.RPM)); s > b.Seconds {
			b = Bound{Seconds: s, Binds: BindsRPM}
		}
	}
	if l.TPM > 0 {
		if s := float64(tokens) * 60 / (w * float64(l.TPM)); s > b.Seconds {
			b = Bound{Seconds: s, Binds: BindsTPM}
		}
	}
	return b
}
