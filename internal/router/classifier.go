package router

import (
	"fmt"
	"math"

	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

// Cutoffs turn a score into a tier: a score >= Complex is complex, else a
// score >= Moderate is moderate, else simple.
type Cutoffs struct {
	Moderate float64
	Complex  float64
}

// Validate checks 0 <= Moderate <= Complex <= 1.
func (c Cutoffs) Validate() error {
	if !(c.Moderate >= 0 && c.Moderate <= c.Complex && c.Complex <= 1) {
		return fmt.Errorf("want 0 <= moderate <= complex <= 1, got moderate %g, complex %g", c.Moderate, c.Complex)
	}
	return nil
}

// Tier returns the tier of score s.
func (c Cutoffs) Tier(s float64) prompt.Tier {
	switch {
	case s >= c.Complex:
		return prompt.TierComplex
	case s >= c.Moderate:
		return prompt.TierModerate
	}
	return prompt.TierSimple
}

// Shares are the parts of traffic each tier should get.
type Shares struct {
	Simple, Moderate, Complex float64
}

// Validate checks that each share is in [0,1] and they add up to 1.
func (s Shares) Validate() error {
	for _, v := range []float64{s.Simple, s.Moderate, s.Complex} {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("each share must be in [0,1], got simple %g, moderate %g, complex %g", s.Simple, s.Moderate, s.Complex)
		}
	}
	if sum := s.Simple + s.Moderate + s.Complex; math.Abs(sum-1) > 1e-6 {
		return fmt.Errorf("shares must add up to 1, got %g", sum)
	}
	return nil
}

// CutoffsFor returns the cutoffs that split the router's training prompts
// into shares: the lowest-scored share Simple is simple, the highest-scored
// share Complex is complex. A share of 0 gets a cutoff above every score.
func (r *Router) CutoffsFor(s Shares) (Cutoffs, error) {
	if err := s.Validate(); err != nil {
		return Cutoffs{}, err
	}
	c := Cutoffs{Moderate: r.Quantile(s.Simple), Complex: r.Quantile(s.Simple + s.Moderate)}
	if s.Moderate == 0 && s.Complex == 0 {
		c.Moderate = math.Nextafter(1, 2)
	}
	if s.Complex == 0 {
		c.Complex = math.Nextafter(1, 2)
	}
	if s.Simple == 0 {
		c.Moderate = 0
	}
	if s.Simple+s.Moderate == 0 {
		c.Complex = 0
	}
	return c, nil
}

// Classifier assigns tiers with a router. It is what the worker and
// `cascadectl classify` use when the routes file says
// classifier.kind: learned; the heuristic still measures the signals that
// results store (word count, keyword hits), but the router's score alone
// decides the tier.
type Classifier struct {
	r       *Router
	cut     Cutoffs
	signals *classify.Classifier
}

// NewClassifier returns a classifier that tiers by r's score with cut;
// signals measures word counts and keyword hits (classify.Default() when
// nil).
func NewClassifier(r *Router, cut Cutoffs, signals *classify.Classifier) (*Classifier, error) {
	if err := cut.Validate(); err != nil {
		return nil, err
	}
	if signals == nil {
		signals = classify.Default()
	}
	return &Classifier{r: r, cut: cut, signals: signals}, nil
}

// Classify returns text's tier and signals, with Signals.Score set.
func (c *Classifier) Classify(text string) (prompt.Tier, prompt.Signals) {
	_, sig := c.signals.Classify(text)
	sig.Score = c.r.Score(text)
	sig.Scored = true
	return c.cut.Tier(sig.Score), sig
}

// Router returns the router c scores with.
func (c *Classifier) Router() *Router { return c.r }

// Cutoffs returns c's cutoffs.
func (c *Classifier) Cutoffs() Cutoffs { return c.cut }
