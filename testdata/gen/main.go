// Command gen writes the sample prompt files in testdata/: prompts.jsonl
// (1,250 prompts for demos and end-to-end tests), prompts.csv, prompts.txt
// and openai-batch.jsonl (50 each, one per input format).
//
// The prompts are built from the templates and topic lists beside this file,
// all written for this repository. Generation is deterministic: the same
// code always writes the same bytes. prompts.jsonl is filled by tier quotas
// under the default classifier (50% simple, 30% moderate, 20% complex), with
// a system prompt on about a fifth of the lines, max_tokens on about a third
// and metadata on about two fifths.
//
// Run from the repository root:
//
//	go run ./testdata/gen
package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

func main() {
	dir := flag.String("dir", "testdata", "directory to write the files to")
	flag.Parse()
	for name, data := range map[string][]byte{
		"prompts.jsonl":      promptsJSONL(),
		"prompts.csv":        promptsCSV(),
		"prompts.txt":        promptsText(),
		"openai-batch.jsonl": openAIBatch(),
	} {
		if err := os.WriteFile(filepath.Join(*dir, name), data, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// sample is one generated prompt.
type sample struct {
	text     string
	category string
	tier     prompt.Tier
}

var prefixes = []string{
	"", "", "", "", "Quick one: ", "Quick question. ", "I'm preparing a presentation for my team next week. ",
	"For a blog post I'm drafting: ", "My manager asked me this and I want to get it right. ", "Hi! ",
	"Context: I'm new to this field and learning on my own. ",
}

var suffixes = []string{
	"", "", "", "", " Keep it short.", " Please use bullet points.", " Answer in one sentence.",
	" Assume I know the basics.", " Thanks!", " Give one concrete example.", " Use a friendly tone.",
}

// generator yields distinct prompts whose tiers fill the given quotas.
type generator struct {
	r    *rand.Rand
	c    *classify.Classifier
	seen map[string]bool
}

func newGenerator(seed uint64) *generator {
	return &generator{r: rand.New(rand.NewPCG(seed, 0x70726f6d7074)), c: classify.Default(), seen: map[string]bool{}}
}

// next returns a new prompt of a tier that still has quota left, drawing
// templates in proportion to what is left of each tier.
func (g *generator) next(quota map[prompt.Tier]int) sample {
	for range 100_000 {
		left := quota[prompt.TierSimple] + quota[prompt.TierModerate] + quota[prompt.TierComplex]
		n := g.r.IntN(left)
		group := complexTemplates
		switch {
		case n < quota[prompt.TierSimple]:
			group = simpleTemplates
		case n < quota[prompt.TierSimple]+quota[prompt.TierModerate]:
			group = moderateTemplates
		}
		t := pick(g.r, group)
		text := t.write(g.r)
		if g.r.IntN(3) == 0 && !strings.Contains(text, "\n") && t.category != "foreign" {
			text = pick(g.r, prefixes) + text + pick(g.r, suffixes)
		}
		words := len(strings.Fields(text))
		if words < 3 || words > 160 || g.seen[text] {
			continue
		}
		tier, _ := g.c.Classify(text)
		if quota[tier] == 0 {
			continue
		}
		quota[tier]--
		g.seen[text] = true
		return sample{text: text, category: t.category, tier: tier}
	}
	panic("gen: templates cannot fill the quotas; add variety")
}

// nextFrom returns a new prompt from template t whose tier still has quota
// left.
func (g *generator) nextFrom(t template, quota map[prompt.Tier]int) sample {
	for range 10_000 {
		text := t.write(g.r)
		tier, _ := g.c.Classify(text)
		if quota[tier] == 0 || g.seen[text] {
			continue
		}
		quota[tier]--
		g.seen[text] = true
		return sample{text: text, category: t.category, tier: tier}
	}
	panic("gen: template cannot fill the quota")
}

// record is one JSONL input line.
type record struct {
	ID        string            `json:"id"`
	Prompt    string            `json:"prompt"`
	System    string            `json:"system,omitempty"`
	MaxTokens int               `json:"max_tokens,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

func (g *generator) extras(rec *record, s sample) {
	if g.r.IntN(5) == 0 {
		rec.System = pick(g.r, systemPrompts)
	}
	if g.r.IntN(3) == 0 {
		rec.MaxTokens = pick(g.r, []int{64, 128, 256, 512, 1024, 2048})
	}
	if g.r.IntN(5) < 2 {
		rec.Metadata = map[string]string{"category": s.category, "source": pick(g.r, sources)}
		if s.category == "foreign" {
			rec.Metadata["lang"] = "non-en"
		}
	}
}

func encodeJSONL(v any, buf *bytes.Buffer) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		log.Fatal(err)
	}
}

func promptsJSONL() []byte {
	const total = 1250
	g := newGenerator(1)
	quota := map[prompt.Tier]int{prompt.TierSimple: total / 2, prompt.TierModerate: total * 3 / 10, prompt.TierComplex: total / 5}
	var buf bytes.Buffer
	for i := range total {
		s := g.next(quota)
		rec := record{ID: fmt.Sprintf("p-%04d", i+1), Prompt: s.text}
		g.extras(&rec, s)
		encodeJSONL(rec, &buf)
	}
	return buf.Bytes()
}

// smallQuota is the mix of the 50-prompt files.
func smallQuota() map[prompt.Tier]int {
	return map[prompt.Tier]int{prompt.TierSimple: 25, prompt.TierModerate: 15, prompt.TierComplex: 10}
}

func promptsCSV() []byte {
	g := newGenerator(2)
	quota := smallQuota()
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	write := func(row ...string) {
		if err := w.Write(row); err != nil {
			log.Fatal(err)
		}
	}
	write("id", "prompt", "system", "max_tokens", "category", "source")
	for i := range 50 {
		var s sample
		if i%10 == 4 { // some multi-line prompts, which CSV must quote
			s = g.nextFrom(moderateTemplates[9], quota)
		} else {
			s = g.next(quota)
		}
		rec := record{Prompt: s.text}
		g.extras(&rec, s)
		maxTokens := ""
		if rec.MaxTokens > 0 {
			maxTokens = strconv.Itoa(rec.MaxTokens)
		}
		write(fmt.Sprintf("c-%03d", i+1), s.text, rec.System, maxTokens, s.category, pick(g.r, sources))
	}
	w.Flush()
	if err := w.Error(); err != nil {
		log.Fatal(err)
	}
	return buf.Bytes()
}

func promptsText() []byte {
	g := newGenerator(3)
	quota := smallQuota()
	var buf bytes.Buffer
	for n := 0; n < 50; {
		s := g.next(quota)
		if strings.Contains(s.text, "\n") {
			quota[s.tier]++ // one prompt per line: skip multi-line ones
			continue
		}
		buf.WriteString(s.text + "\n")
		n++
	}
	return buf.Bytes()
}

// batchLine is an OpenAI Batch API request line.
type batchLine struct {
	CustomID string    `json:"custom_id"`
	Method   string    `json:"method"`
	URL      string    `json:"url"`
	Body     batchBody `json:"body"`
}

type batchBody struct {
	Model               string            `json:"model"`
	Messages            []batchMessage    `json:"messages"`
	MaxTokens           int               `json:"max_tokens,omitempty"`
	MaxCompletionTokens int               `json:"max_completion_tokens,omitempty"`
	Metadata            map[string]string `json:"metadata,omitempty"`
}

type batchMessage struct {
	Role    string `json:"role"`
	Content any    `json:"content"` // a string or []textPart
}

type textPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func openAIBatch() []byte {
	g := newGenerator(4)
	quota := smallQuota()
	var buf bytes.Buffer
	for i := range 50 {
		s := g.next(quota)
		line := batchLine{
			CustomID: fmt.Sprintf("req-%03d", i+1), Method: "POST", URL: "/v1/chat/completions",
			Body: batchBody{Model: pick(g.r, []string{"gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"})},
		}
		if g.r.IntN(3) == 0 {
			line.Body.Messages = append(line.Body.Messages, batchMessage{Role: pick(g.r, []string{"system", "developer"}), Content: pick(g.r, systemPrompts)})
		}
		var content any = s.text
		if g.r.IntN(4) == 0 {
			content = []textPart{{Type: "text", Text: s.text}}
		}
		line.Body.Messages = append(line.Body.Messages, batchMessage{Role: "user", Content: content})
		switch g.r.IntN(5) {
		case 0, 1:
			line.Body.MaxTokens = pick(g.r, []int{256, 512, 1024})
		case 2:
			line.Body.MaxCompletionTokens = pick(g.r, []int{256, 512, 1024})
		}
		if g.r.IntN(4) == 0 {
			line.Body.Metadata = map[string]string{"project": pick(g.r, []string{"eval-v3", "support-replay", "docs-qa"})}
		}
		encodeJSONL(line, &buf)
	}
	return buf.Bytes()
}
