package router

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Example is one labelled prompt for training.
type Example struct {
	Prompt string
	Strong bool    // the prompt needs the strong model (the cheap one got it wrong)
	Weight float64 // > 0: 1 for a sure label, less for a weaker one
}

// TrainOptions configure Train. The zero value trains with DefaultFeatures,
// seed 0, DefaultLambdas and 5 folds.
type TrainOptions struct {
	Features Features
	Seed     uint64    // decides the folds that choose Lambda; same seed and data, same router
	Lambdas  []float64 // L2 strengths to choose from by cross-validation; one value skips the choice
	Folds    int       // folds of that cross-validation (>= 2)
	Meta     Meta      // Cheap, Strong and Sources are copied into the router
}

// DefaultLambdas are the L2 strengths Train chooses from.
var DefaultLambdas = []float64{1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1}

// iterations of accelerated gradient descent per fit; the problem is convex
// and small, and a fixed count keeps training deterministic.
const iterations = 300

// MinExamples is the least number of examples Train accepts, and the least
// of each class.
const MinExamples, MinPerClass = 20, 5

func (o *TrainOptions) defaults() error {
	if o.Features == (Features{}) {
		o.Features = DefaultFeatures
	}
	if o.Features.HashBits < 8 || o.Features.HashBits > 24 {
		return fmt.Errorf("router: hash_bits must be in 8..24, got %d", o.Features.HashBits)
	}
	if len(o.Lambdas) == 0 {
		o.Lambdas = DefaultLambdas
	}
	for _, l := range o.Lambdas {
		if !(l > 0) || math.IsInf(l, 0) {
			return fmt.Errorf("router: lambda must be > 0, got %g", l)
		}
	}
	if o.Folds == 0 {
		o.Folds = 5
	}
	if o.Folds < 2 {
		return fmt.Errorf("router: folds must be >= 2, got %d", o.Folds)
	}
	return nil
}

// Train fits a router to ex. The L2 strength is chosen among o.Lambdas by
// o.Folds-fold cross-validation (the weighted AUC of the held-out scores),
// then the router is fitted on every example. Training is deterministic: the same
// examples, in the same order, with the same options give the same router.
func Train(ex []Example, o TrainOptions) (*Router, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if err := checkExamples(ex); err != nil {
		return nil, err
	}
	ps := prepare(ex, o.Features)
	all := make([]int, len(ex))
	for i := range all {
		all[i] = i
	}
	lambda := o.Lambdas[0]
	if len(o.Lambdas) > 1 {
		// The strength whose held-out scores rank the examples best (weighted
		// AUC: what routing by score needs), the stronger one among equals.
		folds := Folds(len(ex), o.Folds, o.Seed)
		best := -1.0
		oof := make([]float64, len(ps))
		for _, l := range o.Lambdas {
			for k := range o.Folds {
				train, test := split(folds, k)
				m := fit(ps, train, l, o.Features)
				for _, i := range test {
					oof[i] = m.scorePrepped(&ps[i])
				}
			}
			if auc := weightedAUC(ps, oof); auc >= best {
				best, lambda = auc, l
			}
		}
	}
	r := fit(ps, all, lambda, o.Features)
	r.Meta = Meta{Cheap: o.Meta.Cheap, Strong: o.Meta.Strong, Sources: o.Meta.Sources, Seed: o.Seed,
		Examples: len(ex), Lambda: lambda, TrainedAt: o.Meta.TrainedAt}
	var pos, wsum float64
	scores := make([]float64, len(ps))
	for i := range ps {
		scores[i] = r.scorePrepped(&ps[i])
		pos += ps[i].weight * ps[i].y
		wsum += ps[i].weight
	}
	r.Meta.Positives = pos / wsum
	r.quantiles = quantilesOf(scores)
	r.seen = make([]byte, bloomBytes)
	for _, e := range ex {
		bloomAdd(r.seen, e.Prompt)
	}
	return r, nil
}

// ErrTooFewExamples is returned (wrapped) by Train when the labels cannot
// train a router.
var ErrTooFewExamples = errors.New("too few examples")

