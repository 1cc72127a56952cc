package openai_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/llmtest"
	"github.com/promptcascade/promptcascade/internal/llm/openai"
	"github.com/promptcascade/promptcascade/internal/redact"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	llmtest.Run(t, harness(false))
}

// TestConformanceLegacyMaxTokens runs the suite against a server that wants
// max_tokens, configured with a base URL that already ends in /v1.
func TestConformanceLegacyMaxTokens(t *testing.T) {
	t.Parallel()
	llmtest.Run(t, harness(true))
}

func harness(legacy bool) llmtest.Harness {
	return llmtest.Harness{
		New: func(t testing.TB, env llmtest.Env) llm.Provider {
			base := env.BaseURL
			if legacy {
				base += "/v1/"
			}
			c, err := openai.New(openai.Config{
				Name: "groq", BaseURL: base, APIKey: env.APIKey, HTTPClient: env.HTTPClient,
				LegacyMaxTokens: legacy, Now: env.Now, MaxResponseBytes: env.MaxResponseBytes,
			})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		CheckRequest: func(t testing.TB, r *http.Request, body []byte, req llm.Request) {
			checkRequest(t, r, body, req, legacy)
		},
		Respond:          respond,
		HeaderRequestIDs: true,
		Extra:            extraCases(),
	}
}

func checkRequest(t testing.TB, r *http.Request, body []byte, req llm.Request, legacy bool) {
	t.Helper()
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		t.Errorf("request %s %s, want POST /v1/chat/completions", r.Method, r.URL.Path)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+llmtest.APIKey {
		t.Errorf("Authorization = %q, want the bearer key", got)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Errorf("request body is not a JSON object: %v", err)
		return
	}
	allowed := map[string]bool{"model": true, "messages": true, "max_completion_tokens": !legacy, "max_tokens": legacy}
	for k := range m {
		if !allowed[k] {
			t.Errorf("unexpected request field %q", k)
		}
	}
	var b struct {
		Model    string `json:"model"`
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
		MaxCompletionTokens *int `json:"max_completion_tokens"`
		MaxTokens           *int `json:"max_tokens"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Errorf("request body: %v", err)
		return
	}
	if b.Model != req.Model {
		t.Errorf("model = %q, want %q", b.Model, req.Model)
	}
	var want []string
	if req.System != "" {
		want = append(want, "system:"+req.System)
	}
	want = append(want, "user:"+req.Prompt)
	var got []string
	for _, msg := range b.Messages {
		got = append(got, msg.Role+":"+msg.Content)
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("messages = %q, want %q", got, want)
	}
	limit := b.MaxCompletionTokens
	if legacy {
		limit = b.MaxTokens
	}
	switch {
	case req.MaxTokens == 0 && limit != nil:
		t.Errorf("token limit %d sent for MaxTokens 0, want none", *limit)
	case req.MaxTokens > 0 && (limit == nil || *limit != req.MaxTokens):
		t.Errorf("token limit = %v, want %d", limit, req.MaxTokens)
	}
}

// respond renders a canonical situation as OpenAI (or Groq) would.
func respond(w http.ResponseWriter, r *http.Request, s llmtest.Situation) bool {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", s.RequestID)
	if s.ProviderRetry > 0 {
		w.Header().Set("X-Ratelimit-Reset-Requests", s.ProviderRetry.String())
		w.Header().Set("X-Ratelimit-Remaining-Requests", "0")
		w.Header().Set("X-Ratelimit-Reset-Tokens", "1s")
		w.Header().Set("X-Ratelimit-Remaining-Tokens", "5000")
	}
	if s.Kind == llmtest.KindError {
		return respondError(w, s)
	}
	if s.Usage != nil && s.Usage.CacheWrite > 0 {
		return false // OpenAI does not report cache writes
	}
	msg := map[string]any{"role": "assistant", "content": s.Text, "refusal": nil}
	if s.Text == "" {
		msg["content"] = nil
	}
	finish := map[llmtest.Finish]string{
		llmtest.FinishStop: "stop", llmtest.FinishLength: "length", llmtest.FinishContentFilter: "content_filter",
	}[s.Finish]
	body := map[string]any{
		"id": "chatcmpl-suite", "object": "chat.completion", "created": s.Now.Unix(), "model": "suite-model-1",
		"choices":            []any{map[string]any{"index": 0, "message": msg, "logprobs": nil, "finish_reason": finish}},
		"system_fingerprint": "fp_suite",
	}
	if u := s.Usage; u != nil {
		body["usage"] = map[string]any{
			"prompt_tokens": u.Input + u.CacheRead, "completion_tokens": u.Output,
			"total_tokens":              u.Input + u.CacheRead + u.Output,
			"prompt_tokens_details":     map[string]any{"cached_tokens": u.CacheRead, "audio_tokens": 0},
			"completion_tokens_details": map[string]any{"reasoning_tokens": u.Reasoning},
		}
	}
	json.NewEncoder(w).Encode(body)
	return true
}

func respondError(w http.ResponseWriter, s llmtest.Situation) bool {
	type e struct {
		status    int
		typ, code any
	}
	spec, ok := map[llm.Class]e{
		llm.ClassAuth:           {401, "invalid_request_error", "invalid_api_key"},
		llm.ClassPermission:     {403, "invalid_request_error", "unsupported_country_region_territory"},
		llm.ClassNotFound:       {404, "invalid_request_error", "model_not_found"},
		llm.ClassBadRequest:     {400, "invalid_request_error", nil},
		llm.ClassContextWindow:  {400, "invalid_request_error", "context_length_exceeded"},
		llm.ClassQuotaExhausted: {429, "insufficient_quota", "insufficient_quota"},
		llm.ClassRateLimited:    {429, "requests", "rate_limit_exceeded"},
		llm.ClassOverloaded:     {498, "capacity_exceeded", "capacity_exceeded"}, // Groq flex tier
		llm.ClassServerError:    {500, "server_error", nil},
	}[s.Class]
	if !ok {
		return false // no status means "timeout" in this protocol
	}
	w.WriteHeader(spec.status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"message": s.Message, "type": spec.typ, "param": nil, "code": spec.code,
	}})
	return true
}

func extraCases() []llmtest.Case {
	jsonReply := llmtest.JSONReply
	const id = "req_extra"
	hid := map[string]string{"X-Request-Id": id}
	as := llmtest.StatusAsSent
	return []llmtest.Case{
		{
			Name:   "vllm-flat-context-error-stays-bad-request",
			Handle: jsonReply(400, nil, `{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.","type":"BadRequestError","param":null,"code":400}`),
			// vLLM gives no structured code for context overflow, only text.
			Want: llmtest.Want{Class: llm.ClassBadRequest, HTTPStatus: as, MessageContains: "BadRequestError: This model's maximum context length"},
		},
		{
			Name:   "vllm-flat-not-found",
			Handle: jsonReply(404, nil, `{"object":"error","message":"The model `+"`x`"+` does not exist.","type":"NotFoundError","param":"model","code":404}`),
			Want:   llmtest.Want{Class: llm.ClassNotFound, HTTPStatus: as, MessageContains: "does not exist"},
		},
		{
			Name: "groq-429-standard-header-wins",
			Handle: jsonReply(429, map[string]string{"Retry-After": "2", "X-Ratelimit-Reset-Tokens": "7.66s", "X-Ratelimit-Remaining-Tokens": "0", "X-Request-Id": id},
				`{"error":{"message":"Rate limit reached for model on tokens per minute (TPM)","type":"tokens","code":"rate_limit_exceeded"}}`),
			Want: llmtest.Want{Class: llm.ClassRateLimited, HTTPStatus: as, RetryAfter: 2 * time.Second, RequestID: id, MessageContains: "rate_limit_exceeded: Rate limit reached"},
		},
		{
			Name: "reset-window-that-is-exhausted",
			Handle: jsonReply(429, map[string]string{
				"X-Ratelimit-Reset-Requests": "1s", "X-Ratelimit-Remaining-Requests": "10",
				"X-Ratelimit-Reset-Tokens": "6m0s", "X-Ratelimit-Remaining-Tokens": "0",
			}, `{"error":{"message":"slow down","type":"tokens","code":"rate_limit_exceeded"}}`),
			Want: llmtest.Want{Class: llm.ClassRateLimited, HTTPStatus: as, RetryAfter: 6 * time.Minute},
		},
		{
			Name: "reset-windows-without-remaining-take-latest",
			Handle: jsonReply(429, map[string]string{
				"X-Ratelimit-Reset-Requests": "1h2m3.5s", "X-Ratelimit-Reset-Tokens": "20ms",
			}, `{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}`),
			Want: llmtest.Want{Class: llm.ClassRateLimited, HTTPStatus: as, RetryAfter: time.Hour + 2*time.Minute + 3500*time.Millisecond},
		},
		{
			Name:   "spend-limit",
			Handle: jsonReply(429, hid, `{"error":{"message":"project spend limit reached","type":"invalid_request_error","code":"project_spend_limit_exceeded"}}`),
			Want:   llmtest.Want{Class: llm.ClassQuotaExhausted, HTTPStatus: as, RequestID: id},
		},
		{
			Name:   "content-filter-400",
			Handle: jsonReply(400, nil, `{"error":{"message":"The response was filtered","type":null,"param":"prompt","code":"content_filter"}}`),
			Want:   llmtest.Want{Class: llm.ClassContentFilter, HTTPStatus: as},
		},
		{
			Name: "refusal",
			Handle: jsonReply(200, hid, `{"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}],
				"usage":{"prompt_tokens":30,"completion_tokens":7}}`),
			Want: llmtest.Want{Class: llm.ClassContentFilter, HTTPStatus: as, RequestID: id, InputTokens: 30, OutputTokens: 7, MessageContains: "I can't help"},
		},
		{
			Name: "content-as-parts",
			Handle: jsonReply(200, hid, `{"choices":[{"index":0,"message":{"role":"assistant","content":[{"type":"text","text":"Par"},{"type":"text","text":"is"}]},"finish_reason":"stop"}],
				"usage":{"prompt_tokens":3,"completion_tokens":2}}`),
			Want: llmtest.Want{HTTPStatus: as, RequestID: id, Text: "Paris", FinishReason: "stop", InputTokens: 3, OutputTokens: 2},
		},
		{
			Name:   "no-choices",
			Handle: jsonReply(200, hid, `{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":0}}`),
			Want:   llmtest.Want{Class: llm.ClassEmptyResponse, HTTPStatus: as, RequestID: id, InputTokens: 3},
		},
		{
			Name:   "error-object-in-200",
			Handle: jsonReply(200, nil, `{"error":{"message":"upstream failed","type":"server_error"}}`),
			Want:   llmtest.Want{Class: llm.ClassServerError, HTTPStatus: as, MessageContains: "upstream failed"},
		},
		{
			Name:   "bare-string-error",
			Handle: jsonReply(503, nil, `{"error":"model is loading"}`),
			Want:   llmtest.Want{Class: llm.ClassServerError, HTTPStatus: as, MessageContains: "model is loading"},
		},
		{
			Name:   "fastapi-detail",
			Handle: jsonReply(404, nil, `{"detail":"Not Found"}`),
			Want:   llmtest.Want{Class: llm.ClassNotFound, HTTPStatus: as, MessageContains: "Not Found"},
		},
		{
			Name:   "groq-413-request-too-large",
			Handle: jsonReply(413, nil, `{"error":{"message":"Request too large for model in organization on tokens per minute (TPM): Limit 6000, Requested 9000","type":"tokens","code":"rate_limit_exceeded"}}`),
			Want:   llmtest.Want{Class: llm.ClassContextWindow, HTTPStatus: as},
		},
		{
			Name:   "unprocessable-422",
			Handle: jsonReply(422, nil, `{"error":{"message":"messages: field required","type":"invalid_request_error"}}`),
			Want:   llmtest.Want{Class: llm.ClassBadRequest, HTTPStatus: as},
		},
		{
			Name:   "reasoning-model-spent-budget",
			Handle: jsonReply(200, nil, `{"choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"length"}],"usage":{"prompt_tokens":10,"completion_tokens":64,"completion_tokens_details":{"reasoning_tokens":64}}}`),
			Want:   llmtest.Want{Class: llm.ClassEmptyResponse, HTTPStatus: as, InputTokens: 10, OutputTokens: 64},
		},
		{
			Name:   "tool-calls-finish-kept",
			Handle: jsonReply(200, nil, `{"choices":[{"index":0,"message":{"role":"assistant","content":"calling"},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`),
			Want:   llmtest.Want{HTTPStatus: as, Text: "calling", FinishReason: "tool_calls", InputTokens: 1, OutputTokens: 1},
		},
	}
}

func TestNoKeyNoAuthorizationHeader(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Header["Authorization"]; ok {
			t.Errorf("Authorization header sent without a key")
		}
		if got := r.Header.Get("OpenAI-Project"); got != "proj_123" {
			t.Errorf("extra header OpenAI-Project = %q", got)
		}
		io.WriteString(w, `{"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`)
	}))
	defer srv.Close()
	c, err := openai.New(openai.Config{Name: "ollama", BaseURL: srv.URL, HTTPClient: srv.Client(), Header: http.Header{"Openai-Project": {"proj_123"}}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Complete(context.Background(), llmtest.DefaultRequest)
	if err != nil || resp.Text != "hi" {
		t.Fatalf("Complete = %+v, %v", resp, err)
	}
}

func TestDefaultMaxTokensAndEstimatedUsage(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			MaxCompletionTokens int `json:"max_completion_tokens"`
		}
		json.NewDecoder(r.Body).Decode(&b)
		if b.MaxCompletionTokens != 256 {
			t.Errorf("max_completion_tokens = %d, want the configured default 256", b.MaxCompletionTokens)
		}
		io.WriteString(w, `{"choices":[{"message":{"content":"one two three"},"finish_reason":"stop"}]}`)
	}))
	defer srv.Close()
	words := func(s string) int { return len(strings.Fields(s)) }
	c, err := openai.New(openai.Config{BaseURL: srv.URL, HTTPClient: srv.Client(), DefaultMaxTokens: 256, CountTokens: words})
	if err != nil {
		t.Fatal(err)
	}
	req := llm.Request{Model: "m", System: "be brief", Prompt: "count to three please"}
	resp, err := c.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.UsageEstimated || resp.InputTokens != 6 || resp.OutputTokens != 3 {
		t.Errorf("estimated usage = %+v, want estimated 6 in / 3 out", resp)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, base string }{
		{"relative", "api.openai.com"},
		{"scheme", "ftp://host"},
		{"query", "https://host/?x=1"},
		{"unparsable with password", "https://user:pa ss@ho st/"},
		{"password in error", "ftp://user:hunter2secret@host/"},
	} {
		_, err := openai.New(openai.Config{BaseURL: tc.base})
		if err == nil {
			t.Errorf("%s: New(%q) succeeded", tc.name, tc.base)
			continue
		}
		if strings.Contains(err.Error(), "hunter2secret") || strings.Contains(err.Error(), "pa ss") {
			t.Errorf("%s: error leaks the password: %v", tc.name, err)
		}
	}
	if _, err := openai.New(openai.Config{DefaultMaxTokens: -1}); err == nil {
		t.Error("negative DefaultMaxTokens accepted")
	}
}

