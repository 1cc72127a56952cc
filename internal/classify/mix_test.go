package classify

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// TestSampleTierMix keeps the demo batch (testdata/prompts.jsonl at the
// repository root) a realistic mix under the default rules: 40-60% simple,
// 20-40% moderate, 10-30% complex.
func TestSampleTierMix(t *testing.T) {
	t.Parallel()
	f, err := os.Open(filepath.Join("..", "..", "testdata", "prompts.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	counts := map[prompt.Tier]int{}
	total := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct {
			Prompt string `json:"prompt"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d: %v", total+1, err)
		}
		tier, _ := Default().Classify(rec.Prompt)
		counts[tier]++
		total++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if total < 1200 {
		t.Fatalf("%d prompts, want at least 1200", total)
	}
	for _, b := range []struct {
		tier     prompt.Tier
		min, max float64
	}{{prompt.TierSimple, 0.40, 0.60}, {prompt.TierModerate, 0.20, 0.40}, {prompt.TierComplex, 0.10, 0.30}} {
		share := float64(counts[b.tier]) / float64(total)
		if share < b.min || share > b.max {
			t.Errorf("%s: %.1f%% of %d prompts, want %.0f-%.0f%%", b.tier, 100*share, total, 100*b.min, 100*b.max)
		}
	}
	t.Logf("tier mix of %d prompts: %v", total, counts)
}
