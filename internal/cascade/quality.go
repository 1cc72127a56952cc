package cascade

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// QualityRules is the quality gate applied to every answer. The defaults are
// the reference article's check_response_quality, exactly:
//
//	if len(prompt.split()) > 20 and len(response_text.split()) < 15: fail
//	if not response_text.strip(): fail
//	if any(phrase in response_text.lower() for phrase in refusal_phrases): fail
type QualityRules struct {
	LongPromptWords  int      `yaml:"long_prompt_words"`  // prompt words > this ...
	MinResponseWords int      `yaml:"min_response_words"` // ... and response words < this => fail
	RefusalPhrases   []string `yaml:"refusal_phrases"`    // case-insensitive substrings that fail an answer
}

// DefaultQuality returns the article's rules.
func DefaultQuality() QualityRules {
	return QualityRules{
		LongPromptWords:  20,
		MinResponseWords: 15,
		RefusalPhrases:   []string{"i cannot", "i can't", "i'm unable to", "as an ai", "i don't have the ability"},
	}
}

// isZero reports whether q was left unset.
func (q QualityRules) isZero() bool {
	return q.LongPromptWords == 0 && q.MinResponseWords == 0 && q.RefusalPhrases == nil
}

// Validate names the first bad key, as in a routes file.
func (q QualityRules) Validate() error {
	if q.LongPromptWords < 0 {
		return fmt.Errorf("quality.long_prompt_words: %d is negative", q.LongPromptWords)
	}
	if q.MinResponseWords < 0 {
		return fmt.Errorf("quality.min_response_words: %d is negative", q.MinResponseWords)
	}
	for i, p := range q.RefusalPhrases {
		if strings.TrimSpace(p) == "" {
			return fmt.Errorf("quality.refusal_phrases[%d]: empty phrase would fail every answer", i)
		}
	}
	return nil
}

// Check applies the rules to one answer. reason says which rule failed.
func (q QualityRules) Check(prompt, response string) (ok bool, reason string) {
	return q.compile().check(countWords(prompt), response)
}

// gate is QualityRules ready for the hot path: phrases lowercased once.
type gate struct {
	longPromptWords  int
	minResponseWords int
	phrases          []string
}

func (q QualityRules) compile() gate {
	g := gate{longPromptWords: q.LongPromptWords, minResponseWords: q.MinResponseWords,
		phrases: make([]string, len(q.RefusalPhrases))}
	for i, p := range q.RefusalPhrases {
		g.phrases[i] = strings.ToLower(p)
	}
	return g
}

// check is Check with the prompt's word count already known. It allocates
// only to explain a failure.
func (g gate) check(promptWords int, response string) (bool, string) {
	if promptWords > g.longPromptWords {
		if n := countWords(response); n < g.minResponseWords {
			return false, fmt.Sprintf("response too short: %d words for a %d-word prompt (minimum %d)", n, promptWords, g.minResponseWords)
		}
	}
	if isBlank(response) {
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

// isPySpace matches Python's str.isspace, which str.split() and str.strip()
// use: Go's unicode.IsSpace plus the ASCII separators U+001C..U+001F.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// countWords is len(s.split()) in Python.
func countWords(s string) int {
	n, in := 0, false
	for i := 0; i < len(s); {
		c := s[i]
		var space bool
		if c < utf8.RuneSelf {
			space = c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f)
			i++
		} else {
			r, size := utf8.DecodeRuneInString(s[i:])
			space = isPySpace(r)
			i += size
		}
		if space {
			in = false
		} else if !in {
			in = true
			n++
		}
	}
	return n
}

// isBlank is `not s.strip()` in Python.
func isBlank(s string) bool {
	for _, r := range s {
		if !isPySpace(r) {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// containsFoldASCII reports whether lowercase phrase p occurs in ASCII s,
// ignoring case, without allocating.
func containsFoldASCII(s, p string) bool {
	if len(p) == 0 {
		return true
	}
	first := p[0]
	for i := 0; i+len(p) <= len(s); i++ {
		if lower(s[i]) != first {
			continue
		}
		j := 1
		for j < len(p) && lower(s[i+j]) == p[j] {
			j++
		}
		if j == len(p) {
			return true
		}
	}
	return false
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}
