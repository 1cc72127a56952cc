package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promptcascade/promptcascade/internal/router"
	"github.com/promptcascade/promptcascade/internal/store"
)

// splitGSM8K writes the first n GSM8K rows and the rest to two CSV files.
func splitGSM8K(t *testing.T, n int) (train, test string) {
	t.Helper()
	f, err := os.Open("../../testdata/routellm/gsm8k_responses.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, rows [][]string) string {
		var b bytes.Buffer
		w := csv.NewWriter(&b)
		w.WriteAll(append([][]string{recs[0]}, rows...))
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("train.csv", recs[1:1+n]), write("test.csv", recs[1+n:])
}

func runCtl(t *testing.T, want int, args ...string) (string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, strings.NewReader(""), &out, &errb); code != want {
		t.Fatalf("cascadectl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

func TestRouterTrainEval(t *testing.T) {
	t.Parallel()
	train, test := splitGSM8K(t, 1000)
	out := filepath.Join(t.TempDir(), "router.json")
	stdout, _ := runCtl(t, 0, "router", "train", "--labels", train, "--out", out, "--seed", "3")
	if !strings.Contains(stdout, "trained on 1000 prompts (1000 from files") || !strings.Contains(stdout, "cheap mistralai/Mixtral-8x7B-Instruct-v0.1, strong gpt-4-1106-preview") {
		t.Errorf("train output:\n%s", stdout)
	}
	r, err := router.LoadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Meta.Seed != 3 || r.Meta.Examples != 1000 {
		t.Errorf("router meta %+v", r.Meta)
	}

	// Held-out file: the router is scored as trained.
	html := filepath.Join(t.TempDir(), "eval.html")
	stdout, _ = runCtl(t, 0, "router", "eval", "--labels", test, "--router", out, "--format", "json", "--html", html)
	var ev router.Evaluation
	if err := json.Unmarshal([]byte(stdout), &ev); err != nil {
		t.Fatalf("eval --format json: %v\n%s", err, stdout)
	}
	if ev.Prompts != 319 || !strings.Contains(ev.HeldOut, "none of these 319 prompts") || len(ev.Methods) != 3 {
		t.Fatalf("eval = %d prompts, held out %q, %d methods", ev.Prompts, ev.HeldOut, len(ev.Methods))
	}
	if m := ev.Methods[2]; m.Name != "random" || m.APGR < 0.499 || m.APGR > 0.501 {
		t.Errorf("random APGR = %v, want 0.5", m.APGR)
	}
	// The acceptance on a fixed held-out split, as router eval shows
	// it: the learned router beats the heuristic, which beats random routing,
	// and is more accurate than both at the same strong shares.
	learned, heuristic, random := ev.Methods[0], ev.Methods[1], ev.Methods[2]
	if !(learned.APGR > heuristic.APGR && heuristic.APGR > random.APGR) || !(learned.Share95 < heuristic.Share95 && heuristic.Share95 < random.Share95) {
		t.Errorf("APGR learned %.3f, heuristic %.3f, random %.3f; strong share for 95%%: %.3f, %.3f, %.3f; want learned best, random worst",
			learned.APGR, heuristic.APGR, random.APGR, learned.Share95, heuristic.Share95, random.Share95)
	}
	for i := 2; i <= 18; i += 4 { // 10%, 30%, 50%, 70%, 90% strong share
		l, h, r := learned.Curve[i], heuristic.Curve[i], random.Curve[i]
		if !(l.Accuracy > h.Accuracy && l.Accuracy > r.Accuracy) {
			t.Errorf("at strong share %.0f%%: accuracy learned %.4f, heuristic %.4f, random %.4f; want learned above both", 100*l.Share, l.Accuracy, h.Accuracy, r.Accuracy)
		}
	}
	page, err := os.ReadFile(html)
	if err != nil || !bytes.Contains(page, []byte("<svg")) || bytes.Count(page, []byte("<polyline")) != 3 {
		t.Errorf("html page: %v, %d bytes", err, len(page))
	}

	// The training file itself: eval refuses to score in-sample and cross-validates.
	stdout, _ = runCtl(t, 0, "router", "eval", "--labels", train, "--router", out, "--folds", "2")
	if !strings.Contains(stdout, "2-fold cross-validation of the router's training settings (seed 1): 1000 of these 1000 prompts") ||
		!strings.Contains(stdout, "learned") || !strings.Contains(stdout, "heuristic") {
		t.Errorf("eval on training data:\n%s", stdout)
	}
}

func TestRouterErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"format":"promptcascade-router","version":1,"sha256":"00","model":{}}`), 0o644)
	labelsFile := filepath.Join(dir, "l.jsonl")
	os.WriteFile(labelsFile, []byte(`{"prompt":"x","correct":{"a":true,"b":true}}`+"\n"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"router"}, 2, "want: router train"},
		{[]string{"router", "train", "--labels", labelsFile}, 2, "--out: required"},
		{[]string{"router", "train", "--out", "x"}, 2, "give --labels FILE and/or --from-db BATCH"},
		{[]string{"router", "train", "--labels", labelsFile, "--out", filepath.Join(dir, "r.json"), "--cheap", "zz"}, 2, `no labels for the cheap model "zz"`},
		{[]string{"router", "train", "--labels", labelsFile, "--out", filepath.Join(dir, "r.json")}, 1, "too few examples"},
		{[]string{"router", "eval", "--labels", labelsFile, "--router", bad}, 2, "router file " + bad + ": checksum mismatch"},
		{[]string{"router", "eval", "--labels", labelsFile, "--router", bad, "--format", "xml"}, 2, `--format: "xml"`},
	} {
		_, stderr := runCtl(t, tc.code, tc.args...)
		if !strings.Contains(stderr, tc.want) {
			t.Errorf("cascadectl %s: stderr %q, want %q", strings.Join(tc.args, " "), stderr, tc.want)
		}
	}
}

func TestSpreadLists(t *testing.T) {
	t.Parallel()
	got := spreadLists([]string{"--labels", "a", "b", "--out", "o", "--from-db", "x", "y", "--seed=2"}, "labels", "from-db")
	want := "--labels a --labels b --out o --from-db x --from-db y --seed=2"
	if strings.Join(got, " ") != want {
		t.Errorf("spreadLists = %q, want %q", strings.Join(got, " "), want)
	}
}

func TestClassifyPrintsScore(t *testing.T) {
	train, _ := splitGSM8K(t, 300)
	dir := t.TempDir()
	runCtl(t, 0, "router", "train", "--labels", train, "--out", filepath.Join(dir, "router.json"))
	routes := filepath.Join(dir, "routes.yaml")
	os.WriteFile(routes, []byte("tiers: {simple: [sim/small], moderate: [sim/medium], complex: [sim/large]}\n"+
		"classifier: {kind: learned, model: router.json, thresholds: {moderate: 0.3, complex: 0.5}}\n"), 0o644)
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(`{"id":"a","prompt":"What is 2+2?"}`+"\n"+`{"id":"b","prompt":"Janet has 3 apples and buys 17 more boxes of 12 apples each at $2.50 per box; after giving away 40% of them, how many are left and what did she pay?"}`+"\n"), 0o644)
	t.Setenv("ROUTES_FILE", routes)
	stdout, _ := runCtl(t, 0, "classify", in)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("classify output:\n%s", stdout)
	}
	for _, l := range lines {
		var got struct {
			ID    string   `json:"id"`
			Tier  string   `json:"tier"`
			Score *float64 `json:"score"`
			Words int      `json:"word_count"`
		}
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatal(err)
		}
		if got.Score == nil || *got.Score < 0 || *got.Score > 1 || got.Words == 0 {
			t.Fatalf("line %s: want a score in [0,1] and the heuristic's signals", l)
		}
		want := "simple"
		switch {
		case *got.Score >= 0.5:
			want = "complex"
		case *got.Score >= 0.3:
			want = "moderate"
		}
		if got.Tier != want {
			t.Errorf("line %s: tier %s, want %s from the thresholds", l, got.Tier, want)
		}
	}
	// The heuristic prints no score.
	t.Setenv("ROUTES_FILE", "")
	stdout, _ = runCtl(t, 0, "classify", in)
	if strings.Contains(stdout, "score") {
		t.Errorf("heuristic classify printed a score:\n%s", stdout)
	}
}

// Bad rows are listed and skipped; the rest is trained on and evaluated, and
// the exit status says rows were skipped.
func TestRouterBadRows(t *testing.T) {
	t.Parallel()
	train, test := splitGSM8K(t, 600)
	b, _ := os.ReadFile(train)
	bad := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(bad, append(b, []byte("\"one more prompt\",maybe,True,x,y\n")...), 0o644)
	out := filepath.Join(t.TempDir(), "r.json")
	stdout, stderr := runCtl(t, 1, "router", "train", "--labels", bad, "--out", out)
	if !strings.Contains(stdout, "trained on 600 prompts") || !strings.Contains(stderr, `bad.csv:`) ||
		!strings.Contains(stderr, `column "mistralai/Mixtral-8x7B-Instruct-v0.1": want True or False, got "maybe"`) ||
		!strings.Contains(stderr, "1 bad row(s) skipped (listed above); the router was trained on the rest") {
		t.Errorf("train with a bad row:\nstdout %s\nstderr %s", stdout, stderr)
	}
	if _, err := router.LoadFile(out); err != nil {
		t.Errorf("router file not written: %v", err)
	}
	tb, _ := os.ReadFile(test)
	badTest := filepath.Join(t.TempDir(), "badtest.csv")
	os.WriteFile(badTest, append(tb, []byte("\"x\",True\n")...), 0o644)
	stdout, stderr = runCtl(t, 1, "router", "eval", "--labels", badTest, "--router", out)
	if !strings.Contains(stdout, "719 prompts") || !strings.Contains(stderr, "1 bad row(s) of "+badTest+" skipped") {
		t.Errorf("eval with a bad row:\nstdout %s\nstderr %s", stdout, stderr)
	}
}

// TestFromDBLabels: which stored outcomes and verdicts become labels for
// `router train --from-db`. Failures on any model say the cheap one was
// wrong; passes count only when they are the cheap model's (the simple
// tier's first model unless --cheap names a model the batch used); imported
// labels keep the order the database gives them.
func TestFromDBLabels(t *testing.T) {
	t.Parallel()
	tries := []store.FirstTry{
		{Prompt: "s-pass", Tier: "simple", Model: "sim/small", Passed: true},
		{Prompt: "s-fail", Tier: "simple", Model: "sim/small", Passed: false},
		{Prompt: "m-pass", Tier: "moderate", Model: "sim/medium", Passed: true},
		{Prompt: "m-fail", Tier: "moderate", Model: "sim/medium", Passed: false},
		{Prompt: "c-pass-1", Tier: "complex", Model: "sim/large", Passed: true},
		{Prompt: "c-pass-2", Tier: "complex", Model: "sim/large", Passed: true},
		{Prompt: "c-pass-3", Tier: "complex", Model: "sim/large", Passed: true},
		{Prompt: "shadowed", Tier: "moderate", Model: "sim/medium", Passed: true},
		{Prompt: "judged-worse", Tier: "moderate", Model: "sim/medium", Passed: true},
	}
	ls := []store.StoredLabel{
		{Source: store.LabelShadow, Prompt: "shadowed", Model: "sim/medium", Correct: true},
		{Source: store.LabelShadow, Prompt: "judged-worse", Model: "sim/medium", Correct: false},
		{Source: store.LabelShadow, Prompt: "s-pass", Model: "sim/small", Correct: false},
	}
	var set router.Set
	cheap, passedOver, unused := fromDB(&set, tries, ls, "", "")
	// sim/large is the most common first model, but the simple tier's is the cheap one.
	if cheap != "sim/small" || passedOver != 7 || unused != 0 {
		t.Errorf("cheap %q, passed over %d, unused %d; want sim/small, 7 (the 3 sim/medium and 3 sim/large passes, the as-good verdict on sim/medium), 0", cheap, passedOver, unused)
	}
	got := map[string]bool{}
	for _, e := range set.Examples() {
		got[e.Prompt] = e.Strong
	}
	want := map[string]bool{"s-pass": true, "s-fail": true, "m-fail": true, "judged-worse": true}
	if len(got) != len(want) {
		t.Errorf("labels %v, want %v", got, want)
	}
	for p, strong := range want {
		if g, ok := got[p]; !ok || g != strong {
			t.Errorf("%s: label strong=%v (present %v), want strong=%v", p, g, ok, strong)
		}
	}
	if set.Count(router.FromShadow) != 2 || set.Count(router.FromOutcome) != 2 {
		t.Errorf("%d shadow, %d outcome labels; want 2 and 2", set.Count(router.FromShadow), set.Count(router.FromOutcome))
	}
	// --cheap naming a model the batch first tried wins over the simple tier's.
	var set2 router.Set
	if cheap, _, _ := fromDB(&set2, tries, nil, "sim/medium", ""); cheap != "sim/medium" || len(set2.Examples()) != 5 {
		t.Errorf("--cheap sim/medium: cheap %q, %d labels; want sim/medium and 5 (2 fails, m-pass, shadowed, judged-worse passes)", cheap, len(set2.Examples()))
	}

	// Imported labels: in the database's order, whatever the number.
	var imp []store.StoredLabel
	for i := range 200 {
		p := fmt.Sprintf("q%03d", i)
		imp = append(imp, store.StoredLabel{Source: store.LabelImport, Prompt: p, Model: "weak", Correct: i%3 == 0},
			store.StoredLabel{Source: store.LabelImport, Prompt: p, Model: "strong", Correct: true})
	}
	imp = append(imp, store.StoredLabel{Source: store.LabelImport, Prompt: "other", Model: "m", Correct: true})
	var set3 router.Set
	if _, _, unused := fromDB(&set3, nil, imp, "weak", "strong"); unused != 1 {
		t.Errorf("unused = %d, want 1 (the prompt with no label of the cheap model)", unused)
	}
	ex := set3.Examples()
	if len(ex) != 200 {
		t.Fatalf("%d imported examples, want 200", len(ex))
	}
	for i, e := range ex {
		if want := fmt.Sprintf("q%03d", i); e.Prompt != want || e.Strong != (i%3 != 0) {
			t.Fatalf("example %d: %q strong=%v, want %q strong=%v (the database's order: it decides the folds)", i, e.Prompt, e.Strong, want, i%3 != 0)
		}
	}
}
