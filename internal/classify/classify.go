// Package classify sorts prompts into complexity tiers (simple, moderate,
// complex) with the reference article's keyword-and-length heuristic, so that
// each prompt goes to the cheapest model tier that can handle it.
//
// The package is pure: no I/O, no global state beyond the default classifier.
// A Classifier is immutable and safe for concurrent use. Classify makes one
// pass over the text without regular expressions and without allocating.
//
// By default the result is exactly that of the article's Python function
// classify_prompt, including its Unicode behaviour: words are split as by
// str.split(), text is lowercased as by str.lower(), and keywords match as
// \bkeyword\b does in Python's re module (Unicode-aware word characters).
package classify

import (
	"fmt"
	"slices"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// Classifier assigns tiers with a compiled set of Rules.
type Classifier struct {
	rules Rules

	// The keyword alternatives, lowercased, form a trie over runes. State 0
	// is the root; a transition to 0 means "no transition".
	rootASCII [utf8.RuneSelf]int32 // root transitions on ASCII runes
	nodes     []node
	edges     []edge  // transitions of node i are edges[nodes[i].edgeLo:nodes[i].edgeHi], sorted by rune
	accepts   []int32 // signals of node i are accepts[nodes[i].accLo:nodes[i].accHi]

	nComplex int  // signals 0..nComplex-1 are complex, the rest moderate
	nSignals int  // number of keyword entries in both lists
	sigma    bool // some keyword contains σ or ς, so Σ needs Final_Sigma
}

type node struct {
	edgeLo, edgeHi int32
	accLo, accHi   int32
}

type edge struct {
	r  rune
	to int32
}

// New compiles r into a Classifier. It returns r.Validate's error when r is
// not valid.
func New(r Rules) (*Classifier, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	r.ComplexKeywords = slices.Clone(r.ComplexKeywords)
	r.ModerateKeywords = slices.Clone(r.ModerateKeywords)
	c := &Classifier{
		rules:    r,
		nComplex: len(r.ComplexKeywords),
		nSignals: len(r.ComplexKeywords) + len(r.ModerateKeywords),
	}
	c.compile(append(slices.Clone(r.ComplexKeywords), r.ModerateKeywords...))
	return c, nil
}

var defaultClassifier = sync.OnceValue(func() *Classifier {
	c, err := New(DefaultRules())
	if err != nil {
		panic(fmt.Sprintf("classify: default rules are invalid: %v", err))
	}
	return c
})

// Default returns the classifier for DefaultRules, the reference article's
// heuristic. It is built once and shared.
func Default() *Classifier { return defaultClassifier() }

// Rules returns a copy of the rules c was built from.
func (c *Classifier) Rules() Rules {
	r := c.rules
	r.ComplexKeywords = slices.Clone(r.ComplexKeywords)
	r.ModerateKeywords = slices.Clone(r.ModerateKeywords)
	return r
}

// compile builds the trie of every alternative of every signal.
func (c *Classifier) compile(signals []string) {
	type buildNode struct {
		next    map[rune]int32
		accepts []int32
	}
	b := []buildNode{{next: map[rune]int32{}}}
	for sig, entry := range signals {
		for _, alt := range splitAlternatives(entry) {
			low := lowerString(alt)
			s := int32(0)
			for _, r := range low {
				if r == smallSigma || r == finalSigma {
					c.sigma = true
				}
				t, ok := b[s].next[r]
				if !ok {
					t = int32(len(b))
					b = append(b, buildNode{next: map[rune]int32{}})
					b[s].next[r] = t
				}
				s = t
			}
			if !slices.Contains(b[s].accepts, int32(sig)) {
				b[s].accepts = append(b[s].accepts, int32(sig))
			}
		}
	}
	c.nodes = make([]node, len(b))
	for i, bn := range b {
		n := &c.nodes[i]
		n.edgeLo = int32(len(c.edges))
		for _, r := range slices.Sorted(mapKeys(bn.next)) {
			c.edges = append(c.edges, edge{r: r, to: bn.next[r]})
			if i == 0 && r < utf8.RuneSelf {
				c.rootASCII[r] = bn.next[r]
			}
		}
		n.edgeHi = int32(len(c.edges))
		n.accLo = int32(len(c.accepts))
		c.accepts = append(c.accepts, bn.accepts...)
		n.accHi = int32(len(c.accepts))
	}
}

func mapKeys(m map[rune]int32) func(func(rune) bool) {
	return func(yield func(rune) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// splitAlternatives splits a keyword entry on "|".
func splitAlternatives(entry string) []string {
	var alts []string
	for len(entry) > 0 {
		i := 0
		for i < len(entry) && entry[i] != '|' {
			i++
		}
		alts = append(alts, entry[:i])
		if i == len(entry) {
			break
		}
		entry = entry[i+1:]
	}
	return alts
}

// step returns the trie state after reading r in state s, or 0.
func (c *Classifier) step(s int32, r rune) int32 {
	if s == 0 && r < utf8.RuneSelf {
		return c.rootASCII[r]
	}
	n := c.nodes[s]
	for _, e := range c.edges[n.edgeLo:n.edgeHi] {
		if e.r == r {
			return e.to
		}
	}
	return 0
}

// maxActive bounds the matches in progress at once. Each of them began at a
// different word start inside the text a single alternative spans, so
// Validate's limit of maxWords word starts per alternative keeps them within
// the bound.
const maxActive = maxWords

// scanner is the per-call matching state. It holds no slices of its own
// arrays, so it stays on the stack.
type scanner struct {
	c        *Classifier
	active   [maxActive]int32 // trie states of matches in progress, each begun at a word start
	nActive  int
	seen     [4]uint64 // signals already counted, when there are at most 256
	seenBig  []uint64  // signals already counted, when there are more
	prevWord bool      // the previous lowered rune was a word character
	complex  int
	moderate int
}

// feed advances the matcher by one lowered rune r; word tells whether r is
// a word character. A match begins where a word begins and is accepted where
// a word ends, which is what \b on both sides of the keyword requires
// (every alternative starts and ends with a word character).
func (s *scanner) feed(r rune, word bool) {
	if s.nActive > 0 {
		n := 0
		for _, st := range s.active[:s.nActive] {
			if !word {
				s.accept(st)
			}
			if t := s.c.step(st, r); t != 0 {
				s.active[n] = t
				n++
			}
		}
		s.nActive = n
	}
	if word && !s.prevWord {
		if t := s.c.step(0, r); t != 0 && s.nActive < maxActive {
			s.active[s.nActive] = t
			s.nActive++
		}
	}
	s.prevWord = word
}

// accept counts the signals that end at trie state st, each signal once.
func (s *scanner) accept(st int32) {
	n := s.c.nodes[st]
	for _, sig := range s.c.accepts[n.accLo:n.accHi] {
		seen := s.seen[:]
		if s.seenBig != nil {
			seen = s.seenBig
		}
		w, bit := sig/64, uint64(1)<<(sig%64)
		if seen[w]&bit != 0 {
			continue
		}
		seen[w] |= bit
		if int(sig) < s.c.nComplex {
			s.complex++
		} else {
			s.moderate++
		}
	}
}

// Classify returns the tier of text and the signals it measured. It reads
// the text once and does not allocate (unless the rules have more than 256
// keywords). Signals.TokenCount is left 0.
func (c *Classifier) Classify(text string) (prompt.Tier, prompt.Signals) {
	s := scanner{c: c}
	if n := (c.nSignals + 63) / 64; n > len(s.seen) {
		s.seenBig = make([]uint64, n)
	}
	words := 0
	inWord := false      // inside a run of non-space characters (str.split)
	casedBefore := false // Final_Sigma look-behind, tracked only when c.sigma

	for i := 0; i < len(text); {
		if b := text[i]; b < utf8.RuneSelf {
			i++
			cls := asciiClass[b]
			if cls&clsSpace != 0 {
				inWord = false
			} else if !inWord {
				inWord = true
				words++
			}
			if c.sigma && cls&clsIgnorable == 0 {
				casedBefore = cls&clsCased != 0
			}
			word := cls&clsWord != 0
			if s.nActive == 0 && (!word || s.prevWord) {
				s.prevWord = word // fast path: nothing to match here
				continue
			}
			if cls&clsUpper != 0 {
				b += 'a' - 'A'
			}
			s.feed(rune(b), word)
			continue
		}

		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		if isSpace(r) {
			inWord = false
		} else if !inWord {
			inWord = true
			words++
		}
		switch r {
		case capitalIDot:
			s.feed('i', true)
			s.feed(combiningDotAbv, false)
		case capitalSigma:
			if c.sigma && sigmaIsFinal(casedBefore, text[i:]) {
				s.feed(finalSigma, true)
			} else {
				s.feed(smallSigma, true)
			}
		default:
			lr := unicode.ToLower(r)
			s.feed(lr, isWord(lr))
		}
		if c.sigma && !isCaseIgnorable(r) {
			casedBefore = isCased(r)
		}
	}
	for _, st := range s.active[:s.nActive] { // the end of the text is a word boundary
		s.accept(st)
	}

	sig := prompt.Signals{WordCount: words, ComplexHits: s.complex, ModerateHits: s.moderate}
	return c.tier(sig), sig
}

// tier applies the thresholds to measured signals.
func (c *Classifier) tier(s prompt.Signals) prompt.Tier {
	r := &c.rules
	if s.ComplexHits >= r.ComplexMinHits || (s.ComplexHits >= r.ComplexLongHits && s.WordCount > r.ComplexLongWords) {
		return prompt.TierComplex
	}
	if s.ModerateHits >= r.ModerateMinHits || s.WordCount > r.ModerateLongWords {
		return prompt.TierModerate
	}
	return prompt.TierSimple
}
