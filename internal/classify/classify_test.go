package classify

import (
	"strings"
	"testing"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// words returns n space-separated filler words that hit no keyword.
func words(n int) string {
	return strings.TrimSpace(strings.Repeat("word ", n))
}

func TestArticleExamples(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		want prompt.Tier
	}{
		{"What is the capital of France?", prompt.TierSimple},
		{"Explain how gradient descent works with momentum", prompt.TierModerate},
		{"Analyze the tradeoffs between LORA and full fine-tuning for a 70B parameter model, compare memory usage and downstream task performance", prompt.TierComplex},
		// The router example further down the article.
		{"Analyze the tradeoffs between vector databases and traditional full-text search for a RAG pipeline handling 10M documents", prompt.TierComplex},
	}
	for _, tt := range tests {
		if got, sig := Default().Classify(tt.text); got != tt.want {
			t.Errorf("Classify(%q) = %s %+v, want %s", tt.text, got, sig, tt.want)
		}
	}
}

func TestClassifyRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		text     string
		want     prompt.Tier
		words    int
		complex  int
		moderate int
	}{
		// Length thresholds: "> 30" and "> 50" are strict.
		{"30 words is simple", words(30), prompt.TierSimple, 30, 0, 0},
		{"31 words is moderate", words(31), prompt.TierModerate, 31, 0, 0},
		{"50 words is moderate", words(50), prompt.TierModerate, 50, 0, 0},
		{"51 words is still moderate without complex hits", words(51), prompt.TierModerate, 51, 0, 0},
		{"one complex hit in 50 words is moderate", "design " + words(49), prompt.TierModerate, 50, 1, 0},
		{"one complex hit in 51 words is complex", "design " + words(50), prompt.TierComplex, 51, 1, 0},
		{"one complex hit, short", "Debug this", prompt.TierSimple, 2, 1, 0},
		{"one complex hit, 31 words", "debug " + words(30), prompt.TierModerate, 31, 1, 0},
		{"two complex hits, short", "compare and optimize", prompt.TierComplex, 3, 2, 0},
		{"two complex hits beat moderate", "write and debug and refactor", prompt.TierComplex, 5, 2, 1},
		{"one moderate hit", "write a poem", prompt.TierModerate, 3, 0, 1},
		{"one moderate hit and one complex hit", "write a design doc", prompt.TierModerate, 4, 1, 1},
		{"no hits", "hello there", prompt.TierSimple, 2, 0, 0},
		{"empty", "", prompt.TierSimple, 0, 0, 0},
		{"whitespace only", " \t\n ", prompt.TierSimple, 0, 0, 0},

		// Every keyword of the default lists.
		{"analyze", "analyze", prompt.TierSimple, 1, 1, 0},
		{"compare", "compare", prompt.TierSimple, 1, 1, 0},
		{"design", "design", prompt.TierSimple, 1, 1, 0},
		{"architect", "architect", prompt.TierSimple, 1, 1, 0},
		{"refactor", "refactor", prompt.TierSimple, 1, 1, 0},
		{"debug", "debug", prompt.TierSimple, 1, 1, 0},
		{"optimize", "optimize", prompt.TierSimple, 1, 1, 0},
		{"prove", "prove", prompt.TierSimple, 1, 1, 0},
		{"implication", "implication", prompt.TierSimple, 1, 1, 0},
		{"implications", "implications", prompt.TierSimple, 1, 1, 0},
		{"explain", "explain", prompt.TierModerate, 1, 0, 1},
		{"write", "write", prompt.TierModerate, 1, 0, 1},
		{"implement", "implement", prompt.TierModerate, 1, 0, 1},
		{"create", "create", prompt.TierModerate, 1, 0, 1},
		{"summarize", "summarize", prompt.TierModerate, 1, 0, 1},
		{"translate", "translate", prompt.TierModerate, 1, 0, 1},
		{"all ten complex", "analyze compare design architect refactor debug optimize prove tradeoffs implications", prompt.TierComplex, 10, 10, 0},
		{"all six moderate", "explain write implement create summarize translate", prompt.TierModerate, 6, 0, 6},

		// trade-?offs? is one signal with four spellings.
		{"tradeoff", "the tradeoff", prompt.TierSimple, 2, 1, 0},
		{"tradeoffs", "the tradeoffs", prompt.TierSimple, 2, 1, 0},
		{"trade-off", "the trade-off", prompt.TierSimple, 2, 1, 0},
		{"trade-offs", "the trade-offs", prompt.TierSimple, 2, 1, 0},
		{"all spellings count once", "tradeoff tradeoffs trade-off trade-offs", prompt.TierSimple, 4, 1, 0},
		{"trade--off is not a spelling", "trade--off", prompt.TierSimple, 1, 0, 0},
		{"trade off is not a spelling", "trade off", prompt.TierSimple, 2, 0, 0},
		{"trade_off is one word", "trade_off", prompt.TierSimple, 1, 0, 0},
		{"tradeoffss", "tradeoffss", prompt.TierSimple, 1, 0, 0},
		{"pre-tradeoff has a boundary", "pre-tradeoff", prompt.TierSimple, 1, 1, 0},
		{"trade-offs with punctuation", "(trade-offs).", prompt.TierSimple, 1, 1, 0},
		{"implications plural is the same signal", "implication implications", prompt.TierSimple, 2, 1, 0},

		// Repeats count once.
		{"repeated keyword", "design design design design", prompt.TierSimple, 4, 1, 0},
		{"repeated moderate keyword", "write write", prompt.TierModerate, 2, 0, 1},
		{"repeated keyword, 51 words", strings.Repeat("debug ", 51), prompt.TierComplex, 51, 1, 0},

		// Punctuation and case.
		{"comma", "Analyze, then compare.", prompt.TierComplex, 3, 2, 0},
		{"parentheses", "(debug)", prompt.TierSimple, 1, 1, 0},
		{"quotes", `"refactor"`, prompt.TierSimple, 1, 1, 0},
		{"hyphen joins words but is a boundary", "design-compare", prompt.TierComplex, 1, 2, 0},
		{"slash", "write/explain", prompt.TierModerate, 1, 0, 2},
		{"upper case", "ANALYZE AND COMPARE", prompt.TierComplex, 3, 2, 0},
		{"mixed case", "AnAlYzE", prompt.TierSimple, 1, 1, 0},
		{"title case", "Write", prompt.TierModerate, 1, 0, 1},

		// Keywords inside longer words do not match.
		{"redesign", "redesign", prompt.TierSimple, 1, 0, 0},
		{"writer", "writer", prompt.TierSimple, 1, 0, 0},
		{"explained", "explained", prompt.TierSimple, 1, 0, 0},
		{"rewrite", "rewrite", prompt.TierSimple, 1, 0, 0},
		{"designs", "designs", prompt.TierSimple, 1, 0, 0},
		{"debugger", "debugger", prompt.TierSimple, 1, 0, 0},
		{"implicational", "implicational", prompt.TierSimple, 1, 0, 0},
		{"digits are word characters", "design2 2debug", prompt.TierSimple, 2, 0, 0},
		{"underscore joins words", "write_code", prompt.TierSimple, 1, 0, 0},
		{"leading underscore", "_write", prompt.TierSimple, 1, 0, 0},
		{"letter with accent is a word character", "désign designé", prompt.TierSimple, 2, 0, 0},
		{"CJK is a word character", "write中文", prompt.TierSimple, 1, 0, 0},
		{"emoji is not a word character", "write🙂", prompt.TierModerate, 1, 0, 1},
		{"combining mark is not a word character", "debug\u0301", prompt.TierSimple, 1, 1, 0},
		{"soft hyphen is not a word character", "deb\u00adug", prompt.TierSimple, 1, 0, 0},

		// Unicode whitespace, as str.split() sees it.
		{"tab and newlines", "a\tb\nc\r\nd", prompt.TierSimple, 4, 0, 0},
		{"no-break space splits", "a\u00a0b", prompt.TierSimple, 2, 0, 0},
		{"ideographic space splits", "a\u3000b", prompt.TierSimple, 2, 0, 0},
		{"line separator splits", "a\u2028b", prompt.TierSimple, 2, 0, 0},
		{"NEL splits", "a\u0085b", prompt.TierSimple, 2, 0, 0},
		{"narrow no-break space splits", "a\u202fb", prompt.TierSimple, 2, 0, 0},
		{"en quad to hair space split", "a\u2000b\u200ac", prompt.TierSimple, 3, 0, 0},
		{"ASCII separators 1C-1F split", "a\x1cb\x1dc\x1ed\x1ff", prompt.TierSimple, 5, 0, 0},
		{"zero width space does not split", "a\u200bb", prompt.TierSimple, 1, 0, 0},
		{"Mongolian vowel separator does not split", "a\u180eb", prompt.TierSimple, 1, 0, 0},
		{"BOM does not split", "a\ufeffb", prompt.TierSimple, 1, 0, 0},
		{"runs of whitespace are one separator", "  a \u3000\t b  ", prompt.TierSimple, 2, 0, 0},
		{"31 words split by no-break spaces", strings.Repeat("x\u00a0", 31), prompt.TierModerate, 31, 0, 0},
		{"keyword between Unicode spaces", "\u3000write\u2029", prompt.TierModerate, 1, 0, 1},

		// str.lower() specifics.
		{"Kelvin sign lowercases to k", "ANAL\u212aYZE", prompt.TierSimple, 1, 0, 0}, // no k in analyze
		{"dotted capital I becomes i and a combining dot", "DESİGN", prompt.TierSimple, 1, 0, 0},
		{"dotless i is not i", "ıMPLEMENT", prompt.TierSimple, 1, 0, 0},
		{"dotted capital I ends a word", "İ write", prompt.TierModerate, 2, 0, 1},

		// Invalid UTF-8 decodes to U+FFFD, which is not a word character.
		{"invalid UTF-8 is a boundary", "\xffwrite\xfe", prompt.TierModerate, 1, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, sig := Default().Classify(tt.text)
			want := prompt.Signals{WordCount: tt.words, ComplexHits: tt.complex, ModerateHits: tt.moderate}
			if got != tt.want || sig != want {
				t.Errorf("Classify(%q) = %s %+v, want %s %+v", tt.text, got, sig, tt.want, want)
			}
		})
	}
}

