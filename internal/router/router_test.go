package router_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/router"
)

var trained = sync.OnceValues(func() (*router.Router, error) {
	items := gsm8kItems
	ex := make([]router.Example, len(items))
	for i, it := range items {
		ex[i] = it.Example()
	}
	return router.Train(ex, router.TrainOptions{Seed: 7, Meta: router.Meta{Cheap: "mixtral", Strong: "gpt-4"}})
})

var gsm8kItems []router.Labelled

func trainedRouter(t testing.TB) *router.Router {
	t.Helper()
	if gsm8kItems == nil {
		gsm8kItems = gsm8k(t)
	}
	r, err := trained()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fileBytes(t testing.TB, r *router.Router) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestTrainDeterministic(t *testing.T) {
	r1 := trainedRouter(t)
	ex := make([]router.Example, len(gsm8kItems))
	for i, it := range gsm8kItems {
		ex[i] = it.Example()
	}
	r2, err := router.Train(ex, router.TrainOptions{Seed: 7, Meta: router.Meta{Cheap: "mixtral", Strong: "gpt-4"}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fileBytes(t, r1), fileBytes(t, r2)) {
		t.Fatal("two trainings with the same seed and data wrote different router files")
	}
	if m := r1.Meta; m.Examples != len(ex) || m.Seed != 7 || m.Lambda <= 0 || m.Positives < 0.3 || m.Positives > 0.4 {
		t.Errorf("meta = %+v; want %d examples, seed 7, a chosen lambda and ~36%% positives", m, len(ex))
	}
}

func TestTrainRefusesTooFewExamples(t *testing.T) {
	t.Parallel()
	ex := []router.Example{{Prompt: "a", Strong: true, Weight: 1}, {Prompt: "b", Weight: 1}}
	if _, err := router.Train(ex, router.TrainOptions{}); !errors.Is(err, router.ErrTooFewExamples) {
		t.Errorf("Train(2 examples) = %v, want ErrTooFewExamples", err)
	}
	ex = append(ex, router.Example{Prompt: "c", Weight: 0})
	if _, err := router.Train(ex, router.TrainOptions{}); err == nil || !strings.Contains(err.Error(), "example 2: weight") {
		t.Errorf("Train(weight 0) = %v", err)
	}
}

func TestFileRoundTrip(t *testing.T) {
	r := trainedRouter(t)
	b := fileBytes(t, r)
	back, err := router.Parse("router.json", b)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range gsm8kItems[:50] {
		if a, b := r.Score(it.Prompt), back.Score(it.Prompt); a != b {
			t.Fatalf("score changed through the file: %v -> %v", a, b)
		}
	}
	if back.Meta != r.Meta || back.Features != r.Features {
		t.Errorf("meta %+v / %+v after the file, want %+v / %+v", back.Meta, back.Features, r.Meta, r.Features)
	}
	if !back.Trained(gsm8kItems[3].Prompt) || back.Trained("a prompt that was not in the training data") {
		t.Error("the training-prompt filter does not survive the file")
	}
	// Re-indenting the file keeps it valid: the checksum is over the compact model.
	var ind bytes.Buffer
	if err := json.Indent(&ind, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	if _, err := router.Parse("router.json", ind.Bytes()); err != nil {
		t.Errorf("indented file refused: %v", err)
	}
}

// reseal replaces the model in a router file and recomputes its checksum, so
// that validation past the checksum is reached.
func reseal(t *testing.T, file []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	var env map[string]json.RawMessage
	if err := json.Unmarshal(file, &env); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(env["model"], &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	body, _ := json.Marshal(m)
	sum := sha256.Sum256(body)
	env["model"] = body
	env["sha256"], _ = json.Marshal(hex.EncodeToString(sum[:]))
	out, _ := json.Marshal(env)
	return out
}

func TestFileRefused(t *testing.T) {
	r := trainedRouter(t)
	good := fileBytes(t, r)
	corrupt := bytes.Clone(good)
	i := bytes.Index(corrupt, []byte(`"bias":`)) + len(`"bias":`)
	for corrupt[i] < '1' || corrupt[i] > '8' {
		i++
	}
	corrupt[i]++ // a digit of the bias
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "not a router file"},
		{"other json", []byte(`{"format": "something-else", "version": 1}`), `format is "something-else"`},
		{"newer version", bytes.Replace(good, []byte(`"version":1`), []byte(`"version":2`), 1), "version 2 is not supported"},
		{"corrupt", corrupt, "checksum mismatch"},
		{"truncated", good[:len(good)/2], "not a router file"},
		{"unknown field", reseal(t, good, func(m map[string]any) { m["extra"] = 1 }), `unknown field "extra"`},
		{"quantiles out of order", reseal(t, good, func(m map[string]any) {
			q := m["quantiles"].([]any)
			q[0], q[100] = q[100], q[0]
		}), "quantiles: not in increasing order"},
		{"index out of range", reseal(t, good, func(m map[string]any) {
			h := m["hashed"].(map[string]any)
			h["index"].([]any)[0] = 1 << 30
		}), "hashed.index[0]"},
		{"missing dense", reseal(t, good, func(m map[string]any) { m["dense"] = []any{} }), "dense: 0 signals"},
		{"no models", reseal(t, good, func(m map[string]any) { m["meta"].(map[string]any)["cheap"] = "" }), "cheap and strong"},
	} {
		_, err := router.Parse("router.json", tc.file)
		var fe *router.FileError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "router file router.json: ") {
			t.Errorf("%s: Parse = %v, want a FileError naming the file and %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error is not one line: %q", tc.name, err)
		}
	}
}

func TestCutoffsForShares(t *testing.T) {
	r := trainedRouter(t)
	cut, err := r.CutoffsFor(router.Shares{Simple: 0.5, Moderate: 0.3, Complex: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := router.NewClassifier(r, cut, nil)
	if err != nil {
		t.Fatal(err)
	}
	count := map[prompt.Tier]int{}
	for _, it := range gsm8kItems {
		tier, sig := cl.Classify(it.Prompt)
		if !sig.Scored || sig.WordCount == 0 || !(sig.Score >= 0 && sig.Score <= 1) {
			t.Fatalf("signals %+v: want a score in [0,1] and the heuristic's word count", sig)
		}
		count[tier]++
	}
	n := float64(len(gsm8kItems))
	for tier, want := range map[prompt.Tier]float64{prompt.TierSimple: 0.5, prompt.TierModerate: 0.3, prompt.TierComplex: 0.2} {
		if got := float64(count[tier]) / n; math.Abs(got-want) > 0.02 {
			t.Errorf("%s: %.3f of the training prompts, want %.2f", tier, got, want)
		}
	}
	for _, bad := range []router.Shares{{0.5, 0.5, 0.5}, {-0.1, 0.6, 0.5}, {math.NaN(), 0.5, 0.5}} {
		if _, err := r.CutoffsFor(bad); err == nil {
			t.Errorf("CutoffsFor(%v) accepted", bad)
		}
	}
	// All to one tier.
	allSimple, _ := r.CutoffsFor(router.Shares{Simple: 1})
	allComplex, _ := r.CutoffsFor(router.Shares{Complex: 1})
	for _, s := range []float64{0, 0.3, 1} {
		if allSimple.Tier(s) != prompt.TierSimple || allComplex.Tier(s) != prompt.TierComplex {
			t.Errorf("score %v: shares 1/0/0 gave %s, 0/0/1 gave %s", s, allSimple.Tier(s), allComplex.Tier(s))
		}
	}
}

// Many equal scores give equal quantiles, which must still make a valid file.
func TestQuantilesWithTies(t *testing.T) {
	t.Parallel()
	var ex []router.Example
	for i := range 60 {
		ex = append(ex, router.Example{Prompt: []string{"easy one", "a hard, long question about proofs"}[i%2], Strong: i%2 == 1, Weight: 1})
	}
	r, err := router.Train(ex, router.TrainOptions{Meta: router.Meta{Cheap: "a", Strong: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	back, err := router.Parse("r.json", fileBytes(t, r))
	if err != nil {
		t.Fatalf("a router trained on tied scores writes an invalid file: %v", err)
	}
	if lo, hi := back.Quantile(0.25), back.Quantile(0.75); !(lo < hi) {
		t.Errorf("quantiles 25%% %v, 75%% %v: want the two prompts' scores apart", lo, hi)
	}
}
