package quality

import (
	"fmt"
	"math/rand/v2"
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

// refCheck is Gate.Check as it was before the one-pass phrase scan: each
// phrase looked for on its own. Check must give the same verdict and reason.
func refCheck(g Gate, promptWords int, response string) (bool, string) {
	if promptWords > g.longPromptWords {
		if n := CountWords(response); n < g.minResponseWords {
			return false, fmt.Sprintf("response too short: %d words for a %d-word prompt (minimum %d)", n, promptWords, g.minResponseWords)
		}
	}
	if IsBlank(response) {
		return false, "empty response"
	}
	if len(g.phrases) == 0 {
		return true, ""
	}
	if isASCII(response) {
		for _, p := range g.phrases {
			if containsFoldASCII(response, p) {
				return false, fmt.Sprintf("refusal phrase %q", p)
			}
		}
		return true, ""
	}
	lower := strings.ToLower(response)
	for _, p := range g.phrases {
		if strings.Contains(lower, p) {
			return false, fmt.Sprintf("refusal phrase %q", p)
		}
	}
	return true, ""
}

// checkGates are rule sets whose gates take the one-pass scan and ones that
// do not (an empty or non-ASCII phrase, more than 64 phrases).
func checkGates() []Gate {
	many := make([]string, 70)
	for i := range many {
		many[i] = fmt.Sprintf("phrase %d", i)
	}
	var gates []Gate
	for _, phrases := range [][]string{
		Default().RefusalPhrases,
		nil,
		{"as an ai", "i cannot", "As An AI", "i"},
		{"KELVIN \u212A", "an", "a"},
		{"", "i cannot"},
		{"\u212Aelvin", "i cannot"},
		{"İ", "ı", "ſ", "i cannot"},
		{"x"},
		{"aaa", "aa", "aab"},
		many,
	} {
		gates = append(gates, Rules{LongPromptWords: 20, MinResponseWords: 15, RefusalPhrases: phrases}.Compile())
	}
	return gates
}

func checkSameVerdict(t *testing.T, gates []Gate, response string) {
	t.Helper()
	for i, g := range gates {
		for _, words := range []int{3, 25} {
			ok, reason := g.Check(words, response)
			wantOK, wantReason := refCheck(g, words, response)
			if ok != wantOK || reason != wantReason {
				t.Fatalf("gate %d, %d prompt words, %q: Check = %v, %q; want %v, %q", i, words, response, ok, reason, wantOK, wantReason)
			}
		}
	}
}

var checkPieces = []string{"i cannot", "I CAN'T", "i'm unable to", "As an AI", "i don't have the ability", "i", "I", "a", "an",
	"as", " ", "  ", "\n", "\u00a0", "x", "phrase 69", "phrase 7", "aab", "kelvin \u212A", "KELVIN K", "\u212A", "İ", "ı", "ſ",
	"é", "can", "not", "'", "\u2019", ".", "ai", "aa", "word", "the answer is", "\x1c", "\xff"}

func TestCheckMatchesReference(t *testing.T) {
	t.Parallel()
	gates := checkGates()
	for _, p := range checkPieces {
		checkSameVerdict(t, gates, p)
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 20_000 {
		var b strings.Builder
		for range r.IntN(30) {
			b.WriteString(checkPieces[r.IntN(len(checkPieces))])
		}
		checkSameVerdict(t, gates, b.String())
	}
}

func FuzzCheckMatchesReference(f *testing.F) {
	for _, s := range []string{"Well, I CANNOT say.", "As an AI language model, no.", "Ça dépend: AS AN AI je réponds.", ""} {
		f.Add(s)
	}
	gates := checkGates()
	f.Fuzz(func(t *testing.T, s string) {
		checkSameVerdict(t, gates, s)
		var b strings.Builder
		for i := range len(s) {
			b.WriteString(checkPieces[int(s[i])%len(checkPieces)])
		}
		checkSameVerdict(t, gates, b.String())
	})
}

// benchAnswer is a simulated good answer of the length the worker's bench
// prompts get (no refusal phrase, so every phrase is looked for to the end).
var benchAnswer = "Here is a clear answer. The central point about plus is that it depends on the context in which it is used." +
	" In practice, Answer behaves predictably once the inputs are well defined. A common mistake is to treat briefly as one" +
	" big step, when it is really several smaller ones. In summary, start simple, measure, and refine."

func BenchmarkGateCheck(b *testing.B) {
	g := Default().Compile()
	for _, bc := range []struct{ name, s string }{
		{"bench_answer", benchAnswer}, {"long_answer", strings.Repeat(benchAnswer, 8)},
		{"refusal", "I cannot help with that as an AI."}, {"non_ascii", benchAnswer + " Ça dépend."},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				g.Check(7, bc.s)
			}
		})
		b.Run(bc.name+"_reference", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				refCheck(g, 7, bc.s)
			}
		})
	}
}
