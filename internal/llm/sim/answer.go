package sim

import (
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/promptcascade/promptcascade/internal/tokens"
)

// difficulty is a cheap one-pass measure of how hard a prompt is: its word
// count and which of a few complex/moderate keywords it uses (each counted
// once). It also remembers a few topic words to talk about.
type difficulty struct {
	words    int
	complex  int
	moderate int
	topics   [maxTopics]topic
	nTopics  int
}

type topic struct {
	word string // a substring of the prompt: letters and digits only
	frag string // " " + word, a substring of the prompt when possible
}

const maxTopics = 6

var complexWords = []string{
	"analyze|analyse", "compare", "design", "architect", "refactor", "debug", "optimize|optimise", "prove",
	"tradeoff|tradeoffs|trade-off|trade-offs", "implication|implications",
}

var moderateWords = []string{"explain", "write", "implement", "create", "summarize|summarise", "translate"}

var stopWords = []string{
	"what", "which", "with", "that", "this", "from", "about", "there", "their", "would", "could", "should",
	"have", "does", "when", "where", "your", "into", "than", "then", "them", "they", "these", "those", "been",
	"were", "will", "make", "some", "more", "most", "such", "each", "also", "only", "very", "just", "like",
	"over", "many", "much", "both", "well", "here", "please", "give", "tell", "using", "between", "other",
}

// hardness maps a prompt to [0,1]: long prompts and complex keywords are hard.
func (d difficulty) hardness() float64 {
	return 0.4*min(1, float64(d.words)/100) + 0.45*min(1, float64(d.complex)/3) + 0.15*min(1, float64(d.moderate)/2)
}

// targetWords is how long a good answer to the prompt is, before jitter.
func (d difficulty) targetWords() float64 {
	return 18 + 1.2*float64(d.words) + 45*float64(d.complex) + 20*float64(d.moderate)
}

func measure(prompt string) difficulty {
	var d difficulty
	var complexSeen, moderateSeen uint32
	i := 0
	for i < len(prompt) {
		for i < len(prompt) && isSpace(prompt[i]) {
			i++
		}
		start := i
		for i < len(prompt) && !isSpace(prompt[i]) {
			i++
		}
		if start == i {
			break
		}
		d.words++
		// Trim punctuation around the word ("France?" -> "France").
		s, e := start, i
		for s < e && !isAlnum(prompt[s]) {
			s++
		}
		for e > s && !isAlnum(prompt[e-1]) {
			e--
		}
		if s == e {
			continue
		}
		w := prompt[s:e]
		kw := lookupKeyword(w)
		if k := kw.complex; k >= 0 {
			if complexSeen&(1<<k) == 0 {
				complexSeen |= 1 << k
				d.complex++
			}
			continue
		}
		if k := kw.moderate; k >= 0 {
			if moderateSeen&(1<<k) == 0 {
				moderateSeen |= 1 << k
				d.moderate++
			}
			continue
		}
		if d.nTopics < maxTopics && len(w) >= 4 && !kw.stop && allAlnum(w) && !d.hasTopic(w) {
			frag := ""
			if s > 0 && prompt[s-1] == ' ' {
				frag = prompt[s-1 : e]
			}
			d.topics[d.nTopics] = topic{word: w, frag: frag}
			d.nTopics++
		}
	}
	return d
}

func (d *difficulty) hasTopic(w string) bool {
	for i := range d.nTopics {
		if strings.EqualFold(d.topics[i].word, w) {
			return true
		}
	}
	return false
}

// keyword returns the index of the entry of list that w matches
// (case-insensitively, as strings.EqualFold; an entry lists alternatives
// separated by "|"), or -1. lookupKeyword is the fast path; this is what it
// falls back to for words with non-ASCII bytes.
func keyword(w string, list []string) int {
	for i, entry := range list {
		for entry != "" {
			alt, rest, _ := strings.Cut(entry, "|")
			if strings.EqualFold(w, alt) {
				return i
			}
			entry = rest
		}
	}
	return -1
}

// keywordHit is what a word is in the three lists: the index of its entry in
// complexWords and moderateWords (-1 if none), and whether it is a stop word.
type keywordHit struct {
	complex, moderate int8
	stop              bool
}

var noKeyword = keywordHit{complex: -1, moderate: -1}

// keywordIndex maps every alternative of the three lists, lower-cased, to
// what keyword reports for it, so that an ASCII word costs one lookup
// instead of an EqualFold against each alternative.
type keywordIndex struct {
	hits           map[string]keywordHit
	minLen, maxLen int
}

