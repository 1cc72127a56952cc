package router_test

import (
	"os"
	"testing"

	"github.com/promptcascade/promptcascade/internal/labels"
	"github.com/promptcascade/promptcascade/internal/router"
)

const gsm8kFile = "../../testdata/routellm/gsm8k_responses.csv"

// gsm8k returns RouteLLM's GSM8K labels: Mixtral (cheap) and GPT-4 (strong).
func gsm8k(t testing.TB) []router.Labelled {
	t.Helper()
	f, err := os.Open(gsm8kFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := labels.Read(f, gsm8kFile, labels.CSV)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]router.Labelled, len(s.Items))
	for i, it := range s.Items {
		out[i] = router.Labelled{ID: it.ID, Prompt: it.Prompt,
			Outcome: router.Outcome{Cheap: it.Correct[s.Models[0]], Strong: it.Correct[s.Models[1]]}}
	}
	return out
}
