package report

import (
	"fmt"
	"math"
)

// Thresholds of the article's "things worth monitoring". Zero fields take
// the defaults (DefaultThresholds).
type Thresholds struct {
	// CascadeRate: warn when more than this share of a tier's prompts was
	// answered by a model other than the tier's first (the article: 10%).
	CascadeRate float64
	// CostOverFirst: warn when a tier paid more than this multiple of what
	// its prompts' first models charge for the same tokens (retries and
	// cascades to pricier models).
	CostOverFirst float64
	// SpikeFactor and SpikeMinMS: warn when a tier's or a model's p95
	// latency is at least SpikeFactor times its median and at least
	// SpikeMinMS; SlowP95MS: warn when p95 reaches it whatever the median
	// (the article: a 30 s timeout before falling back keeps users waiting).
	SpikeFactor float64
	SpikeMinMS  float64
	SlowP95MS   float64
	// ModelFailShare: warn when more than this share of a model's calls
	// (at least ModelMinCalls of them) did not give a usable answer.
	ModelFailShare float64
	ModelMinCalls  int64
}

// DefaultThresholds are the thresholds Load uses unless told otherwise.
var DefaultThresholds = Thresholds{
	CascadeRate:    0.10,
	CostOverFirst:  1.25,
	SpikeFactor:    3,
	SpikeMinMS:     1000,
	SlowP95MS:      10000,
	ModelFailShare: 0.10,
	ModelMinCalls:  10,
}

func (t Thresholds) withDefaults() Thresholds {
	d := DefaultThresholds
	set := func(v *float64, def float64) {
		if *v == 0 {
			*v = def
		}
	}
	set(&t.CascadeRate, d.CascadeRate)
	set(&t.CostOverFirst, d.CostOverFirst)
	set(&t.SpikeFactor, d.SpikeFactor)
	set(&t.SpikeMinMS, d.SpikeMinMS)
	set(&t.SlowP95MS, d.SlowP95MS)
	set(&t.ModelFailShare, d.ModelFailShare)
	if t.ModelMinCalls == 0 {
		t.ModelMinCalls = d.ModelMinCalls
	}
	return t
}

// Warning is one finding, with the number that triggered it.
type Warning struct {
	BatchID   string  `json:"batch_id"`
	Kind      string  `json:"kind"`    // cascade_rate, tier_cost, latency, model_failures
	Subject   string  `json:"subject"` // the tier or the model
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	Message   string  `json:"message"`
}

// Warnings derives the article's warnings from a report's rows.
func Warnings(r *Report, t Thresholds) []Warning {
	t = t.withDefaults()
	var out []Warning
	add := func(batch, kind, subject string, v, th float64, format string, args ...any) {
		out = append(out, Warning{batch, kind, subject, v, th, fmt.Sprintf(format, args...)})
	}
	for _, x := range r.Tiers {
		if x.CascadeRate > t.CascadeRate {
			add(x.BatchID, "cascade_rate", x.Tier, x.CascadeRate, t.CascadeRate,
				"tier %s: cascade rate %.1f%% > %.0f%% (%d of %d prompts answered by a model other than the tier's first): its first model is unreliable; swap it or raise max_retries",
				x.Tier, 100*x.CascadeRate, 100*t.CascadeRate, x.Cascaded, x.Prompts)
		}
		spike(x.BatchID, "tier "+x.Tier, x.Tier, x.P50MS, x.P95MS, t, add)
	}
	for _, s := range r.Savings {
		if s.FirstModelUSD > 0 && s.PaidUSD > t.CostOverFirst*s.FirstModelUSD {
			ratio := s.PaidUSD / s.FirstModelUSD
			add(s.BatchID, "tier_cost", s.Tier, ratio, t.CostOverFirst,
				"tier %s: cost $%.6f is %.2fx the $%.6f its first models charge for the same tokens (> %.2fx): retries, failed quality checks and cascades to pricier models (in a cheap tier: prompts the classifier let through)",
				s.Tier, s.PaidUSD, ratio, s.FirstModelUSD, t.CostOverFirst)
		}
	}
	for _, m := range r.Models {
		if m.Calls >= t.ModelMinCalls && m.Calls > 0 {
			share := float64(m.Failures()) / float64(m.Calls)
			if share > t.ModelFailShare {
				add(m.BatchID, "model_failures", m.Model, share, t.ModelFailShare,
					"model %s: %.1f%% of %d calls failed (> %.0f%%): %d quality, %d rate limited, %d timeouts, %d errors",
					m.Model, 100*share, m.Calls, 100*t.ModelFailShare, m.QualityFailed, m.RateLimited, m.Timeouts, m.Errors)
			}
		}
		spike(m.BatchID, "model "+m.Model, m.Model, m.P50MS, m.P95MS, t, add)
	}
	return out
}

func spike(batch, what, subject string, p50, p95 float64, t Thresholds,
	add func(batch, kind, subject string, v, th float64, format string, args ...any)) {
	switch {
	case p95 >= t.SlowP95MS:
		add(batch, "latency", subject, p95, t.SlowP95MS,
			"%s: p95 latency %.0f ms >= %.0f ms: cascading after a long timeout keeps prompts waiting; lower the fast models' timeout",
			what, p95, t.SlowP95MS)
	case p50 > 0 && p95 >= t.SpikeMinMS && p95 >= t.SpikeFactor*p50:
		add(batch, "latency", subject, p95/p50, t.SpikeFactor,
			"%s: p95 latency %.0f ms is %.1fx the median %.0f ms (>= %.0fx): latency spikes from retries, timeouts or cascades",
			what, p95, math.Round(p95/p50*10)/10, p50, t.SpikeFactor)
	}
}
