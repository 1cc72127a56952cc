package router_test

import (
	"math"
	"testing"

	"github.com/promptcascade/promptcascade/internal/router"
)

var routerShares = router.Shares{Simple: 0.5, Moderate: 0.3, Complex: 0.2}

func newClassifier(r *router.Router, c router.Cutoffs) (*router.Classifier, error) {
	return router.NewClassifier(r, c, nil)
}

// FuzzScore: any text gets a score in [0,1], the same every time, and a
// tier that agrees with the cutoffs.
func FuzzScore(f *testing.F) {
	for _, s := range []string{"", " ", "What is 2+2?", "$1,000.50 is 3.5% of {x};", "\xff\xfe", "日本語のテキスト 123"} {
		f.Add(s)
	}
	r := trainedRouter(f)
	cut, err := r.CutoffsFor(routerShares)
	if err != nil {
		f.Fatal(err)
	}
	cl, err := newClassifier(r, cut)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		s := r.Score(text)
		if math.IsNaN(s) || s < 0 || s > 1 {
			t.Fatalf("Score(%q) = %v", text, s)
		}
		if again := r.Score(text); again != s {
			t.Fatalf("Score(%q) = %v then %v", text, s, again)
		}
		tier, sig := cl.Classify(text)
		if sig.Score != s || tier != cut.Tier(s) {
			t.Fatalf("Classify(%q) = %s %+v; score %v, cutoffs %+v", text, tier, sig, s, cut)
		}
	})
}
