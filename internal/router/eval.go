package router

import (
	"fmt"
	"math"
	"sort"

	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

// Outcome is what the cheap and the strong model did with one prompt.
type Outcome struct{ Cheap, Strong bool }

// Labelled is a prompt with both models' correctness, for training and
// evaluation.
type Labelled struct {
	ID     string
	Prompt string
	Outcome
}

// Example turns a labelled prompt into a training example: it needs the
// strong model when the cheap one got it wrong. A prompt both models got
// wrong counts at half weight: routing it up costs money and gains nothing,
// but it is still a prompt the cheap model fails.
func (l Labelled) Example() Example {
	w := 1.0
	if !l.Cheap && !l.Strong {
		w = 0.5
	}
	return Example{Prompt: l.Prompt, Strong: !l.Cheap, Weight: w}
}

// Point is one point of an accuracy / strong-share curve.
type Point struct {
	Share    float64 `json:"strong_share"`
	Accuracy float64 `json:"accuracy"`
}

// CurveOf returns the accuracy reached when the prompts with the highest
// scores go to the strong model and the rest to the cheap one, for every
// count 0..n of strong prompts (n+1 points). Tied scores are split evenly:
// within a group of equal scores each prompt is as likely to go up, so the
// curve is the expectation over random tie-breaking.
func CurveOf(scores []float64, out []Outcome) []Point {
	n := len(out)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return scores[order[a]] > scores[order[b]] })
	gain := make([]float64, n) // in score order: strong - cheap correctness
	base := 0.0
	for k, i := range order {
		gain[k] = b2f(out[i].Strong) - b2f(out[i].Cheap)
		base += b2f(out[i].Cheap)
	}
	for lo := 0; lo < n; { // average the gain over ties
		hi := lo + 1
		for hi < n && scores[order[hi]] == scores[order[lo]] {
			hi++
		}
		sum := 0.0
		for k := lo; k < hi; k++ {
			sum += gain[k]
		}
		for k := lo; k < hi; k++ {
			gain[k] = sum / float64(hi-lo)
		}
		lo = hi
	}
	pts := make([]Point, n+1)
	acc := base
	pts[0] = Point{0, acc / float64(n)}
	for k := range n {
		acc += gain[k]
		pts[k+1] = Point{float64(k+1) / float64(n), acc / float64(n)}
	}
	return pts
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// AccuracyAt interpolates the curve at share s.
func AccuracyAt(c []Point, s float64) float64 {
	s = min(max(s, 0), 1)
	i := sort.Search(len(c), func(i int) bool { return c[i].Share >= s })
	if i == 0 {
		return c[0].Accuracy
	}
	if i == len(c) {
		return c[len(c)-1].Accuracy
	}
	a, b := c[i-1], c[i]
	f := (s - a.Share) / (b.Share - a.Share)
	return a.Accuracy + f*(b.Accuracy-a.Accuracy)
}

// APGR is the average performance gap recovered, as RouteLLM defines it:
// the area under the accuracy / strong-share curve above the cheap model's
// accuracy, over the area between the strong and the cheap model's
// accuracy (trapezoids over the curve's points). Random routing scores 0.5;
// 1 means every share recovers the whole gap.
func APGR(c []Point, weak, strong float64) float64 {
	if strong == weak {
		return math.NaN()
	}
	auc := 0.0
	for i := 1; i < len(c); i++ {
		auc += (c[i].Share - c[i-1].Share) * (c[i].Accuracy + c[i-1].Accuracy) / 2
	}
	span := c[len(c)-1].Share - c[0].Share
	return (auc - weak*span) / ((strong - weak) * span)
}

// ShareReaching returns the least strong share at which the curve reaches
// accuracy target (interpolated between points), or NaN if it never does.
func ShareReaching(c []Point, target float64) float64 {
	for i, p := range c {
		if p.Accuracy >= target {
			if i == 0 {
				return p.Share
			}
			a := c[i-1]
			return a.Share + (target-a.Accuracy)/(p.Accuracy-a.Accuracy)*(p.Share-a.Share)
		}
	}
	return math.NaN()
}

// Method is one routing method's result in an Evaluation.
type Method struct {
	Name     string    `json:"name"`
	APGR     float64   `json:"apgr"`
	Share95  float64   `json:"strong_share_for_95pct"` // least strong share reaching 95% of the strong model's accuracy
	FoldAPGR []float64 `json:"fold_apgr,omitempty"`    // APGR of each held-out fold
	Curve    []Point   `json:"curve"`                  // sampled every 5% of strong share
	full     []Point
}

