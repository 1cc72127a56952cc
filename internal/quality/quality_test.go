package quality

import (
	"strings"
	"testing"
)

func TestRulesExactlyTheArticle(t *testing.T) {
	t.Parallel()
	q := Default()
	words := func(n int) string { return strings.TrimSpace(strings.Repeat("word ", n)) }
	tests := []struct {
		name, prompt, response string
		ok                     bool
	}{
		{"20-word prompt, 1-word answer", words(20), "Yes.", true},
		{"21-word prompt, 14-word answer", words(21), words(14), false},
		{"21-word prompt, 15-word answer", words(21), words(15), true},
		{"words split on any whitespace", words(21), strings.ReplaceAll(words(15), " ", "\n\t"), true},
		{"empty", "hi", "", false},
		{"whitespace", "hi", " \u00a0\n", false},
		{"python whitespace \\x1c", "hi", "\x1c\x1f", false},
		{"i cannot", "hi", "Well, I CANNOT say.", false},
		{"i can't", "hi", "i can't", false},
		{"i'm unable to", "hi", "I'm unable to answer.", false},
		{"as an ai", "hi", "As an AI language model, no.", false},
		{"substring, as in Python", "hi", "It was such a plan: has an aim.", false}, // "has an aim" contains "as an ai"
		{"i don't have the ability", "hi", "I don't have the ability.", false},
		{"curly apostrophe is not the article's phrase", "hi", "I can\u2019t.", true},
		{"non-ASCII response", "hi", "Ça dépend: AS AN AI je réponds.", false},
		{"non-ASCII fine", "hi", "Ça dépend du contexte.", true},
		{"short prompt, short answer", "What is 2+2?", "4", true},
	}
	for _, tt := range tests {
		if got, reason := q.Check(tt.prompt, tt.response); got != tt.ok || (got == (reason != "")) {
			t.Errorf("%s: Check = %v, %q; want %v", tt.name, got, reason, tt.ok)
		}
	}
	if err := (Rules{LongPromptWords: -1}).Validate(); err == nil || !strings.HasPrefix(err.Error(), "quality.long_prompt_words") {
		t.Errorf("Validate: %v", err)
	}
	if err := (Rules{RefusalPhrases: []string{"ok", " "}}).Validate(); err == nil || !strings.HasPrefix(err.Error(), "quality.refusal_phrases[1]") {
		t.Errorf("Validate: %v", err)
	}
}
