package classify

import (
	"strings"
	"testing"
)

var benchPrompts = map[string]string{
	"short": "What is the capital of France?",
	"article": "Analyze the tradeoffs between LORA and full fine-tuning for a 70B parameter model, " +
		"compare memory usage and downstream task performance",
	"long": strings.Repeat("We operate a multi-tenant analytics platform on Postgres and want to "+
		"understand the trade-offs of moving hot tables to a columnar store. Explain the implications "+
		"for ingestion latency, write amplification and cost, and design a migration plan. ", 8),
	"unicode": strings.Repeat("Объясните, как работает градиентный спуск — 解释梯度下降 — write a summary. ", 6),
}

func BenchmarkClassify(b *testing.B) {
	c := Default()
	for _, name := range []string{"short", "article", "long", "unicode"} {
		text := benchPrompts[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				c.Classify(text)
			}
		})
	}
}