func TestEmptyModelIsBadRequest(t *testing.T) {
	t.Parallel()
	c, err := openai.New(openai.Config{BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Complete(context.Background(), llm.Request{Prompt: "x"})
	if llm.ClassOf(err) != llm.ClassBadRequest {
		t.Errorf("class = %q, want bad_request", llm.ClassOf(err))
	}
}

func TestPasswordInBaseURLRedacted(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pw, _ := r.BasicAuth()
		w.WriteHeader(401)
		io.WriteString(w, `{"error":{"message":"user `+user+` with password `+pw+` rejected","type":"invalid_request_error"}}`)
	}))
	defer srv.Close()
	base := strings.Replace(srv.URL, "http://", "http://proxyuser:proxy-pass-9876@", 1)
	c, err := openai.New(openai.Config{BaseURL: base, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Complete(context.Background(), llmtest.DefaultRequest)
	var le *llm.Error
	if !errors.As(err, &le) || le.Class != llm.ClassAuth {
		t.Fatalf("err = %v, want auth_error", err)
	}
	if strings.Contains(err.Error(), "proxy-pass-9876") {
		t.Errorf("password leaked: %v", err)
	}
	if !strings.Contains(le.Message, redact.Mark) {
		t.Errorf("Message = %q, want the echoed password redacted", le.Message)
	}
}

func TestLongMessageTruncated(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 2000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		io.WriteString(w, `{"error":{"message":"`+long+`","type":"invalid_request_error"}}`)
	}))
	defer srv.Close()
	c, _ := openai.New(openai.Config{BaseURL: srv.URL, HTTPClient: srv.Client()})
	_, err := c.Complete(context.Background(), llmtest.DefaultRequest)
	var le *llm.Error
	if !errors.As(err, &le) {
		t.Fatal(err)
	}
	if n := len([]rune(le.Message)); n != llm.MaxMessageLen {
		t.Errorf("message has %d runes, want %d", n, llm.MaxMessageLen)
	}
	if !strings.HasSuffix(le.Message, "…") {
		t.Errorf("truncated message should end with an ellipsis")
	}
}
