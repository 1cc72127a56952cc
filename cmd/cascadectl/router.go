package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/promptcascade/promptcascade/internal/labels"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/router"
	"github.com/promptcascade/promptcascade/internal/store"
)

const routerUsage = "router train --labels FILE... [--from-db BATCH...] --out router.json [--seed N] [--cheap M --strong M] | " +
	"router eval --labels FILE --router router.json [--format text|json] [--html FILE] [--folds 5] [--seed N]"

func cmdRouter(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "train":
			return cmdRouterTrain(ctx, e, args[1:])
		case "eval":
			return cmdRouterEval(ctx, e, args[1:])
		}
	}
	return &exitError{2, fmt.Errorf("want: %s", routerUsage)}
}

// listFlag is a flag that may be repeated and may take several values:
// `--labels a.csv b.csv --labels c.csv`.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// spreadLists rewrites `--name a b` into `--name a --name b` for the list
// flags names, so that the flag package sees each value.
func spreadLists(args []string, names ...string) []string {
	var out []string
	cur := ""
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			cur = ""
			name := strings.TrimLeft(a, "-")
			for _, n := range names {
				if name == n {
					cur = a
				}
			}
			out = append(out, a)
			continue
		}
		if cur != "" && len(out) > 0 && out[len(out)-1] != cur {
			out = append(out, cur)
		}
		out = append(out, a)
	}
	return out
}

