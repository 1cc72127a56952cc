package classify

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// TestPythonGolden checks the classifier against answers that Python 3 gave
// for the article's own classify_prompt (and for configured keywords compiled
// as \b + re.escape(alt) + \b). testdata/golden.py wrote testdata/golden.jsonl;
// its texts mix keywords, punctuation, every kind of Unicode whitespace, and
// the characters where str.lower() and re's \w need care.
func TestPythonGolden(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/golden_rules.json")
	if err != nil {
		t.Fatal(err)
	}
	var custom Rules
	if err := yaml.Unmarshal(raw, &custom); err != nil { // JSON is YAML: this also checks the yaml tags
		t.Fatal(err)
	}
	classifiers := map[string]*Classifier{"default": Default()}
	if classifiers["custom"], err = New(custom); err != nil {
		t.Fatal(err)
	}

	f, err := os.Open("testdata/golden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		var g struct {
			Rules string      `json:"rules"`
			Text  string      `json:"text"`
			Tier  prompt.Tier `json:"tier"`
			prompt.Signals
		}
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatal(err)
		}
		n++
		tier, sig := classifiers[g.Rules].Classify(g.Text)
		if tier != g.Tier || sig != g.Signals {
			t.Errorf("%s rules: Classify(%+q) = %s %+v, Python says %s %+v", g.Rules, g.Text, tier, sig, g.Tier, g.Signals)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 6000 {
		t.Fatalf("read %d golden cases, want at least 6000", n)
	}
}
