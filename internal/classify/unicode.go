package classify

import (
	"unicode"
	"unicode/utf8"
)

// This file holds the character classes of Python's str and re that the
// reference heuristic depends on:
//
//   - str.split() splits on runs of str.isspace() characters, which are
//     Unicode White_Space plus the ASCII separators U+001C..U+001F.
//   - str.lower() applies the full lowercase mapping: the simple mapping,
//     except U+0130 (İ), which becomes "i" + U+0307, and U+03A3 (Σ), which
//     becomes final ς when it ends a word (the Final_Sigma condition).
//   - re's \w is a Unicode letter (L*), a Unicode number (N*) or "_".
//
// The tables are Go's unicode package, so they follow its Unicode version;
// characters assigned since Python's version may differ.

const (
	clsSpace     = 1 << iota // str.isspace()
	clsWord                  // re \w, after lowering
	clsUpper                 // 'A'..'Z'
	clsCased                 // Unicode Cased (for Final_Sigma)
	clsIgnorable             // Unicode Case_Ignorable (for Final_Sigma)
)

// asciiClass classifies each ASCII byte.
var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for b := range utf8.RuneSelf {
		r := rune(b)
		var c uint8
		if isSpace(r) {
			c |= clsSpace
		}
		if isWord(unicode.ToLower(r)) {
			c |= clsWord
		}
		if 'A' <= r && r <= 'Z' {
			c |= clsUpper
		}
		if isCased(r) {
			c |= clsCased
		}
		if isCaseIgnorable(r) {
			c |= clsIgnorable
		}
		t[b] = c
	}
	return t
}()

// isSpace reports whether Python's str.isspace() is true for r.
func isSpace(r rune) bool {
	switch {
	case r < utf8.RuneSelf:
		return r == ' ' || ('\t' <= r && r <= '\r') || (0x1c <= r && r <= 0x1f)
	case r == 0x85, r == 0xa0, r == 0x1680, r == 0x2028, r == 0x2029,
		r == 0x202f, r == 0x205f, r == 0x3000:
		return true
	default:
		return 0x2000 <= r && r <= 0x200a
	}
}

// isWord reports whether r is a word character for Python's re module.
func isWord(r rune) bool {
	if r < utf8.RuneSelf {
		return r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
	}
	return unicode.IsLetter(r) || unicode.IsNumber(r)
}

// isCased reports the Unicode Cased property: Lu, Ll, Lt, Other_Lowercase,
// Other_Uppercase.
func isCased(r rune) bool {
	return unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt, unicode.Other_Lowercase, unicode.Other_Uppercase)
}

// isCaseIgnorable reports the Unicode Case_Ignorable property: Mn, Me, Cf,
// Lm, Sk, and Word_Break MidLetter, MidNumLet and Single_Quote.
func isCaseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', 0x00b7, 0x0387, 0x055f, 0x05f4, 0x2018, 0x2019,
		0x2024, 0x2027, 0xfe13, 0xfe52, 0xfe55, 0xff07, 0xff0e, 0xff1a:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

const (
	capitalSigma    = 0x03a3
	smallSigma      = 0x03c3
	finalSigma      = 0x03c2
	capitalIDot     = 0x0130 // İ; lowercases to "i" + combiningDotAbove
	combiningDotAbv = 0x0307
)

// sigmaIsFinal reports whether the Σ that ends at text[:i] and is followed by
// text[j:] is in the Final_Sigma context, given whether the last
// non-case-ignorable character before it is cased:
// \p{cased}\p{case-ignorable}* Σ !(\p{case-ignorable}* \p{cased}).
func sigmaIsFinal(casedBefore bool, rest string) bool {
	if !casedBefore {
		return false
	}
	for _, r := range rest {
		if !isCaseIgnorable(r) {
			return !isCased(r)
		}
	}
	return true
}

// lowerString is Python's str.lower() for a whole string. It is used on
// keywords when rules are compiled; the hot path lowers rune by rune.
func lowerString(s string) string {
	out := make([]rune, 0, len(s))
	casedBefore := false
	for i, r := range s {
		switch r {
		case capitalIDot:
			out = append(out, 'i', combiningDotAbv)
		case capitalSigma:
			if sigmaIsFinal(casedBefore, s[i+utf8.RuneLen(r):]) {
				out = append(out, finalSigma)
			} else {
				out = append(out, smallSigma)
			}
		default:
			out = append(out, unicode.ToLower(r))
		}
		if !isCaseIgnorable(r) {
			casedBefore = isCased(r)
		}
	}
	return string(out)
}

// startsAndEndsWithWordChar reports whether s is non-empty and its first and
// last runes are word characters.
func startsAndEndsWithWordChar(s string) bool {
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	return s != "" && isWord(first) && isWord(last)
}

// wordStarts counts the runs of word characters in the lowered string s.
func wordStarts(s string) int {
	n, prev := 0, false
	for _, r := range s {
		w := isWord(r)
		if w && !prev {
			n++
		}
		prev = w
	}
	return n
}
