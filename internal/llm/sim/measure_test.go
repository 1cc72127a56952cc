package sim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
)

// refMeasure is measure as it was before the keyword index: every word is
// compared with every alternative of every list (keyword). measure must
// give the same difficulty, topics included, for every prompt.
func refMeasure(prompt string) difficulty {
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
		if k := keyword(w, complexWords); k >= 0 {
			if complexSeen&(1<<k) == 0 {
				complexSeen |= 1 << k
				d.complex++
			}
			continue
		}
		if k := keyword(w, moderateWords); k >= 0 {
			if moderateSeen&(1<<k) == 0 {
				moderateSeen |= 1 << k
				d.moderate++
			}
			continue
		}
		if d.nTopics < maxTopics && len(w) >= 4 && allAlnum(w) && !d.hasTopic(w) && keyword(w, stopWords) < 0 {
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

func checkMeasure(t *testing.T, prompt string) {
	t.Helper()
	if got, want := measure(prompt), refMeasure(prompt); got != want {
		t.Fatalf("measure(%q) = %+v, want %+v", prompt, got, want)
	}
}

// measureWords are words measure treats specially, in odd spellings: case
// variants, Unicode letters that strings.EqualFold folds to ASCII ones
// (the Kelvin sign to "k", the long s to "s"), and near misses.
var measureWords = []string{
	"analyze", "ANALYSE", "Compare", "deSign", "architect", "refactor", "debug", "optimize", "optimiSE", "prove",
	"tradeoff", "Tradeoffs", "trade-off", "TRADE-OFFS", "implication", "implications", "explain", "Write",
	"implement", "create", "summarize", "summariſe", "translate", "what", "WHICH", "please", "between",
	"ma\u212Ae", "li\u212Ae", "thoſe", "\u212Aelvin", "tradeoffſ", "analy\u017Fe", "İmplement", "ıf",
	"plus", "Answer", "briefly", "capital", "France", "12345", "x", "ab", "abc", "word", "words", "worde",
	"implicationsx", "designs", "proven", "trade_off", "trade--off", "re-factor", "\u00e9crire", "caf\u00e9",
	"stra\u00dfe", "STRASSE", "σίσυφος", "ΣΊΣΥΦΟΣ",
}

var measurePunct = []string{"", "", "", "?", ".", ",", "(", ")", "\"", "'", "!", "...", "\u00bf", "\u2014"}

var measureSpaces = []string{" ", " ", " ", "  ", "\n", "\t", "\r\n", "\v", "\f", "\u00a0", " \u2003 "}

func randomPrompt(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(40) {
		b.WriteString(measureSpaces[r.IntN(len(measureSpaces))])
		b.WriteString(measurePunct[r.IntN(len(measurePunct))])
		b.WriteString(measureWords[r.IntN(len(measureWords))])
		b.WriteString(measurePunct[r.IntN(len(measurePunct))])
	}
	return b.String()
}

func TestMeasureMatchesReference(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", " ", "?!", simplePrompt, articlePrompt, hardPrompt, "What is 12345 plus 12345? Answer briefly.",
		strings.Repeat("design ", 40), strings.Join(measureWords, " "), strings.Join(stopWords, " ") + " topicword",
		strings.Join(complexWords, " "), strings.Join(moderateWords, "|")} {
		checkMeasure(t, p)
	}
	for _, w := range measureWords {
		checkMeasure(t, w)
		checkMeasure(t, "("+w+")")
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20_000 {
		checkMeasure(t, randomPrompt(r))
	}
}

// Every alternative of the lists, in every case pattern of its first
// letters, hits the same entry through the index as through keyword.
func TestKeywordIndexMatchesKeyword(t *testing.T) {
	t.Parallel()
	for _, list := range [][]string{complexWords, moderateWords, stopWords} {
		for _, entry := range list {
			for _, alt := range strings.Split(entry, "|") {
				for mask := range 1 << min(len(alt), 6) {
					b := []byte(alt)
					for i := range min(len(b), 6) {
						if mask&(1<<i) != 0 && b[i] >= 'a' && b[i] <= 'z' {
							b[i] -= 'a' - 'A'
						}
					}
					w := string(b)
					if got, want := lookupKeyword(w), slowKeyword(w); got != want {
						t.Fatalf("lookupKeyword(%q) = %+v, want %+v", w, got, want)
					}
				}
			}
		}
	}
}

func FuzzMeasureMatchesReference(f *testing.F) {
	for _, p := range []string{simplePrompt, articlePrompt, hardPrompt, "ma\u212Ae it", "thoſe tradeoffſ"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		checkMeasure(t, p)
		// The same bytes as a sequence of the words measure cares about.
		var b strings.Builder
		for i := range len(p) {
			b.WriteString(measureWords[int(p[i])%len(measureWords)])
			b.WriteString(measureSpaces[int(p[i])%len(measureSpaces)])
		}
		checkMeasure(t, b.String())
	})
}

// goldenPlans is the SHA-256 of every plan and Complete response below, as
// the simulator produced them before measure used the keyword index: the
// simulator's output (text, tokens, latency, faults) for a seed must stay
// byte-identical across optimizations.
const goldenPlans = "c9af003630a3a6549870987c307cca4dddd1b05af87f344e149d4e7cab4e2a9c"

func TestPlansGolden(t *testing.T) {
	t.Parallel()
	prompts := []string{simplePrompt, articlePrompt, hardPrompt, "", "What is 12345 plus 12345? Answer briefly.",
		"What is 7 plus 7? Answer briefly.", "Explain and summarize the implications; write a translation of İmplement ma\u212Ae.",
		strings.Join(measureWords, " "), strings.Repeat("Please compare these designs between teams. ", 30)}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		prompts = append(prompts, randomPrompt(r))
	}
	models := map[string]Model{
		"faulty": {Latency: 100 * time.Millisecond, ErrorRate: 0.1, RateLimitRate: 0.1, TimeoutRate: 0.05, WeakRate: 0.2, Capability: 0.3},
		"good":   {Latency: 300 * time.Millisecond, Capability: 1},
		"weak":   {Latency: 50 * time.Millisecond, WeakRate: 0.1, Capability: 0},
	}
	p := New(models)
	instant := New(map[string]Model{"m": {ErrorRate: 0.1, RateLimitRate: 0.1, WeakRate: 0.1, Capability: 0.5}})
	h := sha256.New()
	for _, id := range []string{"faulty", "good", "weak"} {
		m := p.models[id]
		for _, prompt := range prompts {
			for seed := range uint64(40) {
				for _, req := range []llm.Request{
					{Model: id, Prompt: prompt, Seed: seed},
					{Model: id, System: "You are a helpful assistant.", Prompt: prompt, Seed: seed, MaxTokens: 40},
					{Model: id, System: llm.JudgeSystem, Prompt: llm.JudgePrompt(prompt, "a short answer", "a much longer answer than that one"), Seed: seed},
				} {
					fmt.Fprintf(h, "%s %d %+v\n", id, seed, m.plan(req))
					req.Model = "m"
					resp, err := instant.Complete(context.Background(), req)
					fmt.Fprintf(h, "%+v %v\n", resp, err)
				}
			}
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != goldenPlans {
		t.Errorf("plans hash %s, want %s: the simulator's output for a seed changed", got, goldenPlans)
	}
}

var measureBenchPrompts = []struct{ name, prompt string }{
	{"bench", "What is 12345 plus 12345? Answer briefly."}, {"simple", simplePrompt},
	{"article_complex", articlePrompt}, {"hard", hardPrompt},
}

func BenchmarkMeasure(b *testing.B) {
	for _, bc := range measureBenchPrompts {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				measure(bc.prompt)
			}
		})
	}
}

// BenchmarkMeasureReference is BenchmarkMeasure for the implementation
// before the keyword index.
func BenchmarkMeasureReference(b *testing.B) {
	for _, bc := range measureBenchPrompts {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				refMeasure(bc.prompt)
			}
		})
	}
}