func checkExamples(ex []Example) error {
	var pos, neg int
	for i, e := range ex {
		if !(e.Weight > 0) || math.IsInf(e.Weight, 0) {
			return fmt.Errorf("router: example %d: weight must be > 0, got %g", i, e.Weight)
		}
		if e.Strong {
			pos++
		} else {
			neg++
		}
	}
	if len(ex) < MinExamples || pos < MinPerClass || neg < MinPerClass {
		return fmt.Errorf("router: %w: %d examples, %d that needed the strong model and %d that did not (want >= %d, and >= %d of each)",
			ErrTooFewExamples, len(ex), pos, neg, MinExamples, MinPerClass)
	}
	return nil
}

// Folds assigns each of n items to one of k folds: a seeded shuffle dealt
// round-robin, so folds differ in size by at most one.
func Folds(n, k int, seed uint64) []int {
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	s := seed ^ 0x5eed
	for i := n - 1; i > 0; i-- {
		s += 0x9e3779b97f4a7c15
		j := int(mix(s) % uint64(i+1))
		perm[i], perm[j] = perm[j], perm[i]
	}
	fold := make([]int, n)
	for pos, i := range perm {
		fold[i] = pos % k
	}
	return fold
}

// split returns the indexes outside and inside fold k.
func split(folds []int, k int) (train, test []int) {
	for i, f := range folds {
		if f == k {
			test = append(test, i)
		} else {
			train = append(train, i)
		}
	}
	return train, test
}

// prepped is an example's features, computed once.
type prepped struct {
	dense   [numDense]float64
	buckets []uint32  // distinct, sorted
	vals    []float64 // count / sqrt(tokens)
	y       float64
	weight  float64
}

func prepare(ex []Example, f Features) []prepped {
	ps := make([]prepped, len(ex))
	var bl []uint32
	for i, e := range ex {
		bl = bl[:0]
		dense, n, _ := f.extract(e.Prompt, nil, &bl)
		p := prepped{dense: dense, weight: e.Weight}
		if e.Strong {
			p.y = 1
		}
		scale := 1 / math.Sqrt(float64(max(n, 1)))
		slices.Sort(bl)
		for j, b := range bl {
			if j > 0 && bl[j-1] == b {
				p.vals[len(p.vals)-1] += scale
				continue
			}
			p.buckets = append(p.buckets, b)
			p.vals = append(p.vals, scale)
		}
		ps[i] = p
	}
	return ps
}

func (r *Router) scorePrepped(p *prepped) float64 {
	m := r.bias
	for i := range p.dense {
		m += r.denseW[i] * (p.dense[i] - r.denseMean[i]) / r.denseStd[i]
	}
	for j, b := range p.buckets {
		m += r.w[b] * p.vals[j]
	}
	return sigmoid(m)
}

// weightedAUC is the weighted probability that an example that needed the
// strong model scores above one that did not (ties count half).
func weightedAUC(ps []prepped, scores []float64) float64 {
	order := make([]int, len(ps))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(scores[a], scores[b]) })
	var negBelow, pairs, wins, pos, neg float64
	for lo := 0; lo < len(order); {
		hi := lo
		var gp, gn float64
		for hi < len(order) && scores[order[hi]] == scores[order[lo]] {
			p := &ps[order[hi]]
			gp += p.weight * p.y
			gn += p.weight * (1 - p.y)
			hi++
		}
		wins += gp * (negBelow + gn/2)
		negBelow += gn
		pos += gp
		neg += gn
		lo = hi
	}
	if pairs = pos * neg; pairs == 0 {
		return 0.5
	}
	return wins / pairs
}

