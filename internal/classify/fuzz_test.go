package classify

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// reference is a deliberately plain implementation of the same rules, built
// on Go's regexp. Go's \b is ASCII-only, so the boundaries are spelled out
// with Unicode classes: a keyword must be preceded by the start of the text
// or a non-word rune, and followed by a non-word rune or the end. Python's
// str.lower() is strings.ToLower plus its one multi-rune mapping (İ); the
// rule sets used here contain no σ, so Final_Sigma cannot change a result.
type reference struct {
	rules    Rules
	complex  [][]*regexp.Regexp
	moderate [][]*regexp.Regexp
}

const refNonWord = `[^\p{L}\p{N}_]`

func newReference(r Rules) *reference {
	compile := func(list []string) [][]*regexp.Regexp {
		var out [][]*regexp.Regexp
		for _, entry := range list {
			var alts []*regexp.Regexp
			for _, alt := range strings.Split(entry, "|") {
				alts = append(alts, regexp.MustCompile(`(?:^|`+refNonWord+`)`+regexp.QuoteMeta(strings.ToLower(alt))+`(?:`+refNonWord+`|$)`))
			}
			out = append(out, alts)
		}
		return out
	}
	return &reference{rules: r, complex: compile(r.ComplexKeywords), moderate: compile(r.ModerateKeywords)}
}

// pythonSpace is str.isspace(), listed independently of isSpace.
func pythonSpace(r rune) bool {
	return strings.ContainsRune("\t\n\v\f\r\x1c\x1d\x1e\x1f \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000", r)
}

func (ref *reference) classify(text string) (prompt.Tier, prompt.Signals) {
	wc := len(strings.FieldsFunc(text, pythonSpace))
	lower := strings.ToLower(strings.ReplaceAll(text, "İ", "i\u0307"))
	hits := func(list [][]*regexp.Regexp) int {
		n := 0
		for _, alts := range list {
			for _, re := range alts {
				if re.MatchString(lower) {
					n++
					break
				}
			}
		}
		return n
	}
	s := prompt.Signals{WordCount: wc, ComplexHits: hits(ref.complex), ModerateHits: hits(ref.moderate)}
	r := ref.rules
	switch {
	case s.ComplexHits >= r.ComplexMinHits || (s.ComplexHits >= r.ComplexLongHits && s.WordCount > r.ComplexLongWords):
		return prompt.TierComplex, s
	case s.ModerateHits >= r.ModerateMinHits || s.WordCount > r.ModerateLongWords:
		return prompt.TierModerate, s
	}
	return prompt.TierSimple, s
}

// fuzzRules exercise what the defaults do not: multi-word keywords, digits,
// non-ASCII letters, and a keyword shared by both lists.
var fuzzRules = Rules{
	ComplexKeywords:   []string{"trade off|trade-off", "x_y", "naïve", "c3po", "straße", "design"},
	ModerateKeywords:  []string{"design", "a b c", "k8s", "中文"},
	ComplexMinHits:    2,
	ComplexLongHits:   1,
	ComplexLongWords:  8,
	ModerateMinHits:   1,
	ModerateLongWords: 4,
}

func FuzzClassify(f *testing.F) {
	for _, s := range []string{
		"", "What is the capital of France?",
		"Explain how gradient descent works with momentum",
		"Analyze the tradeoffs between LORA and full fine-tuning for a 70B parameter model, compare memory usage and downstream task performance",
		"trade-off trade-offs tradeoff", "write_code redesign writer explained", "Analyze, (debug)",
		"a\u00a0b\u3000c\x1cd", "DESİGN İ", "\xffwrite\xfe", "a b c trade off x_y", "K8S \u212a8s NAÏVE STRASSE",
		strings.Repeat("word ", 51) + "design", "trade trade-off", "中文 write中文",
	} {
		f.Add(s)
	}
	def := newReference(DefaultRules())
	custom, err := New(fuzzRules)
	if err != nil {
		f.Fatal(err)
	}
	customRef := newReference(fuzzRules)
	f.Fuzz(func(t *testing.T, text string) {
		if strings.ContainsAny(text, "Σσς") {
			t.Skip("the reference does not implement Final_Sigma; golden.jsonl covers it")
		}
		for _, c := range []struct {
			name string
			got  *Classifier
			want *reference
		}{{"default", Default(), def}, {"custom", custom, customRef}} {
			gt, gs := c.got.Classify(text)
			wt, ws := c.want.classify(text)
			if gt != wt || gs != ws {
				t.Fatalf("%s rules: Classify(%+q) = %s %+v, reference says %s %+v", c.name, text, gt, gs, wt, ws)
			}
		}
		if !utf8.ValidString(text) {
			return
		}
		// Case does not matter: upper-casing ASCII letters changes nothing.
		up := strings.Map(func(r rune) rune {
			if 'a' <= r && r <= 'z' {
				return r - 'a' + 'A'
			}
			return r
		}, text)
		if t1, s1 := Default().Classify(up); t1 != Default().tierOf(text) || s1 != Default().signalsOf(text) {
			t.Fatalf("Classify(%+q) = %s %+v differs from Classify(%+q)", up, t1, s1, text)
		}
	})
}

func (c *Classifier) tierOf(s string) prompt.Tier       { t, _ := c.Classify(s); return t }
func (c *Classifier) signalsOf(s string) prompt.Signals { _, sig := c.Classify(s); return sig }
