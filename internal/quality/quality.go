// Package quality is the answer quality gate of the reference article's
// check_response_quality: rules (from the routes file's quality: section),
// their defaults, and the check applied to every answer. It imports nothing
// of ours, so that config can decode the rules and cascade apply them.
package quality

import (
	"fmt"
	"math/bits"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Rules is the quality gate applied to every answer. The defaults are
// the reference article's check_response_quality, exactly:
//
//	if len(prompt.split()) > 20 and len(response_text.split()) < 15: fail
//	if not response_text.strip(): fail
//	if any(phrase in response_text.lower() for phrase in refusal_phrases): fail
type Rules struct {
	LongPromptWords  int      `yaml:"long_prompt_words"`  // prompt words > this ...
	MinResponseWords int      `yaml:"min_response_words"` // ... and response words < this => fail
	RefusalPhrases   []string `yaml:"refusal_phrases"`    // case-insensitive substrings that fail an answer
}

// Default returns the article's rules.
func Default() Rules {
	return Rules{
		LongPromptWords:  20,
		MinResponseWords: 15,
		RefusalPhrases:   []string{"i cannot", "i can't", "i'm unable to", "as an ai", "i don't have the ability"},
	}
}

// IsZero reports whether q was left unset.
func (q Rules) IsZero() bool {
	return q.LongPromptWords == 0 && q.MinResponseWords == 0 && q.RefusalPhrases == nil
}

// Validate names the first bad key, as in a routes file.
func (q Rules) Validate() error {
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
func (q Rules) Check(prompt, response string) (ok bool, reason string) {
	return q.Compile().Check(CountWords(prompt), response)
}

// Gate is Rules ready for the hot path: phrases lowercased once.
type Gate struct {
	longPromptWords  int
	minResponseWords int
	phrases          []string
	scan             *phraseScan // nil: every phrase is looked for on its own
}

// phraseScan finds every refusal phrase in one pass over an ASCII
// response. It is built when there are at most 64 phrases, each ASCII and
// not empty (the defaults and any sane routes file).
type phraseScan struct {
	// start[c] is stStart if some phrase begins with lower(c), stNonASCII
	// if c is not ASCII, else 0.
	start [256]uint8
}

const (
	stStart uint8 = 1 << iota
	stNonASCII
)

// Compile readies q for the hot path.
func (q Rules) Compile() Gate {
	g := Gate{longPromptWords: q.LongPromptWords, minResponseWords: q.MinResponseWords,
		phrases: make([]string, len(q.RefusalPhrases))}
	for i, p := range q.RefusalPhrases {
		g.phrases[i] = strings.ToLower(p)
	}
	if len(g.phrases) > 0 && len(g.phrases) <= 64 {
		sc := &phraseScan{}
		for c := utf8.RuneSelf; c < 256; c++ {
			sc.start[c] = stNonASCII
		}
		for _, p := range g.phrases {
			if p == "" || !isASCII(p) {
				sc = nil
				break
			}
			sc.start[p[0]] |= stStart
			if c := p[0]; c >= 'a' && c <= 'z' {
				sc.start[c-('a'-'A')] |= stStart
			}
		}
		g.scan = sc
	}
	return g
}

// Check is Rules.Check with the prompt's word count already known. It
// allocates only to explain a failure.
func (g Gate) Check(promptWords int, response string) (bool, string) {
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
	k, ascii := -1, false
	if g.scan != nil {
		k, ascii = g.scanASCII(response)
	}
	if !ascii {
		k = g.refusal(response)
	}
	if k >= 0 {
		return false, fmt.Sprintf("refusal phrase %q", g.phrases[k])
	}
	return true, ""
}

// refusal returns the index of the first phrase (in list order) that
// response contains, ignoring case, or -1: each phrase looked for on its
// own, case-folded byte-wise for an ASCII response, through
// strings.ToLower for any other.
func (g Gate) refusal(response string) int {
	if isASCII(response) {
		for i, p := range g.phrases {
			if containsFoldASCII(response, p) {
				return i
			}
		}
		return -1
	}
	lower := strings.ToLower(response)
	for i, p := range g.phrases {
		if strings.Contains(lower, p) {
			return i
		}
	}
	return -1
}

// scanASCII is refusal for an ASCII response in one pass: at each byte
// that some phrase starts with, it tries the phrases, and it reports the
// first phrase in list order that matched anywhere. ascii is false (and the
// index meaningless) if response holds a non-ASCII byte.
func (g Gate) scanASCII(s string) (k int, ascii bool) {
	var found uint64
	start := &g.scan.start
	for i := 0; i < len(s); i++ {
		st := start[s[i]]
		if st == 0 {
			continue
		}
		if st&stNonASCII != 0 {
			return -1, false
		}
		c := lower(s[i])
		for j, p := range g.phrases {
			if p[0] != c || len(p) > len(s)-i || found&(1<<j) != 0 {
				continue
			}
			if hasFoldPrefixASCII(s[i+1:], p[1:]) {
				found |= 1 << j
			}
		}
	}
	if found == 0 {
		return -1, true
	}
	return bits.TrailingZeros64(found), true
}

// hasFoldPrefixASCII reports whether s starts with lowercase p, ignoring
// ASCII case; len(s) >= len(p).
func hasFoldPrefixASCII(s, p string) bool {
	for j := 0; j < len(p); j++ {
		if lower(s[j]) != p[j] {
			return false
		}
	}
	return true
}

// isPySpace matches Python's str.isspace, which str.split() and str.strip()
// use: Go's unicode.IsSpace plus the ASCII separators U+001C..U+001F.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// CountWords is len(s.split()) in Python.
func CountWords(s string) int {
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

// IsBlank is `not s.strip()` in Python.
func IsBlank(s string) bool {
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
