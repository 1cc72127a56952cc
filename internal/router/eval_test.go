package router_test

import (
	"math"
	"testing"

	"github.com/promptcascade/promptcascade/internal/router"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestCurveAPGRShare(t *testing.T) {
	t.Parallel()
	// Four prompts: the cheap model gets 1 right, the strong one 3.
	out := []router.Outcome{{Cheap: false, Strong: true}, {Cheap: false, Strong: true}, {Cheap: true, Strong: true}, {Cheap: false, Strong: false}}
	perfect := []float64{0.9, 0.8, 0.1, 0.2}
	c := router.CurveOf(perfect, out)
	want := []float64{0.25, 0.5, 0.75, 0.75, 0.75}
	for i, p := range c {
		if !near(p.Accuracy, want[i]) || !near(p.Share, float64(i)/4) {
			t.Fatalf("curve[%d] = %+v, want share %.2f accuracy %.2f", i, p, float64(i)/4, want[i])
		}
	}
	// Trapezoids: 0.25*(0.375+0.625+0.75+0.75) = 0.625; (0.625-0.25)/(0.75-0.25) = 0.75.
	if got := router.APGR(c, 0.25, 0.75); !near(got, 0.75) {
		t.Errorf("APGR = %v, want 0.75", got)
	}
	if got := router.ShareReaching(c, 0.95*0.75); !near(got, 0.25+0.25*(0.7125-0.5)/0.25) {
		t.Errorf("ShareReaching = %v", got)
	}
	// Equal scores are random routing: the straight line, APGR 0.5.
	r := router.CurveOf(router.RandomScores(4), out)
	for i, p := range r {
		if !near(p.Accuracy, 0.25+0.5*float64(i)/4) {
			t.Fatalf("random curve[%d] = %+v", i, p)
		}
	}
	if got := router.APGR(r, 0.25, 0.75); !near(got, 0.5) {
		t.Errorf("random APGR = %v, want 0.5", got)
	}
	if got := router.AccuracyAt(c, 0.125); !near(got, 0.375) {
		t.Errorf("AccuracyAt(0.125) = %v, want 0.375", got)
	}
}

// TestLearnedBeatsHeuristicAndRandom is the acceptance test: on
// held-out GSM8K prompts (5-fold cross-validation, fixed seed), the learned
// router recovers more of the gap between Mixtral and GPT-4 than the
// article's heuristic, which beats random routing, and does so at the very
// strong shares the heuristic produces.
func TestLearnedBeatsHeuristicAndRandom(t *testing.T) {
	t.Parallel()
	items := gsm8k(t)
	scores, folds, err := router.CrossValidate(items, router.TrainOptions{Seed: 1}, 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]router.Outcome, len(items))
	prompts := make([]string, len(items))
	for i, it := range items {
		out[i], prompts[i] = it.Outcome, it.Prompt
	}
	heur := router.HeuristicScores(prompts)
	ev, err := router.Evaluate(out, folds, []string{"learned", "heuristic", "random"},
		[][]float64{scores, heur, router.RandomScores(len(items))})
	if err != nil {
		t.Fatal(err)
	}
	learned, heuristic, random := ev.Methods[0], ev.Methods[1], ev.Methods[2]
	for _, m := range ev.Methods {
		t.Logf("%-9s APGR %.3f, strong share for 95%% of GPT-4: %.3f, folds %.3f", m.Name, m.APGR, m.Share95, m.FoldAPGR)
	}
	if !(learned.APGR > heuristic.APGR && heuristic.APGR > random.APGR) {
		t.Errorf("APGR: learned %.3f, heuristic %.3f, random %.3f; want learned > heuristic > random", learned.APGR, heuristic.APGR, random.APGR)
	}
	if !(learned.Share95 < heuristic.Share95 && heuristic.Share95 < random.Share95) {
		t.Errorf("strong share for 95%%: learned %.3f, heuristic %.3f, random %.3f; want learned < heuristic < random",
			learned.Share95, heuristic.Share95, random.Share95)
	}
	// At the same strong share the learned router is more accurate. The
	// heuristic reaches a share between its tiers' by sending a random part
	// of its moderate prompts up (its curve is a straight line there).
	for _, share := range []float64{0.2, 0.4, 0.6} {
		l, h, r := router.AccuracyAt(curveOf(learned), share), router.AccuracyAt(curveOf(heuristic), share), router.AccuracyAt(curveOf(random), share)
		t.Logf("strong share %.0f%%: accuracy learned %.4f, heuristic %.4f, random %.4f", 100*share, l, h, r)
		if !(l > h && h > r) {
			t.Errorf("at strong share %.0f%%: learned %.4f, heuristic %.4f, random %.4f; want learned > heuristic > random", 100*share, l, h, r)
		}
	}
}

func curveOf(m router.Method) []router.Point { return m.Full() }