// fit minimises the weighted mean log loss plus lambda/2 times the squared
// weights (the bias is not penalised) over the examples idx, by Nesterov's
// accelerated gradient descent with step 1/L.
func fit(ps []prepped, idx []int, lambda float64, f Features) *Router {
	r := &Router{Features: f, w: make([]float64, 1<<f.HashBits)}
	// Standardise the dense signals on these examples.
	for d := range numDense {
		var sum, sq float64
		for _, i := range idx {
			sum += ps[i].dense[d]
		}
		mean := sum / float64(len(idx))
		for _, i := range idx {
			sq += (ps[i].dense[d] - mean) * (ps[i].dense[d] - mean)
		}
		std := math.Sqrt(sq / float64(len(idx)))
		if std < 1e-9 {
			std = 1
		}
		r.denseMean[d], r.denseStd[d] = mean, std
	}
	// Compact columns: only buckets these examples use can get a weight.
	col := make(map[uint32]int32)
	var buckets []uint32
	type row struct {
		z    [numDense]float64
		cols []int32
		vals []float64
		y, w float64
	}
	rows := make([]row, len(idx))
	var wsum, maxNorm float64
	for k, i := range idx {
		p := &ps[i]
		rw := row{y: p.y, w: p.weight, vals: p.vals, cols: make([]int32, len(p.buckets))}
		norm := 1.0 // the bias column
		for d := range numDense {
			rw.z[d] = (p.dense[d] - r.denseMean[d]) / r.denseStd[d]
			norm += rw.z[d] * rw.z[d]
		}
		for j, b := range p.buckets {
			c, ok := col[b]
			if !ok {
				c = int32(len(buckets))
				col[b] = c
				buckets = append(buckets, b)
			}
			rw.cols[j] = c
			norm += p.vals[j] * p.vals[j]
		}
		rows[k] = rw
		wsum += p.weight
		maxNorm = max(maxNorm, norm)
	}
	// theta = [bias, dense..., hashed...]
	dim := 1 + numDense + len(buckets)
	theta := make([]float64, dim)
	prev := make([]float64, dim)
	look := make([]float64, dim)
	grad := make([]float64, dim)
	step := 1 / (0.25*maxNorm + lambda)
	for it := range iterations {
		mom := float64(it) / float64(it+3)
		for j := range look {
			look[j] = theta[j] + mom*(theta[j]-prev[j])
		}
		clear(grad)
		for k := range rows {
			rw := &rows[k]
			m := look[0]
			for d := range numDense {
				m += look[1+d] * rw.z[d]
			}
			for j, c := range rw.cols {
				m += look[1+numDense+int(c)] * rw.vals[j]
			}
			g := rw.w * (sigmoid(m) - rw.y) / wsum
			grad[0] += g
			for d := range numDense {
				grad[1+d] += g * rw.z[d]
			}
			for j, c := range rw.cols {
				grad[1+numDense+int(c)] += g * rw.vals[j]
			}
		}
		for j := 1; j < dim; j++ {
			grad[j] += lambda * look[j]
		}
		copy(prev, theta)
		for j := range theta {
			theta[j] = look[j] - step*grad[j]
		}
	}
	r.bias = theta[0]
	copy(r.denseW[:], theta[1:1+numDense])
	for c, b := range buckets {
		r.w[b] = theta[1+numDense+c]
	}
	r.quantiles = []float64{0, 1}
	return r
}

// Label strengths, strongest first: when one prompt has labels from several
// sources, a Set keeps the strongest.
const (
	FromFile     = 4 // a labels file given to train
	FromImport   = 3 // labels imported into the database
	FromShadow   = 2 // a judge's verdict on a shadowed prompt
	FromOutcome  = 1 // what the first model did in a batch (quality gate)
	weakOutcomeW = 0.5
)

// Set gathers training examples from several sources, one per distinct
// prompt text, keeping the strongest source's label (the first one given
// among equals). Examples keep the order their prompts were first added.
type Set struct {
	idx   map[string]int
	ex    []Example
	rank  []int
	count [FromFile + 1]int
}

// Add offers an example from a source (FromFile ... FromOutcome).
func (s *Set) Add(e Example, source int) {
	if s.idx == nil {
		s.idx = make(map[string]int)
	}
	if i, ok := s.idx[e.Prompt]; ok {
		if source > s.rank[i] {
			s.count[s.rank[i]]--
			s.ex[i], s.rank[i] = e, source
			s.count[source]++
		}
		return
	}
	s.idx[e.Prompt] = len(s.ex)
	s.ex = append(s.ex, e)
	s.rank = append(s.rank, source)
	s.count[source]++
}

// AddOutcome adds what a batch's first model did with a prompt: a failure
// is a sure label that the cheap tier was wrong, a pass a weaker one that it
// was right.
func (s *Set) AddOutcome(prompt string, passed bool) {
	w := 1.0
	if passed {
		w = weakOutcomeW
	}
	s.Add(Example{Prompt: prompt, Strong: !passed, Weight: w}, FromOutcome)
}

// Examples returns the gathered examples.
func (s *Set) Examples() []Example { return s.ex }

// Count returns how many examples come from source.
func (s *Set) Count(source int) int { return s.count[source] }
