// Package router is promptcascade's learned router, the classify package's
// sibling: it scores a prompt from 0 (the cheap model will do) to 1 (it needs
// the strong one) with a logistic regression over features of the text alone
// (features.go), trained deterministically on per-prompt correctness labels
// (train.go), stored in a versioned, checksummed file (file.go), evaluated on
// held-out data against the heuristic and random routing (eval.go), and
// turned into tiers by score quantiles or thresholds (classifier.go).
//
// Scoring reads the text once and does not allocate: it is a sum of weights.
package router

import (
	"math"
	"sort"
)

// Router is a trained model. It is immutable and safe for concurrent use.
type Router struct {
	Features Features
	Meta     Meta

	bias      float64
	denseMean [numDense]float64
	denseStd  [numDense]float64 // > 0
	denseW    [numDense]float64
	w         []float64 // 1 << Features.HashBits hashed weights
	quantiles []float64 // sorted training scores at 0, 1/(n-1), ..., 1
	seen      []byte    // Bloom filter of the training prompts
}

// Meta describes how a router was trained.
type Meta struct {
	Cheap     string  `json:"cheap"`  // the model a low score sends prompts to
	Strong    string  `json:"strong"` // the model a high score sends prompts to
	Seed      uint64  `json:"seed"`
	Examples  int     `json:"examples"`
	Positives float64 `json:"positives"` // weighted share of examples that needed the strong model
	Lambda    float64 `json:"lambda"`    // L2 strength chosen by cross-validation
	TrainedAt string  `json:"trained_at,omitempty"`
	Sources   string  `json:"sources,omitempty"` // what the labels came from
}

// Score returns the probability, as the router estimates it, that the cheap
// model answers text wrongly where the strong one would not.
func (r *Router) Score(text string) float64 {
	dense, n, sum := r.Features.extract(text, r.w, nil)
	return sigmoid(r.margin(&dense, sum, n))
}

func (r *Router) margin(dense *[numDense]float64, hashed float64, tokens int) float64 {
	m := r.bias
	for i := range dense {
		m += r.denseW[i] * (dense[i] - r.denseMean[i]) / r.denseStd[i]
	}
	if tokens > 0 {
		m += hashed / math.Sqrt(float64(tokens))
	}
	return m
}

// Quantile returns the score below which a share q of the training prompts
// fall (q in [0,1]), interpolating between the stored quantiles.
func (r *Router) Quantile(q float64) float64 {
	qs := r.quantiles
	q = min(max(q, 0), 1)
	pos := q * float64(len(qs)-1)
	i := int(pos)
	if i >= len(qs)-1 {
		return qs[len(qs)-1]
	}
	f := pos - float64(i)
	return qs[i]*(1-f) + qs[i+1]*f
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// numQuantiles is how many training-score quantiles a router file keeps.
const numQuantiles = 101

func quantilesOf(scores []float64) []float64 {
	s := append([]float64(nil), scores...)
	sort.Float64s(s)
	qs := make([]float64, numQuantiles)
	for i := range qs {
		pos := float64(i) / float64(numQuantiles-1) * float64(len(s)-1)
		lo := int(pos)
		if lo >= len(s)-1 {
			qs[i] = s[len(s)-1]
			continue
		}
		f := pos - float64(lo)
		qs[i] = s[lo] + f*(s[lo+1]-s[lo])
	}
	prev := 0.0
	for i := range qs { // keep rounding from breaking the order or the range
		qs[i] = max(min(max(qs[i], 0), 1), prev)
		prev = qs[i]
	}
	return qs
}

// The training prompts are kept as a Bloom filter (bloomBytes, bloomHashes
// probes), so that an evaluation can tell whether its labels overlap what the
// router was trained on, without storing the prompts. Up to ~10,000 prompts
// it answers "seen" wrongly for less than 1% of new prompts; beyond, more
// often, which only makes evaluation fall back to cross-validation sooner.
const (
	bloomBytes  = 16 << 10
	bloomHashes = 4
)

func bloomAdd(b []byte, text string) {
	h1, h2 := bloomHash(text)
	for i := range uint64(bloomHashes) {
		bit := (h1 + i*h2) % (bloomBytes * 8)
		b[bit/8] |= 1 << (bit % 8)
	}
}

func bloomHas(b []byte, text string) bool {
	h1, h2 := bloomHash(text)
	for i := range uint64(bloomHashes) {
		bit := (h1 + i*h2) % (bloomBytes * 8)
		if b[bit/8]&(1<<(bit%8)) == 0 {
			return false
		}
	}
	return true
}

func bloomHash(text string) (uint64, uint64) {
	h := uint64(fnvOffset)
	for i := 0; i < len(text); i++ {
		h = (h ^ uint64(text[i])) * fnvPrime
	}
	return mix(h), mix(h^seedBigram) | 1
}

// Trained reports whether text was (probably) one of the router's training
// prompts. False is certain.
func (r *Router) Trained(text string) bool { return bloomHas(r.seen, text) }