// Full returns the method's curve with a point per prompt count.
func (m *Method) Full() []Point { return m.full }

// Evaluation compares routing methods on the same labelled prompts.
type Evaluation struct {
	Prompts        int      `json:"prompts"`
	Cheap          string   `json:"cheap"`
	Strong         string   `json:"strong"`
	CheapAccuracy  float64  `json:"cheap_accuracy"`
	StrongAccuracy float64  `json:"strong_accuracy"`
	Target         float64  `json:"target_accuracy"` // 95% of StrongAccuracy
	HeldOut        string   `json:"held_out"`        // how the scores were kept off training data
	Methods        []Method `json:"methods"`
}

// Target95 is the share of the strong model's accuracy that
// Method.Share95 looks for.
const Target95 = 0.95

// HeuristicScores scores prompts by the article's heuristic tier (simple 0,
// moderate 0.5, complex 1), so that the heuristic can be drawn on the same
// curve: prompts of the higher tiers go to the strong model first.
func HeuristicScores(prompts []string) []float64 {
	s := make([]float64, len(prompts))
	cl := classify.Default()
	for i, p := range prompts {
		switch t, _ := cl.Classify(p); t {
		case prompt.TierModerate:
			s[i] = 0.5
		case prompt.TierComplex:
			s[i] = 1
		}
	}
	return s
}

// RandomScores gives every prompt the same score: with ties split evenly,
// its curve is random routing's expected accuracy, the straight line from
// the cheap to the strong model.
func RandomScores(n int) []float64 { return make([]float64, n) }

// Evaluate computes curve, APGR and the 95% share for each scored method;
// folds (may be nil) give the held-out fold of each prompt, for per-fold
// APGR.
func Evaluate(out []Outcome, folds []int, names []string, scores [][]float64) (*Evaluation, error) {
	n := len(out)
	if n == 0 {
		return nil, fmt.Errorf("router: no labelled prompts to evaluate")
	}
	ev := &Evaluation{Prompts: n}
	for _, o := range out {
		ev.CheapAccuracy += b2f(o.Cheap)
		ev.StrongAccuracy += b2f(o.Strong)
	}
	ev.CheapAccuracy /= float64(n)
	ev.StrongAccuracy /= float64(n)
	ev.Target = Target95 * ev.StrongAccuracy
	if ev.StrongAccuracy <= ev.CheapAccuracy {
		return nil, fmt.Errorf("router: the strong model (%.1f%%) is not more accurate than the cheap one (%.1f%%) on these prompts: nothing to route",
			100*ev.StrongAccuracy, 100*ev.CheapAccuracy)
	}
	nFolds := 0
	for _, f := range folds {
		nFolds = max(nFolds, f+1)
	}
	for m, name := range names {
		full := CurveOf(scores[m], out)
		me := Method{Name: name, full: full, APGR: APGR(full, ev.CheapAccuracy, ev.StrongAccuracy),
			Share95: ShareReaching(full, ev.Target)}
		for s := 0; s <= 20; s++ {
			share := float64(s) / 20
			me.Curve = append(me.Curve, Point{share, AccuracyAt(full, share)})
		}
		for k := range nFolds {
			var fo []Outcome
			var fs []float64
			for i, f := range folds {
				if f == k {
					fo = append(fo, out[i])
					fs = append(fs, scores[m][i])
				}
			}
			var w, st float64
			for _, o := range fo {
				w += b2f(o.Cheap)
				st += b2f(o.Strong)
			}
			me.FoldAPGR = append(me.FoldAPGR, APGR(CurveOf(fs, fo), w/float64(len(fo)), st/float64(len(fo))))
		}
		ev.Methods = append(ev.Methods, me)
	}
	return ev, nil
}

// CrossValidate scores every prompt with a router trained, with opts, on the
// other folds only (k folds drawn with seed): each score is a held-out score.
func CrossValidate(items []Labelled, opts TrainOptions, k int, seed uint64) (scores []float64, folds []int, err error) {
	folds = Folds(len(items), k, seed)
	scores = make([]float64, len(items))
	for f := range k {
		train, test := split(folds, f)
		ex := make([]Example, len(train))
		for j, i := range train {
			ex[j] = items[i].Example()
		}
		r, err := Train(ex, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("fold %d of %d: %w", f+1, k, err)
		}
		for _, i := range test {
			scores[i] = r.Score(items[i].Prompt)
		}
	}
	return scores, folds, nil
}
