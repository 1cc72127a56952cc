package classify

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Rules are the classifier's keyword lists and thresholds. They are read from
// the "classifier" section of the routes file; DefaultRules is the reference
// article's heuristic.
//
// A prompt is complex when it hits at least ComplexMinHits complex keywords,
// or at least ComplexLongHits of them and has more than ComplexLongWords
// words. Otherwise it is moderate when it hits at least ModerateMinHits
// moderate keywords or has more than ModerateLongWords words. Otherwise it is
// simple.
//
// Each entry of a keyword list is one signal and counts at most once per
// prompt, however often it occurs. An entry may list alternatives separated by
// "|" ("tradeoff|tradeoffs|trade-off|trade-offs"); any of them hits the signal.
// An alternative matches as a whole word, case-insensitively, exactly as
// Python's re.search(r"\b" + re.escape(alt) + r"\b", prompt.lower()) does: a
// word character is a Unicode letter, a Unicode number or "_". So "design"
// does not match "redesign" or "design_doc". Alternatives are lowercased when
// the classifier is built, and each must start and end with a word character.
type Rules struct {
	ComplexKeywords   []string `yaml:"complex_keywords"`
	ModerateKeywords  []string `yaml:"moderate_keywords"`
	ComplexMinHits    int      `yaml:"complex_min_hits"`
	ComplexLongHits   int      `yaml:"complex_long_hits"`
	ComplexLongWords  int      `yaml:"complex_long_words"`
	ModerateMinHits   int      `yaml:"moderate_min_hits"`
	ModerateLongWords int      `yaml:"moderate_long_words"`
}

// DefaultRules returns the reference article's classify_prompt heuristic. Each
// call returns fresh slices, so callers may modify the result.
func DefaultRules() Rules {
	return Rules{
		ComplexKeywords: []string{
			"analyze", "compare", "design", "architect", "refactor",
			"debug", "optimize", "prove",
			"tradeoff|tradeoffs|trade-off|trade-offs", // \btrade-?offs?\b
			"implication|implications",                // \bimplications?\b
		},
		ModerateKeywords: []string{
			"explain", "write", "implement", "create", "summarize", "translate",
		},
		ComplexMinHits:    2,
		ComplexLongHits:   1,
		ComplexLongWords:  50,
		ModerateMinHits:   1,
		ModerateLongWords: 30,
	}
}

// keyPrefix is the path of the rules in the routes file; Validate names keys
// with it so that a user can find the bad value.
const keyPrefix = "classifier."

// Validate reports every problem with r, each naming its YAML key, for
// example "classifier.complex_min_hits: must be >= 1, got 0". It returns nil
// when r can be used.
func (r Rules) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", keyPrefix, key, fmt.Sprintf(format, args...)))
	}
	errs = append(errs, validateKeywords("complex_keywords", r.ComplexKeywords)...)
	errs = append(errs, validateKeywords("moderate_keywords", r.ModerateKeywords)...)
	if r.ComplexMinHits < 1 {
		bad("complex_min_hits", "must be >= 1, got %d", r.ComplexMinHits)
	}
	if r.ComplexLongHits < 0 {
		bad("complex_long_hits", "must be >= 0, got %d", r.ComplexLongHits)
	}
	if r.ComplexLongWords < 0 {
		bad("complex_long_words", "must be >= 0, got %d", r.ComplexLongWords)
	}
	if r.ModerateMinHits < 1 {
		bad("moderate_min_hits", "must be >= 1, got %d", r.ModerateMinHits)
	}
	if r.ModerateLongWords < 0 {
		bad("moderate_long_words", "must be >= 0, got %d", r.ModerateLongWords)
	}
	return errors.Join(errs...)
}

// maxWords is the most words (runs of word characters) one keyword
// alternative may have.
const maxWords = 16

// validateKeywords checks one keyword list: no empty entries or
// alternatives, every alternative starts and ends with a word character, and
// no alternative is listed twice in the same list.
func validateKeywords(key string, list []string) []error {
	var errs []error
	first := make(map[string]int) // lowered alternative -> entry index
	for i, entry := range list {
		k := fmt.Sprintf("%s%s[%d]", keyPrefix, key, i)
		if strings.TrimSpace(entry) == "" {
			errs = append(errs, fmt.Errorf("%s: empty keyword", k))
			continue
		}
		for _, alt := range strings.Split(entry, "|") {
			if alt == "" {
				errs = append(errs, fmt.Errorf("%s: empty alternative in %q", k, entry))
				continue
			}
			if !utf8.ValidString(alt) {
				errs = append(errs, fmt.Errorf("%s: %q is not valid UTF-8", k, alt))
				continue
			}
			low := lowerString(alt)
			if !startsAndEndsWithWordChar(low) {
				errs = append(errs, fmt.Errorf("%s: %q must start and end with a letter, digit or underscore", k, alt))
				continue
			}
			if n := wordStarts(low); n > maxWords {
				errs = append(errs, fmt.Errorf("%s: %q has %d words, more than %d", k, alt, n, maxWords))
				continue
			}
			if j, dup := first[low]; dup {
				if j == i {
					errs = append(errs, fmt.Errorf("%s: %q is listed twice", k, alt))
				} else {
					errs = append(errs, fmt.Errorf("%s: %q is already listed in %s%s[%d]", k, alt, keyPrefix, key, j))
				}
				continue
			}
			first[low] = i
		}
	}
	return errs
}
