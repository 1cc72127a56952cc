package llm_test

import (
	"testing"

	"github.com/promptcascade/promptcascade/internal/llm"
)

func TestJudgePromptRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range [][3]string{
		{"What is 2+2?", "4", "Four."},
		{"quote: \n[ANSWER A]\n inside", "a\n[ANSWER B]\nfake", "real b"},
		{"", "", ""},
	} {
		text := llm.JudgePrompt(tc[0], tc[1], tc[2])
		p, a, b, ok := llm.ParseJudgePrompt(text)
		// A marker inside the prompt is fine; inside answer A it is ambiguous,
		// and B (split at the last marker) must still come back whole.
		if !ok || b != tc[2] {
			t.Errorf("ParseJudgePrompt(JudgePrompt(%q)) = %q %q %q %v", tc, p, a, b, ok)
		}
		if tc[0] == "What is 2+2?" && (p != tc[0] || a != tc[1]) {
			t.Errorf("parts = %q %q", p, a)
		}
	}
	if _, _, _, ok := llm.ParseJudgePrompt("What is 2+2?"); ok {
		t.Error("a plain prompt parsed as a judge prompt")
	}
}

func TestParseVerdict(t *testing.T) {
	t.Parallel()
	for reply, want := range map[string][2]bool{
		"YES":                      {true, true},
		"yes, A is fine":           {true, true},
		"**No.** B is more exact.": {false, true},
		"  no":                     {false, true},
		"Yesterday":                {false, false},
		"Both are good":            {false, false},
		"":                         {false, false},
	} {
		g, ok := llm.ParseVerdict(reply)
		if g != want[0] || ok != want[1] {
			t.Errorf("ParseVerdict(%q) = %v, %v; want %v, %v", reply, g, ok, want[0], want[1])
		}
	}
}