func TestCustomRules(t *testing.T) {
	t.Parallel()
	r := Rules{
		ComplexKeywords:   []string{"Prove", "trade off|trade-off", "ΟΔΟΣ", "k8s"},
		ModerateKeywords:  []string{"list", "prove"},
		ComplexMinHits:    3,
		ComplexLongHits:   0,
		ComplexLongWords:  10,
		ModerateMinHits:   2,
		ModerateLongWords: 5,
	}
	c, err := New(r)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		text     string
		want     prompt.Tier
		complex  int
		moderate int
	}{
		{"prove it", prompt.TierSimple, 1, 1},                                  // one keyword in both lists
		{"prove it and list them", prompt.TierModerate, 1, 2},                  // moderate_min_hits 2
		{"a b c d e f", prompt.TierModerate, 0, 0},                             // > 5 words
		{"a b c d e f g h i j k", prompt.TierComplex, 0, 0},                    // > 10 words and complex_long_hits 0
		{"PROVE the trade off on k8s", prompt.TierComplex, 3, 1},               // multi-word keyword
		{"prove the trade  off on k8s", prompt.TierModerate, 2, 1},             // two spaces: no match; 6 words
		{"trade-off, trade off", prompt.TierSimple, 1, 0},                      // alternatives count once
		{"ΟΔΟΣ ΟΔΟΣ.", prompt.TierSimple, 1, 0},                                // final sigma: οδος
		{"ΟΔΟΣΑ", prompt.TierSimple, 0, 0},                                     // not final: οδοσα
		{"K8S", prompt.TierSimple, 1, 0},                                       // case-insensitive
		{"\u212a8s", prompt.TierSimple, 1, 0},                                  // Kelvin sign lowercases to k
		{"the trade offer", prompt.TierSimple, 0, 0},                           // ends inside a word
		{"list prove trade off ΟΔΟΣ k8s", prompt.TierComplex, 4, 2},            // everything
		{"trade trade off", prompt.TierSimple, 1, 0},                           // restart inside a partial match
		{"trade-trade-off", prompt.TierSimple, 1, 0},                           // overlapping starts
		{"προσοχή ΟΔΟΣ", prompt.TierSimple, 1, 0},                              // σ elsewhere
		{strings.Repeat("list ", 3), prompt.TierSimple, 0, 1},                  // repeats count once
		{"LIST PROVE", prompt.TierModerate, 1, 2},                              // keywords were lowercased
		{"listprove", prompt.TierSimple, 0, 0},                                 // no boundary
		{"(k8s)", prompt.TierSimple, 1, 0},                                     // punctuation
		{"k8s_x", prompt.TierSimple, 0, 0},                                     // underscore
		{"trade\toff", prompt.TierSimple, 0, 0},                                // separator must be exact
		{"trade off trade-off k8s ΟΔΟΣ prove list", prompt.TierComplex, 4, 2},  // 7 words: complex_min_hits reached
		{"x trade off", prompt.TierSimple, 1, 0},                               // match not at text start
		{"trade off", prompt.TierSimple, 1, 0},                                 // match ends at text end
		{"trade offk8s", prompt.TierSimple, 0, 0},                              // digits/letters join
		{"tradeoff", prompt.TierSimple, 0, 0},                                  // not an alternative here
		{"prove" + strings.Repeat(" x", 10), prompt.TierComplex, 1, 1},         // 11 words
		{"k8s" + strings.Repeat(" x", 9), prompt.TierModerate, 1, 0},           // 10 words: not > 10
		{"ΟΔΟΣ" + strings.Repeat("\u00a0x", 10), prompt.TierComplex, 1, 0},     // NBSP splits words
		{"trade off" + strings.Repeat("\u200bx", 10), prompt.TierSimple, 1, 0}, // ZWSP: one word with "off", yet a \b
	}
	for _, tt := range tests {
		got, sig := c.Classify(tt.text)
		if got != tt.want || sig.ComplexHits != tt.complex || sig.ModerateHits != tt.moderate {
			t.Errorf("Classify(%q) = %s %+v, want %s complex=%d moderate=%d", tt.text, got, sig, tt.want, tt.complex, tt.moderate)
		}
	}
}

