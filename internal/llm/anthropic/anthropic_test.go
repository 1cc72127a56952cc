package anthropic_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/anthropic"
	"github.com/promptcascade/promptcascade/internal/llm/llmtest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	llmtest.Run(t, llmtest.Harness{
		New: func(t testing.TB, env llmtest.Env) llm.Provider {
			c, err := anthropic.New(anthropic.Config{
				BaseURL: env.BaseURL, APIKey: env.APIKey, HTTPClient: env.HTTPClient,
				Now: env.Now, MaxResponseBytes: env.MaxResponseBytes,
			})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		CheckRequest:     checkRequest,
		Respond:          respond,
		HeaderRequestIDs: true,
		Extra:            extraCases(),
	})
}

func checkRequest(t testing.TB, r *http.Request, body []byte, req llm.Request) {
	t.Helper()
	if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
		t.Errorf("request %s %s, want POST /v1/messages", r.Method, r.URL.Path)
	}
	if got := r.Header.Get("X-Api-Key"); got != llmtest.APIKey {
		t.Errorf("x-api-key = %q, want the key", got)
	}
	if got := r.Header.Get("Anthropic-Version"); got != anthropic.DefaultVersion {
		t.Errorf("anthropic-version = %q, want %q", got, anthropic.DefaultVersion)
	}
	if got := r.Header.Get("Authorization"); got != "" {
		t.Errorf("Authorization header sent (%d bytes); Anthropic takes x-api-key", len(got))
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Errorf("request body is not a JSON object: %v", err)
		return
	}
	for k := range m {
		switch k {
		case "model", "max_tokens", "system", "messages":
		default:
			t.Errorf("unexpected request field %q (no sampling fields may be sent)", k)
		}
	}
	var b struct {
		Model     string  `json:"model"`
		MaxTokens *int    `json:"max_tokens"`
		System    *string `json:"system"`
		Messages  []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Errorf("request body: %v", err)
		return
	}
	if b.Model != req.Model {
		t.Errorf("model = %q, want %q", b.Model, req.Model)
	}
	wantMax := req.MaxTokens
	if wantMax == 0 {
		wantMax = anthropic.DefaultMaxTokens
	}
	if b.MaxTokens == nil || *b.MaxTokens != wantMax {
		t.Errorf("max_tokens = %v, want %d (it is required)", b.MaxTokens, wantMax)
	}
	switch {
	case req.System == "" && b.System != nil:
		t.Errorf("system = %q sent for an empty system prompt", *b.System)
	case req.System != "" && (b.System == nil || *b.System != req.System):
		t.Errorf("system = %v, want top-level %q", b.System, req.System)
	}
	if len(b.Messages) != 1 || b.Messages[0].Role != "user" || b.Messages[0].Content != req.Prompt {
		t.Errorf("messages = %+v, want one user message with the prompt", b.Messages)
	}
}

func respond(w http.ResponseWriter, r *http.Request, s llmtest.Situation) bool {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", s.RequestID)
	if s.ProviderRetry > 0 {
		w.Header().Set("Anthropic-Ratelimit-Requests-Reset", s.Now.Add(s.ProviderRetry).Format(time.RFC3339))
		w.Header().Set("Anthropic-Ratelimit-Requests-Remaining", "0")
		w.Header().Set("Anthropic-Ratelimit-Tokens-Reset", s.Now.Add(2*time.Second).Format(time.RFC3339))
		w.Header().Set("Anthropic-Ratelimit-Tokens-Remaining", "12000")
	}
	if s.Kind == llmtest.KindError {
		type e struct {
			status int
			typ    string
		}
		spec, ok := map[llm.Class]e{
			llm.ClassAuth:           {401, "authentication_error"},
			llm.ClassPermission:     {403, "permission_error"},
			llm.ClassNotFound:       {404, "not_found_error"},
			llm.ClassBadRequest:     {400, "invalid_request_error"},
			llm.ClassContextWindow:  {413, "request_too_large"},
			llm.ClassQuotaExhausted: {402, "billing_error"},
			llm.ClassRateLimited:    {429, "rate_limit_error"},
			llm.ClassOverloaded:     {529, "overloaded_error"},
			llm.ClassServerError:    {500, "api_error"},
			llm.ClassTimeout:        {504, "timeout_error"},
		}[s.Class]
		if !ok {
			return false
		}
		w.WriteHeader(spec.status)
		json.NewEncoder(w).Encode(map[string]any{
			"type":       "error",
			"error":      map[string]any{"type": spec.typ, "message": s.Message},
			"request_id": s.RequestID,
		})
		return true
	}
	stop := map[llmtest.Finish]string{
		llmtest.FinishStop: "end_turn", llmtest.FinishLength: "max_tokens", llmtest.FinishContentFilter: "refusal",
	}[s.Finish]
	content := []any{}
	if s.Text != "" {
		content = append(content, map[string]any{"type": "text", "text": s.Text})
	}
	body := map[string]any{
		"id": "msg_suite", "type": "message", "role": "assistant", "model": "suite-model-1",
		"content": content, "stop_reason": stop, "stop_sequence": nil,
	}
	if u := s.Usage; u != nil {
		body["usage"] = map[string]any{
			"input_tokens": u.Input, "output_tokens": u.Output,
			"cache_read_input_tokens": u.CacheRead, "cache_creation_input_tokens": u.CacheWrite,
			"service_tier": "standard",
		}
	}
	json.NewEncoder(w).Encode(body)
	return true
}

