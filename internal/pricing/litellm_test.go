package pricing

import (
	"os"
	"strings"
	"testing"
)

func TestLoadLiteLLM(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/litellm_small.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab := New()
	tab.Set("openai/gpt-4o", Price{InputPerMTok: 99}) // overridden by the file
	tab.Set("keep/me", Price{InputPerMTok: 1})        // untouched
	if err := tab.LoadLiteLLM(f); err != nil {
		t.Fatal(err)
	}
	want := map[string]Price{
		"openai/gpt-4o": {InputPerMTok: 2.5, OutputPerMTok: 10, CacheReadPerMTok: 1.25, ContextWindow: 128000, MaxOutputTokens: 16384},
		"anthropic/claude-haiku-4-5-20251001": {InputPerMTok: 1, OutputPerMTok: 5, CacheReadPerMTok: 0.1, CacheWritePerMTok: 1.25,
			ContextWindow: 200000, MaxOutputTokens: 64000},
		"groq/llama-3.3-70b-versatile":               {InputPerMTok: 0.59, OutputPerMTok: 0.79, ContextWindow: 128000, MaxOutputTokens: 32768},
		"gemini/gemini-2.5-flash":                    {InputPerMTok: 0.3, OutputPerMTok: 2.5, CacheReadPerMTok: 0.03, ContextWindow: 1048576, MaxOutputTokens: 65535},
		"vertex_ai-language-models/gemini-2.5-flash": {InputPerMTok: 0.3, OutputPerMTok: 2.5, ContextWindow: 1048576},
		// the explicit "openai/gpt-4o-mini" key wins over the later bare "gpt-4o-mini"
		"openai/gpt-4o-mini":            {InputPerMTok: 0.15, OutputPerMTok: 0.6, ContextWindow: 128000},
		"openai/text-embedding-3-small": {InputPerMTok: 0.02, ContextWindow: 8191},
		"keep/me":                       {InputPerMTok: 1},
	}
	for m, w := range want {
		if got, ok := tab.Lookup(m); !ok || got != w {
			t.Errorf("Lookup(%q) = %+v, %v; want %+v", m, got, ok, w)
		}
	}
	for _, m := range tab.Models() {
		if _, ok := want[m]; !ok {
			t.Errorf("unexpected model %q", m)
		}
	}
}

func TestLoadLiteLLMErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"not json", `nope`, "litellm file"},
		{"array", `[]`, "JSON object"},
		{"truncated", `{"gpt-4o": {"input_cost_per_token": 1e-6,`, "gpt-4o"},
		{"price is a string", `{"gpt-4o": {"input_cost_per_token": "cheap", "litellm_provider": "openai"}}`, `"gpt-4o"`},
		{"window is a string", `{"gpt-x": {"input_cost_per_token": 1e-6, "max_input_tokens": "lots", "litellm_provider": "openai"}}`, `"gpt-x"`},
		{"negative price", `{"m1": {"input_cost_per_token": -1e-6, "litellm_provider": "openai"}}`, `"m1"`},
		{"fractional window", `{"m2": {"input_cost_per_token": 1e-6, "max_input_tokens": 1.5, "litellm_provider": "openai"}}`, `"m2"`},
		{"no provider", `{"bare": {"input_cost_per_token": 1e-6}}`, `"bare"`},
		{"entry not object", `{"m3": 7}`, `"m3"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := New()
			err := tab.LoadLiteLLM(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %s", err, tt.want)
			}
			if len(tab.Models()) != 0 {
				t.Errorf("a failed load changed the table: %v", tab.Models())
			}
		})
	}
}
