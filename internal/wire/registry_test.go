package wire_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/wire"
)

// seen is one request a recording server received.
type seen struct {
	path   string
	query  string
	header http.Header
	body   map[string]any
}

// recorder answers every provider's success shape by path and records the requests.
type recorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		data, _ := io.ReadAll(req.Body)
		var body map[string]any
		_ = json.Unmarshal(data, &body)
		r.mu.Lock()
		r.reqs = append(r.reqs, seen{path: req.URL.Path, query: req.URL.RawQuery, header: req.Header.Clone(), body: body})
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(req.URL.Path, "/v1/chat/completions"):
			io.WriteString(w, `{"choices":[{"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}`)
		case strings.HasSuffix(req.URL.Path, "/v1/messages"):
			io.WriteString(w, `{"type":"message","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}`)
		case strings.Contains(req.URL.Path, ":generateContent"):
			io.WriteString(w, `{"candidates":[{"content":{"parts":[{"text":"ok"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1}}`)
		default:
			http.NotFound(w, req)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) only(t *testing.T) seen {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(r.reqs))
	}
	return r.reqs[0]
}

// TestRegistryBuildsEveryProviderFromRoutes: each provider the routes use is
// built with its own key, auth header, version header, base URL and
// max-tokens field; named servers read their key from the variable the
// routes file names.
func TestRegistryBuildsEveryProviderFromRoutes(t *testing.T) {
	t.Parallel()
	openai, anthropic, gemini, groq, vllm, ollama := newRecorder(t), newRecorder(t), newRecorder(t), newRecorder(t), newRecorder(t), newRecorder(t)
	routes := `
providers:
  vllm:   {base_url: "` + vllm.srv.URL + `/v1", api_key_env: TEST_VLLM_KEY}
  ollama: {base_url: "` + ollama.srv.URL + `", legacy_max_tokens: true}
tiers:
  simple:   [openai/gpt-4o-mini, anthropic/claude-haiku-4-5, gemini/gemini-2.5-flash]
  moderate: [groq/llama-3.3-70b-versatile, vllm/meta-llama/Llama-3.1-8B-Instruct]
  complex:  [ollama/qwen2.5:7b]
models:
  vllm/meta-llama/Llama-3.1-8B-Instruct: {input_cost_per_mtok: 0.1, output_cost_per_mtok: 0.1}
  ollama/qwen2.5:7b: {input_cost_per_mtok: 0, output_cost_per_mtok: 0}
`
	rt, err := config.ParseRoutes("test.yaml", strings.NewReader(routes), pricing.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	keys := config.ProviderKeys{
		OpenAIKey: "sk-test-openai", OpenAIBaseURL: openai.srv.URL + "/v1",
		AnthropicKey: "sk-ant-test", AnthropicBaseURL: anthropic.srv.URL, AnthropicVersion: "2023-06-01",
		GeminiKey: "AIza-test-gemini", GeminiBaseURL: gemini.srv.URL,
		GroqKey: "gsk_test", GroqBaseURL: groq.srv.URL + "/openai",
	}
	lookup := func(name string) (string, bool) {
		if name == "TEST_VLLM_KEY" {
			return "vllm-test-key", true
		}
		return "", false
	}
	reg, err := wire.Registry(rt, keys, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(reg.Names(), ","); got != "anthropic,gemini,groq,ollama,openai,vllm" {
		t.Fatalf("registered %s", got)
	}
	for _, model := range []string{"openai/gpt-4o-mini", "anthropic/claude-haiku-4-5", "gemini/gemini-2.5-flash",
		"groq/llama-3.3-70b-versatile", "vllm/meta-llama/Llama-3.1-8B-Instruct", "ollama/qwen2.5:7b"} {
		p, id, err := reg.Resolve(model)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := p.Complete(context.Background(), llm.Request{Model: id, Prompt: "hi", MaxTokens: 32})
		if err != nil || resp.Text != "ok" {
			t.Fatalf("%s: %q, %v", model, resp.Text, err)
		}
	}

	check := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	r := openai.only(t)
	check("openai path", r.path, "/v1/chat/completions")
	check("openai auth", r.header.Get("Authorization"), "Bearer sk-test-openai")
	check("openai model", r.body["model"], "gpt-4o-mini")
	check("openai max_completion_tokens", r.body["max_completion_tokens"], float64(32))
	check("openai max_tokens", r.body["max_tokens"], nil)

	r = anthropic.only(t)
	check("anthropic path", r.path, "/v1/messages")
	check("anthropic x-api-key", r.header.Get("X-Api-Key"), "sk-ant-test")
	check("anthropic-version", r.header.Get("Anthropic-Version"), "2023-06-01")
	check("anthropic authorization", r.header.Get("Authorization"), "")
	check("anthropic max_tokens", r.body["max_tokens"], float64(32))

	r = gemini.only(t)
	check("gemini path", r.path, "/v1beta/models/gemini-2.5-flash:generateContent")
	check("gemini x-goog-api-key", r.header.Get("X-Goog-Api-Key"), "AIza-test-gemini")
	check("gemini query (no key in the URL)", r.query, "")

	r = groq.only(t)
	check("groq path", r.path, "/openai/v1/chat/completions")
	check("groq auth", r.header.Get("Authorization"), "Bearer gsk_test")
	check("groq model", r.body["model"], "llama-3.3-70b-versatile")

	r = vllm.only(t)
	check("vllm path", r.path, "/v1/chat/completions")
	check("vllm auth", r.header.Get("Authorization"), "Bearer vllm-test-key")
	check("vllm model", r.body["model"], "meta-llama/Llama-3.1-8B-Instruct")

	r = ollama.only(t)
	check("ollama auth", r.header.Get("Authorization"), "")
	check("ollama model", r.body["model"], "qwen2.5:7b")
	check("ollama max_tokens (legacy)", r.body["max_tokens"], float64(32))
	check("ollama max_completion_tokens", r.body["max_completion_tokens"], nil)
}

func TestRegistryRefusesMissingKeys(t *testing.T) {
	t.Parallel()
	rt, err := config.LoadRoutes("../../routes/real.yaml", pricing.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	none := func(string) (string, bool) { return "", false }
	_, err = wire.Registry(rt, config.ProviderKeys{OpenAIKey: "sk-x", GroqKey: "gsk_x"}, none)
	if err == nil || !strings.Contains(err.Error(), "ANTHROPIC_API_KEY") || !strings.Contains(err.Error(), "anthropic/claude-") {
		t.Fatalf("err = %v, want it to name ANTHROPIC_API_KEY and the models that need it", err)
	}
	// A base-URL override (a local proxy) needs no key.
	if _, err := wire.Registry(rt, config.ProviderKeys{OpenAIKey: "sk-x", GroqKey: "gsk_x", AnthropicBaseURL: "http://127.0.0.1:9"}, none); err != nil {
		t.Fatalf("with ANTHROPIC_BASE_URL and no key: %v", err)
	}
	// A bad base URL is refused without echoing a password in it.
	_, err = wire.Registry(rt, config.ProviderKeys{OpenAIKey: "sk-x", GroqKey: "gsk_x", AnthropicKey: "k",
		AnthropicBaseURL: "ftp://user:hunter2-secret@example.invalid"}, none)
	if err == nil || strings.Contains(err.Error(), "hunter2-secret") {
		t.Fatalf("err = %v, want a refusal without the password", err)
	}
}

func TestRegistryNeedsKeysOnlyForProvidersInUse(t *testing.T) {
	t.Parallel()
	r, err := config.ParseRoutes("r.yaml", strings.NewReader(`
tiers:
  simple:   [sim/small, openai/gpt-4o-mini]
  moderate: [anthropic/claude-sonnet-4-5]
  complex:  [anthropic/claude-sonnet-4-5]
`), pricing.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	none := func(string) (string, bool) { return "", false }
	_, err = wire.Registry(r, config.ProviderKeys{AnthropicKey: "k"}, none)
	if err == nil || !strings.Contains(err.Error(), "OPENAI_API_KEY") || !strings.Contains(err.Error(), "openai/gpt-4o-mini") {
		t.Fatalf("err = %v, want it to name OPENAI_API_KEY and the model", err)
	}
	reg, err := wire.Registry(r, config.ProviderKeys{AnthropicKey: "k", OpenAIKey: "k"}, none)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(reg.Names(), ","); got != "anthropic,openai,sim" {
		t.Fatalf("registered %s, want anthropic,openai,sim (no gemini or groq: unused)", got)
	}
	// A base-URL override (a local server) needs no key.
	if _, err := wire.Registry(r, config.ProviderKeys{AnthropicKey: "k", OpenAIBaseURL: "http://127.0.0.1:1"}, none); err != nil {
		t.Fatalf("with OPENAI_BASE_URL and no key: %v", err)
	}
}

func TestDefaultRoutesBuildACascade(t *testing.T) {
	t.Parallel()
	r, err := config.LoadRoutes("", pricing.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wire.Cascade(r, config.ProviderKeys{}, func(string) (string, bool) { return "", false }, 1, nil); err != nil {
		t.Fatalf("default routes do not build a cascade: %v", err)
	}
	s := wire.CascadeSettings(r, 1)
	if s.Cooldown.Failures != 5 || s.Cooldown.Period != 30*time.Second || s.Backoff.Base != 200*time.Millisecond {
		t.Errorf("cascade settings = %+v %+v, want the default routes' cooldown and backoff", s.Cooldown, s.Backoff)
	}
	sims, err := wire.SimModels(r)
	if err != nil {
		t.Fatal(err)
	}
	if h := sims["claude-haiku"]; h.Latency != 40*time.Millisecond || h.Capability != 0.55 || h.TimeoutRate != 0.002 {
		t.Errorf("sim/claude-haiku = %+v, want the file's latency and capability over the simulator's default timeout_rate", h)
	}
}

func TestSimModelOutOfRangeNamesLineAndKey(t *testing.T) {
	t.Parallel()
	r, err := config.ParseRoutes("r.yaml", strings.NewReader(`tiers:
  simple: [sim/small]
  moderate: [sim/small]
  complex: [sim/small]
models:
  sim/small:
    error_rate: 0.6
    timeout_rate: 0.6
`), pricing.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	_, err = wire.SimModels(r)
	if err == nil || !strings.HasPrefix(err.Error(), "r.yaml:6: models.sim/small: error_rate + rate_limit_rate + timeout_rate") {
		t.Fatalf("err = %v, want it to name r.yaml:6 and models.sim/small", err)
	}
}