func extraCases() []llmtest.Case {
	reply := llmtest.JSONReply
	as := llmtest.StatusAsSent
	rfc := func(d time.Duration) string { return llmtest.Now.Add(d).Format(time.RFC3339) }
	const usage = `"usage":{"input_tokens":10,"output_tokens":5}`
	return []llmtest.Case{
		{
			Name: "thinking-blocks-skipped",
			Handle: reply(200, nil, `{"type":"message","content":[{"type":"thinking","thinking":"let me see","signature":"sig"},
				{"type":"text","text":"Par"},{"type":"tool_use","id":"t","name":"x","input":{}},{"type":"text","text":"is"}],"stop_reason":"end_turn",`+usage+`}`),
			Want: llmtest.Want{HTTPStatus: as, Text: "Paris", FinishReason: "stop", InputTokens: 10, OutputTokens: 5},
		},
		{
			Name:   "stop-sequence-is-stop",
			Handle: reply(200, nil, `{"type":"message","content":[{"type":"text","text":"ok"}],"stop_reason":"stop_sequence","stop_sequence":"END",`+usage+`}`),
			Want:   llmtest.Want{HTTPStatus: as, Text: "ok", FinishReason: "stop", InputTokens: 10, OutputTokens: 5},
		},
		{
			Name:   "tool-use-finish",
			Handle: reply(200, nil, `{"type":"message","content":[{"type":"text","text":"calling"}],"stop_reason":"tool_use",`+usage+`}`),
			Want:   llmtest.Want{HTTPStatus: as, Text: "calling", FinishReason: "tool_calls", InputTokens: 10, OutputTokens: 5},
		},
		{
			Name:   "refusal-with-partial-text",
			Handle: reply(200, map[string]string{"Request-Id": "req_r"}, `{"type":"message","content":[{"type":"text","text":"I"}],"stop_reason":"refusal",`+usage+`}`),
			Want:   llmtest.Want{Class: llm.ClassContentFilter, HTTPStatus: as, RequestID: "req_r", InputTokens: 10, OutputTokens: 5},
		},
		{
			Name: "monthly-spend-cap-429",
			Handle: reply(429, map[string]string{"Retry-After": "60"},
				`{"type":"error","error":{"type":"rate_limit_error","message":"monthly spend limit reached","details":{"error_code":"enforced_spend_limit_reached"}}}`),
			Want: llmtest.Want{Class: llm.ClassQuotaExhausted, HTTPStatus: as, MessageContains: "monthly spend limit"},
		},
		{
			Name:   "billing-error-400",
			Handle: reply(400, nil, `{"type":"error","error":{"type":"billing_error","message":"credit balance too low"}}`),
			Want:   llmtest.Want{Class: llm.ClassQuotaExhausted, HTTPStatus: as},
		},
		{
			// Only the text says "spend limit": left as bad_request on purpose.
			Name:   "user-spend-limit-text-only",
			Handle: reply(400, nil, `{"type":"error","error":{"type":"invalid_request_error","message":"You have reached your specified API usage limits. You will regain access on 2026-04-01 at 00:00 UTC."}}`),
			Want:   llmtest.Want{Class: llm.ClassBadRequest, HTTPStatus: as, MessageContains: "API usage limits"},
		},
		{
			// Only the text says "too long": left as bad_request on purpose.
			Name:   "prompt-too-long-text-only",
			Handle: reply(400, nil, `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}`),
			Want:   llmtest.Want{Class: llm.ClassBadRequest, HTTPStatus: as, MessageContains: "prompt is too long"},
		},
		{
			Name: "exhausted-input-token-window",
			Handle: reply(429, map[string]string{
				"Anthropic-Ratelimit-Requests-Reset": rfc(time.Second), "Anthropic-Ratelimit-Requests-Remaining": "49",
				"Anthropic-Ratelimit-Input-Tokens-Reset": rfc(45 * time.Second), "Anthropic-Ratelimit-Input-Tokens-Remaining": "0",
				"Anthropic-Ratelimit-Output-Tokens-Reset": rfc(5 * time.Second), "Anthropic-Ratelimit-Output-Tokens-Remaining": "100",
			}, `{"type":"error","error":{"type":"rate_limit_error","message":"input tokens per minute exceeded"}}`),
			Want: llmtest.Want{Class: llm.ClassRateLimited, HTTPStatus: as, RetryAfter: 45 * time.Second},
		},
		{
			Name: "reset-in-the-past",
			Handle: reply(429, map[string]string{
				"Anthropic-Ratelimit-Tokens-Reset": rfc(-10 * time.Second), "Anthropic-Ratelimit-Tokens-Remaining": "0",
			}, `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`),
			Want: llmtest.Want{Class: llm.ClassRateLimited, HTTPStatus: as, RetryAfter: 0},
		},
		{
			Name:   "request-id-from-body",
			Handle: reply(500, nil, `{"type":"error","error":{"type":"api_error","message":"Internal server error"},"request_id":"req_body_1"}`),
			Want:   llmtest.Want{Class: llm.ClassServerError, HTTPStatus: as, RequestID: "req_body_1"},
		},
		{
			Name:   "error-object-in-200",
			Handle: reply(200, nil, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`),
			Want:   llmtest.Want{Class: llm.ClassOverloaded, HTTPStatus: as, MessageContains: "Overloaded"},
		},
		{
			Name:   "overloaded-529-without-body",
			Handle: reply(529, nil, ``),
			Want:   llmtest.Want{Class: llm.ClassOverloaded, HTTPStatus: as},
		},
		{
			Name:   "model-context-window-exceeded-is-length",
			Handle: reply(200, nil, `{"type":"message","content":[{"type":"text","text":"partial"}],"stop_reason":"model_context_window_exceeded",`+usage+`}`),
			Want:   llmtest.Want{HTTPStatus: as, Text: "partial", FinishReason: "length", InputTokens: 10, OutputTokens: 5},
		},
	}
}

func TestVersionAndExtraHeaders(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Anthropic-Version"); got != "2099-01-01" {
			t.Errorf("anthropic-version = %q", got)
		}
		if got := r.Header.Get("Anthropic-Beta"); got != "some-beta" {
			t.Errorf("anthropic-beta = %q", got)
		}
		var b struct {
			MaxTokens int `json:"max_tokens"`
		}
		json.NewDecoder(r.Body).Decode(&b)
		if b.MaxTokens != 300 {
			t.Errorf("max_tokens = %d, want the configured default 300", b.MaxTokens)
		}
		io.WriteString(w, `{"type":"message","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn"}`)
	}))
	defer srv.Close()
	c, err := anthropic.New(anthropic.Config{
		BaseURL: srv.URL + "/v1", APIKey: "k-123456", HTTPClient: srv.Client(), Version: "2099-01-01", DefaultMaxTokens: 300,
		Header: http.Header{"Anthropic-Beta": {"some-beta"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Complete(context.Background(), llm.Request{Model: "claude-haiku-4-5", Prompt: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.UsageEstimated || resp.Text != "hi" {
		t.Errorf("resp = %+v, want text and estimated usage", resp)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	if _, err := anthropic.New(anthropic.Config{BaseURL: "localhost:8080"}); err == nil {
		t.Error("relative base URL accepted")
	}
	if _, err := anthropic.New(anthropic.Config{DefaultMaxTokens: -5}); err == nil {
		t.Error("negative DefaultMaxTokens accepted")
	}
}