var keywords = newKeywordIndex()

func newKeywordIndex() keywordIndex {
	x := keywordIndex{hits: map[string]keywordHit{}, minLen: 1 << 30}
	add := func(list []string, set func(*keywordHit, int)) {
		for i, entry := range list {
			for _, alt := range strings.Split(entry, "|") {
				if alt != strings.ToLower(alt) || !isASCII(alt) {
					panic("sim: keyword " + alt + " is not lower-case ASCII")
				}
				h, ok := x.hits[alt]
				if !ok {
					h = noKeyword
				}
				set(&h, i) // keeps the first entry that lists alt
				x.hits[alt] = h
				x.minLen, x.maxLen = min(x.minLen, len(alt)), max(x.maxLen, len(alt))
			}
		}
	}
	add(complexWords, func(h *keywordHit, i int) {
		if h.complex < 0 {
			h.complex = int8(i)
		}
	})
	add(moderateWords, func(h *keywordHit, i int) {
		if h.moderate < 0 {
			h.moderate = int8(i)
		}
	})
	add(stopWords, func(h *keywordHit, _ int) { h.stop = true })
	if x.maxLen > maxKeywordLen {
		panic("sim: a keyword is longer than maxKeywordLen")
	}
	return x
}

// maxKeywordLen bounds the stack buffer lookupKeyword lower-cases into.
const maxKeywordLen = 32