func cmdRouterTrain(ctx context.Context, e *env, args []string) error {
	fs := newFlags("router train", e)
	var files, batches listFlag
	fs.Var(&files, "labels", "labels file (RouteLLM CSV or JSONL); repeat or list several")
	fs.Var(&batches, "from-db", "batch whose outcomes, shadow verdicts and imported labels to learn from; repeat or list several")
	out := fs.String("out", "", "router file to write (required)")
	seed := fs.Uint64("seed", 1, "seed of the cross-validation folds; the same data and seed give the same router")
	cheap := fs.String("cheap", "", "cheap model's column in the labels (default: the first model column)")
	strong := fs.String("strong", "", "strong model's column in the labels (default: the second model column)")
	folds := fs.Int("folds", 5, "folds of the cross-validation that chooses the regularisation")
	if err := noArgs(fs, spreadLists(args, "labels", "from-db")); err != nil {
		return err
	}
	if *out == "" {
		return &exitError{2, fmt.Errorf("--out: required")}
	}
	if len(files) == 0 && len(batches) == 0 {
		return &exitError{2, fmt.Errorf("give --labels FILE and/or --from-db BATCH")}
	}
	var set router.Set
	var sources []string
	sets, bad, err := readLabelFiles(e, files, labels.Auto)
	if err != nil {
		return err
	}
	for _, s := range sets {
		items, c, st, err := pairOf(s, *cheap, *strong, false)
		if err != nil {
			return &exitError{2, err}
		}
		if *cheap == "" {
			*cheap = c
		}
		if *strong == "" {
			*strong = st
		}
		for _, it := range items {
			set.Add(it.Example(), router.FromFile)
		}
		sources = append(sources, s.Name)
	}
	if len(batches) > 0 {
		st, err := e.store(ctx)
		if err != nil {
			return err
		}
		c, s, err := addFromDB(ctx, st, e.stderr, batches, &set, *cheap, *strong)
		if err != nil {
			return err
		}
		if *cheap == "" {
			*cheap = c
		}
		if *strong == "" {
			*strong = s
		}
		sources = append(sources, "batches "+strings.Join(batches, ","))
	}
	ex := set.Examples()
	start := time.Now()
	r, err := router.Train(ex, router.TrainOptions{Seed: *seed, Folds: *folds, Meta: router.Meta{
		Cheap: *cheap, Strong: *strong, Sources: strings.Join(sources, "; "), TrainedAt: time.Now().UTC().Format(time.RFC3339)}})
	if err != nil {
		return err
	}
	if err := r.WriteFile(*out); err != nil {
		return err
	}
	m := r.Meta
	fmt.Fprintf(e.stdout, "trained on %d prompts (%d from files, %d imported, %d shadow verdicts, %d batch outcomes); %.1f%% (by weight) needed the strong model\n",
		m.Examples, set.Count(router.FromFile), set.Count(router.FromImport), set.Count(router.FromShadow), set.Count(router.FromOutcome), 100*m.Positives)
	fmt.Fprintf(e.stdout, "cheap %s, strong %s; L2 strength %g chosen by %d-fold cross-validation (seed %d) in %s\n",
		m.Cheap, m.Strong, m.Lambda, *folds, *seed, time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(e.stdout, "score quantiles: 50%% %.3f, 80%% %.3f, 95%% %.3f\n", r.Quantile(0.5), r.Quantile(0.8), r.Quantile(0.95))
	fmt.Fprintf(e.stdout, "wrote %s; evaluate it on held-out labels with `cascadectl router eval`\n", *out)
	if bad > 0 {
		return &exitError{1, fmt.Errorf("%d bad row(s) skipped (listed above); the router was trained on the rest", bad)}
	}
	return nil
}

// pairOf picks the cheap and strong columns of a labels file (the first two
// model columns unless named) and returns the items that have a cheap label.
// With needStrong, items without a strong label are left out too.
func pairOf(s *labels.Set, cheap, strong string, needStrong bool) ([]router.Labelled, string, string, error) {
	if cheap == "" {
		if len(s.Models) < 1 {
			return nil, "", "", fmt.Errorf("%s: no model columns", s.Name)
		}
		cheap = s.Models[0]
	}
	if strong == "" {
		for _, m := range s.Models {
			if m != cheap {
				strong = m
				break
			}
		}
	}
	has := func(m string) bool {
		for _, x := range s.Models {
			if x == m {
				return true
			}
		}
		return false
	}
	if !has(cheap) {
		return nil, "", "", fmt.Errorf("%s: no labels for the cheap model %q (models: %s)", s.Name, cheap, strings.Join(s.Models, ", "))
	}
	if strong == "" || strong == cheap {
		return nil, "", "", fmt.Errorf("%s: name a strong model different from %q with --strong", s.Name, cheap)
	}
	var out []router.Labelled
	for _, it := range s.Items {
		c, ok := it.Correct[cheap]
		if !ok {
			continue
		}
		st, ok := it.Correct[strong]
		if !ok && needStrong {
			continue
		}
		if !ok {
			st = true // unknown: assume the strong model would have done it
		}
		out = append(out, router.Labelled{ID: it.ID, Prompt: it.Prompt, Outcome: router.Outcome{Cheap: c, Strong: st}})
	}
	return out, cheap, strong, nil
}

// addFromDB adds the labels of batches (fromDB) and says on stderr what it
// passed over. It returns the batches' cheap model and a name for the
// strong side.
func addFromDB(ctx context.Context, st *store.Store, stderr io.Writer, batches []string, set *router.Set, cheap, strong string) (string, string, error) {
	ls, err := st.LabelsFor(ctx, batches)
	if err != nil {
		return "", "", err
	}
	tries, err := st.FirstTries(ctx, batches)
	if err != nil {
		return "", "", err
	}
	if len(tries) == 0 && len(ls) == 0 {
		return "", "", &exitError{1, fmt.Errorf("no stored prompts with outcomes or labels in batch(es) %s (were they run with STORE_PROMPTS=false?)", strings.Join(batches, ", "))}
	}
	batchCheap, passedOver, unused := fromDB(set, tries, ls, cheap, strong)
	if unused > 0 {
		fmt.Fprintf(stderr, "note: %d prompt(s) have imported labels but none for the cheap model %q; name their cheap and strong models with --cheap and --strong to use them\n", unused, cheap)
	}
	if passedOver > 0 {
		fmt.Fprintf(stderr, "note: %d pass(es) of models other than the cheap model %s (first tries, shadow verdicts) passed over: they say nothing about it\n", passedOver, batchCheap)
	}
	return batchCheap, "the tier above", nil
}

// fromDB adds a batch's labels to set: imported labels of the cheap model
// for the batches' prompts, shadow verdicts, then the first tries. The
// batches' cheap model is cheap when their prompts were first tried on it,
// else the model the simple tier's prompts were first tried on most. A
// failure (a first try that failed, a verdict that the answer was not as
// good) on any model is a label that the cheap model was wrong: a model at
// least as strong failed. A pass is a label that the cheap model was right
// only when it is the cheap model's: a pass of another tier's first model
// (sim/large answering a complex prompt) says nothing about the cheap one.
// It returns the batches' cheap model, how many passes it passed over, and
// how many prompts have imported labels but none for cheap.
func fromDB(set *router.Set, tries []store.FirstTry, ls []store.StoredLabel, cheap, strong string) (batchCheap string, passedOver, unused int) {
	firsts, simpleFirsts := map[string]int{}, map[string]int{}
	for _, f := range tries {
		firsts[f.Model]++
		if f.Tier == string(prompt.TierSimple) {
			simpleFirsts[f.Model]++
		}
	}
	batchCheap = cheap
	if firsts[batchCheap] == 0 {
		batchCheap = mostCommon(simpleFirsts, mostCommon(firsts, "cheap tier"))
	}
	imported := map[string]map[string]bool{} // prompt -> model -> correct
	var order []string                       // imported prompts as ls first gives them: the examples' order decides the folds
	for _, l := range ls {
		switch l.Source {
		case store.LabelShadow:
			if l.Correct && l.Model != batchCheap {
				passedOver++
				continue
			}
			set.Add(router.Example{Prompt: l.Prompt, Strong: !l.Correct, Weight: 1}, router.FromShadow)
		case store.LabelImport:
			if imported[l.Prompt] == nil {
				imported[l.Prompt] = map[string]bool{}
				order = append(order, l.Prompt)
			}
			imported[l.Prompt][l.Model] = l.Correct
		}
	}
	for _, p := range order {
		byModel := imported[p]
		c, ok := byModel[cheap]
		if !ok {
			unused++
			continue
		}
		it := router.Labelled{Prompt: p, Outcome: router.Outcome{Cheap: c, Strong: true}}
		if s, ok := byModel[strong]; ok {
			it.Strong = s
		}
		set.Add(it.Example(), router.FromImport)
	}
	for _, f := range tries {
		if f.Passed && f.Model != batchCheap {
			passedOver++
			continue
		}
		set.AddOutcome(f.Prompt, f.Passed)
	}
	return batchCheap, passedOver, unused
}

func mostCommon(m map[string]int, fallback string) string {
	best, n := fallback, 0
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if m[k] > n {
			best, n = k, m[k]
		}
	}
	return best
}