func TestManyKeywords(t *testing.T) {
	t.Parallel()
	r := DefaultRules()
	r.ModerateKeywords = nil
	for i := range 300 { // more than the 256 signals tracked on the stack
		r.ModerateKeywords = append(r.ModerateKeywords, "kw"+strings.Repeat("x", i))
	}
	c, err := New(r)
	if err != nil {
		t.Fatal(err)
	}
	last := "kw" + strings.Repeat("x", 299)
	_, sig := c.Classify("kw " + last + " " + last + " design")
	if sig.ModerateHits != 2 || sig.ComplexHits != 1 {
		t.Errorf("signals = %+v, want 2 moderate and 1 complex hit", sig)
	}
}

func TestNewCopiesRules(t *testing.T) {
	t.Parallel()
	r := DefaultRules()
	c, err := New(r)
	if err != nil {
		t.Fatal(err)
	}
	r.ComplexKeywords[0] = "changed"
	if got := c.Rules().ComplexKeywords[0]; got != "analyze" {
		t.Errorf("Rules().ComplexKeywords[0] = %q after the caller changed its slice", got)
	}
	c.Rules().ModerateKeywords[0] = "changed"
	if got := c.Rules().ModerateKeywords[0]; got != "explain" {
		t.Errorf("Rules() returned the classifier's own slice")
	}
	if first, second := Default(), Default(); first != second {
		t.Error("Default() built a new classifier twice")
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	if err := DefaultRules().Validate(); err != nil {
		t.Fatalf("DefaultRules().Validate() = %v", err)
	}
	tests := []struct {
		name   string
		modify func(*Rules)
		want   string
	}{
		{"complex_min_hits", func(r *Rules) { r.ComplexMinHits = 0 }, "classifier.complex_min_hits: must be >= 1, got 0"},
		{"complex_long_hits", func(r *Rules) { r.ComplexLongHits = -1 }, "classifier.complex_long_hits: must be >= 0, got -1"},
		{"complex_long_words", func(r *Rules) { r.ComplexLongWords = -5 }, "classifier.complex_long_words: must be >= 0, got -5"},
		{"moderate_min_hits", func(r *Rules) { r.ModerateMinHits = -2 }, "classifier.moderate_min_hits: must be >= 1, got -2"},
		{"moderate_long_words", func(r *Rules) { r.ModerateLongWords = -1 }, "classifier.moderate_long_words: must be >= 0, got -1"},
		{"empty keyword", func(r *Rules) { r.ComplexKeywords[2] = " " }, "classifier.complex_keywords[2]: empty keyword"},
		{"empty alternative", func(r *Rules) { r.ModerateKeywords[1] = "write||wrote" }, `classifier.moderate_keywords[1]: empty alternative in "write||wrote"`},
		{"leading punctuation", func(r *Rules) { r.ModerateKeywords[0] = "-x" }, `classifier.moderate_keywords[0]: "-x" must start and end with a letter, digit or underscore`},
		{"trailing punctuation", func(r *Rules) { r.ComplexKeywords[0] = "c++" }, `classifier.complex_keywords[0]: "c++" must start and end`},
		{"trailing space", func(r *Rules) { r.ComplexKeywords[0] = "design " }, `classifier.complex_keywords[0]: "design " must start and end`},
		{"duplicate", func(r *Rules) { r.ComplexKeywords = append(r.ComplexKeywords, "Design") }, `classifier.complex_keywords[10]: "Design" is already listed in classifier.complex_keywords[2]`},
		{"duplicate alternative", func(r *Rules) { r.ModerateKeywords[0] = "a|b|a" }, `classifier.moderate_keywords[0]: "a" is listed twice`},
		{"invalid UTF-8", func(r *Rules) { r.ModerateKeywords[0] = "a\xffb" }, `classifier.moderate_keywords[0]: "a\xffb" is not valid UTF-8`},
		{"too many words", func(r *Rules) { r.ModerateKeywords[0] = strings.Repeat("a ", 17) + "a" }, "has 18 words, more than 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := DefaultRules()
			tt.modify(&r)
			err := r.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want it to contain %q", err, tt.want)
			}
			if c, err := New(r); err == nil || c != nil {
				t.Errorf("New() = %v, %v; want an error", c, err)
			}
		})
	}

	// Every problem is reported, not just the first.
	r := Rules{ComplexKeywords: []string{""}}
	err := r.Validate()
	for _, key := range []string{"complex_keywords[0]", "complex_min_hits", "moderate_min_hits"} {
		if err == nil || !strings.Contains(err.Error(), "classifier."+key) {
			t.Errorf("Validate() = %v, want it to name classifier.%s", err, key)
		}
	}
	// Empty keyword lists are allowed: only the length rules then apply.
	r = DefaultRules()
	r.ComplexKeywords, r.ModerateKeywords = nil, nil
	c, err := New(r)
	if err != nil {
		t.Fatal(err)
	}
	if tier, _ := c.Classify("design and write " + words(27)); tier != prompt.TierSimple {
		t.Errorf("tier = %s with no keywords, want simple", tier)
	}
}