// lookupKeyword is keyword(w, complexWords), keyword(w, moderateWords) and
// keyword(w, stopWords) >= 0 in one go. For ASCII w, strings.EqualFold with
// a lower-case ASCII alternative is byte-wise equality after lower-casing
// A-Z, and a word of another length matches nothing; a word with non-ASCII
// bytes (where EqualFold's Unicode folding could match, as the Kelvin sign
// does "k") takes the reference path.
func lookupKeyword(w string) keywordHit {
	if len(w) < keywords.minLen || len(w) > keywords.maxLen {
		if isASCII(w) {
			return noKeyword
		}
		return slowKeyword(w)
	}
	var buf [maxKeywordLen]byte
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= utf8.RuneSelf {
			return slowKeyword(w)
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	if h, ok := keywords.hits[string(buf[:len(w)])]; ok {
		return h
	}
	return noKeyword
}

func slowKeyword(w string) keywordHit {
	return keywordHit{complex: int8(keyword(w, complexWords)), moderate: int8(keyword(w, moderateWords)),
		stop: keyword(w, stopWords) >= 0}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func allAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

// A fragment is a piece of answer text with its token and word counts.
//
// Answers are concatenations of fragments that each start with a space
// followed by a letter, or with punctuation, and never end with a space.
// tiktoken's pre-tokenizer splits such a concatenation exactly at the
// fragment boundaries, and BPE never merges across them, so an answer's token
// count is the sum of its fragments' counts, as the package tests check
// against tokens.Count of the whole text. This keeps the simulator
// from spending most of its time in the tokenizer.
type fragment struct {
	s     string
	n     int // o200k_base tokens
	words int
}

type template struct{ prefix, suffix fragment } // prefix + " <topic>" + suffix

var texts struct {
	once     sync.Once
	openers  []fragment
	closers  []fragment
	generic  []fragment // topics for prompts without usable words
	bodies   []template
	shorts   []fragment // weak: too short for a long prompt
	refusals []fragment // weak: contain a refusal phrase
	closerW  int        // words in the longest closer
}

// Good answers never contain a refusal phrase, even across fragments: no
// fragment ends in a word ending in "i" or in "as"/"an", none starts with
// "cannot", "can't" or "an", and topics are single words without apostrophes.
func loadTexts() {
	texts.once.Do(func() {
		mk := func(ss ...string) []fragment {
			out := make([]fragment, len(ss))
			for i, s := range ss {
				out[i] = fragment{s: s, n: tokens.Count(s), words: len(strings.Fields(s))}
			}
			return out
		}
		texts.openers = mk(
			"Here is a clear answer.",
			"Short answer first, then the details.",
			"Good question; the main idea is simple.",
			"Let us go through it step by step.",
			"Here is how to think about it.",
		)
		texts.closers = mk(
			" In summary, start simple, measure, and refine.",
			" That covers the essentials; the details depend on your constraints.",
			" Overall, the approach above should work well in most cases.",
		)
		texts.generic = mk(" the question", " this topic", " the problem")
		pairs := [][2]string{
			{" The central point about", " is that it depends on the context in which it is used."},
			{" In practice,", " behaves predictably once the inputs are well defined."},
			{" A common mistake is to treat", " as one big step, when it is really several smaller ones."},
			{" When comparing options, weigh", " against cost, latency and how easy it is to maintain."},
			{" For example, a team working on", " usually starts with a small prototype and measures the results."},
			{" It helps to separate what", " guarantees from what it merely makes likely."},
			{" The tradeoff is that more attention to", " often means less flexibility elsewhere."},
			{" Measured carefully,", " tends to improve steadily rather than all at once."},
			{" Another useful angle is how", " interacts with the rest of the system."},
			{" Good documentation and tests around", " pay for themselves quickly."},
			{" It is worth writing down the assumptions behind", " before changing anything."},
			{" The simplest correct approach to", " is usually the best place to start."},
			{" Edge cases around", " deserve explicit handling and a short explanation."},
			{" Concretely, the steps for", " are: define the goal, gather the inputs, apply the method, and check the result."},
		}
		for _, p := range pairs {
			f := mk(p[0], p[1])
			texts.bodies = append(texts.bodies, template{prefix: f[0], suffix: f[1]})
		}
		texts.shorts = mk(
			"It depends.",
			"Yes, usually.",
			"Not really.",
			"See the documentation.",
			"That is a broad question with many answers.",
			"Probably, but it varies.",
		)
		texts.refusals = mk(
			"I cannot help with that as an AI.",
			"I'm unable to answer that question.",
			"As an AI, I don't have the ability to do that.",
			"I can't provide a complete answer to this.",
		)
		for _, c := range texts.closers {
			texts.closerW = max(texts.closerW, c.words)
		}
	})
}

// writer builds an answer within a token budget.
type writer struct {
	b      strings.Builder
	budget int
	tokens int
	words  int
	cut    bool
}

// add appends f, or as much of it as the budget allows; false once the
// budget is spent.
func (w *writer) add(f fragment) bool {
	if w.cut {
		return false
	}
	if w.tokens+f.n > w.budget {
		s, n := tokens.Truncate(f.s, w.budget-w.tokens)
		w.b.WriteString(s)
		w.tokens += n
		w.cut = true
		return false
	}
	w.b.WriteString(f.s)
	w.tokens += f.n
	w.words += f.words
	return true
}

func (w *writer) finish() (string, int, string) {
	if w.cut {
		return w.b.String(), w.tokens, "length"
	}
	return w.b.String(), w.tokens, "stop"
}

// answer writes a good answer: an opener, body sentences about the prompt's
// topics until the target length, and a closer.
func answer(r *rng, prompt string, d difficulty, maxTokens int) (string, int, string) {
	loadTexts()
	target := d.targetWords() * (0.75 + 0.5*r.Float())
	target = min(target, 1500)

	// Topic fragments are counted once per call, on first use.
	var topicFrags [maxTopics]fragment
	topicFor := func(i int) fragment {
		if topicFrags[i].s == "" {
			t := d.topics[i]
			s := t.frag
			if s == "" {
				s = " " + t.word
			}
			topicFrags[i] = fragment{s: s, n: tokens.Count(s), words: 1}
		}
		return topicFrags[i]
	}

	w := writer{budget: maxTokens}
	w.b.Grow(int(target)*7 + 64)
	if !w.add(texts.openers[r.Intn(len(texts.openers))]) {
		return w.finish()
	}
	for first := true; first || float64(w.words+texts.closerW) < target; first = false {
		body := texts.bodies[r.Intn(len(texts.bodies))]
		var tf fragment
		if d.nTopics > 0 {
			tf = topicFor(r.Intn(d.nTopics))
		} else {
			tf = texts.generic[r.Intn(len(texts.generic))]
		}
		if !w.add(body.prefix) || !w.add(tf) || !w.add(body.suffix) {
			return w.finish()
		}
	}
	w.add(texts.closers[r.Intn(len(texts.closers))])
	return w.finish()
}

// weakAnswer is too short for a long prompt, or a refusal.
func weakAnswer(r *rng, maxTokens int) (string, int, string) {
	loadTexts()
	list := texts.shorts
	if r.Uint64()&1 == 1 {
		list = texts.refusals
	}
	w := writer{budget: maxTokens}
	w.add(list[r.Intn(len(list))])
	return w.finish()
}