func cmdRouterEval(_ context.Context, e *env, args []string) error {
	fs := newFlags("router eval", e)
	file := fs.String("labels", "", "labels file with both models' correctness (required)")
	path := fs.String("router", "", "router file (required)")
	format := fs.String("format", "text", "text or json")
	html := fs.String("html", "", "also write a self-contained HTML page with the curves")
	folds := fs.Int("folds", 5, "folds when the labels overlap the router's training data")
	seed := fs.Uint64("seed", 1, "seed of those folds")
	cheap := fs.String("cheap", "", "cheap model's column (default: the router's cheap model, else the first column)")
	strong := fs.String("strong", "", "strong model's column (default: the router's strong model, else the second column)")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *file == "" || *path == "" {
		return &exitError{2, fmt.Errorf("--labels and --router are required")}
	}
	if *format != "text" && *format != "json" {
		return &exitError{2, fmt.Errorf("--format: %q is not text or json", *format)}
	}
	if *folds < 2 {
		return &exitError{2, fmt.Errorf("--folds: must be >= 2, got %d", *folds)}
	}
	r, err := router.LoadFile(*path)
	if err != nil {
		return &exitError{2, err}
	}
	sets, bad, err := readLabelFiles(e, []string{*file}, labels.Auto)
	if err != nil {
		return err
	}
	s := sets[0]
	if *cheap == "" && *strong == "" && contains(s.Models, r.Meta.Cheap) && contains(s.Models, r.Meta.Strong) {
		*cheap, *strong = r.Meta.Cheap, r.Meta.Strong
	}
	items, c, st, err := pairOf(s, *cheap, *strong, true)
	if err != nil {
		return &exitError{2, err}
	}
	seen := 0
	for _, it := range items {
		if r.Trained(it.Prompt) {
			seen++
		}
	}
	var scores []float64
	var foldOf []int
	var heldOut string
	if seen > 0 {
		scores, foldOf, err = router.CrossValidate(items, router.TrainOptions{Features: r.Features, Seed: *seed}, *folds, *seed)
		if err != nil {
			return err
		}
		heldOut = fmt.Sprintf("%d-fold cross-validation of the router's training settings (seed %d): %d of these %d prompts were in its training data",
			*folds, *seed, seen, len(items))
	} else {
		scores = make([]float64, len(items))
		for i, it := range items {
			scores[i] = r.Score(it.Prompt)
		}
		heldOut = fmt.Sprintf("the router file as trained: none of these %d prompts were in its training data", len(items))
	}
	out := make([]router.Outcome, len(items))
	prompts := make([]string, len(items))
	for i, it := range items {
		out[i], prompts[i] = it.Outcome, it.Prompt
	}
	ev, err := router.Evaluate(out, foldOf, []string{"learned", "heuristic", "random"},
		[][]float64{scores, router.HeuristicScores(prompts), router.RandomScores(len(items))})
	if err != nil {
		return &exitError{1, err}
	}
	ev.Cheap, ev.Strong, ev.HeldOut = c, st, heldOut
	if *html != "" {
		if err := writeEvalHTML(*html, *file, ev); err != nil {
			return err
		}
	}
	if *format == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(ev); err != nil {
			return err
		}
	} else {
		writeEvalText(e.stdout, *file, ev)
	}
	if bad > 0 {
		return &exitError{1, fmt.Errorf("%d bad row(s) of %s skipped (listed above); evaluated on the rest", bad, *file)}
	}
	return nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func writeEvalText(w io.Writer, file string, ev *router.Evaluation) {
	fmt.Fprintf(w, "%s: %d prompts; cheap %s %.1f%%, strong %s %.1f%%; 95%% of strong = %.1f%%\n",
		file, ev.Prompts, ev.Cheap, 100*ev.CheapAccuracy, ev.Strong, 100*ev.StrongAccuracy, 100*ev.Target)
	fmt.Fprintf(w, "held out: %s\n\n", ev.HeldOut)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "method\tAPGR\tstrong share for 95%\tacc@20%\tacc@50%\tacc@80%\tAPGR per fold")
	for _, m := range ev.Methods {
		folds := make([]string, len(m.FoldAPGR))
		for i, f := range m.FoldAPGR {
			folds[i] = fmt.Sprintf("%.3f", f)
		}
		full := m.Full()
		fmt.Fprintf(tw, "%s\t%.3f\t%.1f%%\t%.1f%%\t%.1f%%\t%.1f%%\t%s\n", m.Name, m.APGR, 100*m.Share95,
			100*router.AccuracyAt(full, 0.2), 100*router.AccuracyAt(full, 0.5), 100*router.AccuracyAt(full, 0.8), strings.Join(folds, " "))
	}
	tw.Flush()
	fmt.Fprintln(w, "\naccuracy by strong share:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "share\t")
	for _, m := range ev.Methods {
		fmt.Fprintf(tw, "%s\t", m.Name)
	}
	fmt.Fprintln(tw)
	for i := 0; i < len(ev.Methods[0].Curve); i += 2 {
		fmt.Fprintf(tw, "%.0f%%\t", 100*ev.Methods[0].Curve[i].Share)
		for _, m := range ev.Methods {
			fmt.Fprintf(tw, "%.1f%%\t", 100*m.Curve[i].Accuracy)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

func writeEvalHTML(path, file string, ev *router.Evaluation) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = renderEvalHTML(f, file, ev)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
