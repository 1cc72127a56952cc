package gemini_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/gemini"
	"github.com/promptcascade/promptcascade/internal/llm/llmtest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	llmtest.Run(t, llmtest.Harness{
		New: func(t testing.TB, env llmtest.Env) llm.Provider {
			c, err := gemini.New(gemini.Config{
				BaseURL: env.BaseURL, APIKey: env.APIKey, HTTPClient: env.HTTPClient,
				Now: env.Now, MaxResponseBytes: env.MaxResponseBytes,
			})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		CheckRequest: checkRequest,
		Respond:      respond,
		Extra:        extraCases(),
	})
}

type wirePart struct {
	Text string `json:"text"`
}

type wireContent struct {
	Role  string     `json:"role"`
	Parts []wirePart `json:"parts"`
}

func checkRequest(t testing.TB, r *http.Request, body []byte, req llm.Request) {
	t.Helper()
	wantPath := "/v1beta/models/" + strings.TrimPrefix(req.Model, "models/") + ":generateContent"
	if r.Method != http.MethodPost || r.URL.Path != wantPath {
		t.Errorf("request %s %s, want POST %s", r.Method, r.URL.Path, wantPath)
	}
	if got := r.Header.Get("X-Goog-Api-Key"); got != llmtest.APIKey {
		t.Errorf("x-goog-api-key = %q, want the key", got)
	}
	if r.URL.RawQuery != "" {
		t.Errorf("query %q sent; the key belongs in the header", r.URL.RawQuery)
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
		case "systemInstruction", "contents", "generationConfig":
		default:
			t.Errorf("unexpected request field %q", k)
		}
	}
	var b struct {
		SystemInstruction *wireContent  `json:"systemInstruction"`
		Contents          []wireContent `json:"contents"`
		GenerationConfig  *struct {
			MaxOutputTokens int `json:"maxOutputTokens"`
		} `json:"generationConfig"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Errorf("request body: %v", err)
		return
	}
	switch {
	case req.System == "" && b.SystemInstruction != nil:
		t.Errorf("systemInstruction sent for an empty system prompt")
	case req.System != "" && (b.SystemInstruction == nil || len(b.SystemInstruction.Parts) != 1 || b.SystemInstruction.Parts[0].Text != req.System):
		t.Errorf("systemInstruction = %+v, want one part %q", b.SystemInstruction, req.System)
	}
	if len(b.Contents) != 1 || b.Contents[0].Role != "user" || len(b.Contents[0].Parts) != 1 || b.Contents[0].Parts[0].Text != req.Prompt {
		t.Errorf("contents = %+v, want one user turn with the prompt", b.Contents)
	}
	switch {
	case req.MaxTokens == 0 && b.GenerationConfig != nil:
		t.Errorf("generationConfig sent for MaxTokens 0")
	case req.MaxTokens > 0 && (b.GenerationConfig == nil || b.GenerationConfig.MaxOutputTokens != req.MaxTokens):
		t.Errorf("generationConfig = %+v, want maxOutputTokens %d", b.GenerationConfig, req.MaxTokens)
	}
}

func rpcError(code int, status, message string, details ...any) map[string]any {
	e := map[string]any{"code": code, "message": message, "status": status}
	if len(details) > 0 {
		e["details"] = details
	}
	return map[string]any{"error": e}
}

func quotaFailure(quotaIDs ...string) map[string]any {
	var vs []any
	for _, id := range quotaIDs {
		vs = append(vs, map[string]any{
			"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
			"quotaId":     id, "quotaDimensions": map[string]any{"location": "global", "model": "suite-model-1"},
			"quotaValue": "20",
		})
	}
	return map[string]any{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": vs}
}

func retryInfo(d time.Duration) map[string]any {
	return map[string]any{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": d.String()}
}

func respond(w http.ResponseWriter, r *http.Request, s llmtest.Situation) bool {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	if s.Kind == llmtest.KindError {
		var details []any
		var body map[string]any
		status := 0
		switch s.Class {
		case llm.ClassAuth:
			status, body = 400, rpcError(400, "INVALID_ARGUMENT", s.Message, map[string]any{
				"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
			})
		case llm.ClassPermission:
			status, body = 400, rpcError(400, "FAILED_PRECONDITION", s.Message)
		case llm.ClassNotFound:
			status, body = 404, rpcError(404, "NOT_FOUND", s.Message)
		case llm.ClassBadRequest:
			status, body = 400, rpcError(400, "INVALID_ARGUMENT", s.Message)
		case llm.ClassQuotaExhausted:
			status, body = 429, rpcError(429, "RESOURCE_EXHAUSTED", s.Message,
				quotaFailure("GenerateRequestsPerDayPerProjectPerModel-FreeTier"), retryInfo(9*time.Hour))
		case llm.ClassRateLimited:
			details = append(details, quotaFailure("GenerateRequestsPerMinutePerProjectPerModel-FreeTier"))
			if s.ProviderRetry > 0 {
				details = append(details, retryInfo(s.ProviderRetry))
			}
			status, body = 429, rpcError(429, "RESOURCE_EXHAUSTED", s.Message, details...)
		case llm.ClassOverloaded:
			status, body = 503, rpcError(503, "UNAVAILABLE", s.Message)
		case llm.ClassServerError:
			status, body = 500, rpcError(500, "INTERNAL", s.Message)
		case llm.ClassTimeout:
			status, body = 504, rpcError(504, "DEADLINE_EXCEEDED", s.Message)
		default:
			return false // context_window has no structured form in this protocol
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(body)
		return true
	}
	if s.Usage != nil && s.Usage.CacheWrite > 0 {
		return false // Gemini reports no cache writes on generateContent
	}
	finish := map[llmtest.Finish]string{
		llmtest.FinishStop: "STOP", llmtest.FinishLength: "MAX_TOKENS", llmtest.FinishContentFilter: "SAFETY",
	}[s.Finish]
	cand := map[string]any{"finishReason": finish, "index": 0}
	var parts []any
	if s.Usage != nil && s.Usage.Reasoning > 0 {
		parts = append(parts, map[string]any{"text": "Considering the question…", "thought": true})
	}
	if s.Text != "" {
		parts = append(parts, map[string]any{"text": s.Text})
	}
	if len(parts) > 0 {
		cand["content"] = map[string]any{"role": "model", "parts": parts}
	} else if s.Finish != llmtest.FinishContentFilter {
		cand["content"] = map[string]any{"role": "model"}
	}
	if s.Finish == llmtest.FinishContentFilter {
		cand["safetyRatings"] = []any{map[string]any{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": true}}
	}
	body := map[string]any{"candidates": []any{cand}, "modelVersion": "suite-model-1", "responseId": s.RequestID}
	if u := s.Usage; u != nil {
		um := map[string]any{
			"promptTokenCount":     u.Input + u.CacheRead,
			"candidatesTokenCount": u.Output - u.Reasoning,
			"totalTokenCount":      u.Input + u.CacheRead + u.Output,
		}
		if u.Reasoning > 0 {
			um["thoughtsTokenCount"] = u.Reasoning
		}
		if u.CacheRead > 0 {
			um["cachedContentTokenCount"] = u.CacheRead
		}
		body["usageMetadata"] = um
	}
	json.NewEncoder(w).Encode(body)
	return true
}

func extraCases() []llmtest.Case {
	reply := llmtest.JSONReply
	as := llmtest.StatusAsSent
	prefixed := llmtest.DefaultRequest
	prefixed.Model = "models/gemini-2.5-flash"
	return []llmtest.Case{
		{
			Name:   "permission-denied-is-auth",
			Handle: reply(403, nil, `{"error":{"code":403,"message":"Your API key was reported as leaked.","status":"PERMISSION_DENIED"}}`),
			Want:   llmtest.Want{Class: llm.ClassAuth, HTTPStatus: as, MessageContains: "PERMISSION_DENIED: Your API key"},
		},
		{
			Name:   "unauthenticated",
			Handle: reply(401, nil, `{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`),
			Want:   llmtest.Want{Class: llm.ClassAuth, HTTPStatus: as},
		},
		{
			Name:   "prompt-blocked",
			Handle: reply(200, nil, `{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"usageMetadata":{"promptTokenCount":8,"totalTokenCount":8},"responseId":"resp_b"}`),
			Want:   llmtest.Want{Class: llm.ClassContentFilter, HTTPStatus: as, RequestID: "resp_b", InputTokens: 8, MessageContains: "PROHIBITED_CONTENT"},
		},
		{
			Name:   "recitation",
			Handle: reply(200, nil, `{"candidates":[{"content":{"role":"model","parts":[{"text":"It was the best"}]},"finishReason":"RECITATION"}],"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":4}}`),
			Want:   llmtest.Want{Class: llm.ClassContentFilter, HTTPStatus: as, InputTokens: 5, OutputTokens: 4},
		},
		{
			Name: "thinking-spent-budget",
			Handle: reply(200, nil, `{"candidates":[{"content":{"role":"model","parts":[{"text":"hmm","thought":true}]},"finishReason":"MAX_TOKENS"}],
				"usageMetadata":{"promptTokenCount":5,"thoughtsTokenCount":64}}`),
			Want: llmtest.Want{Class: llm.ClassEmptyResponse, HTTPStatus: as, InputTokens: 5, OutputTokens: 64},
		},
		{
			Name:   "no-candidates",
			Handle: reply(200, nil, `{"usageMetadata":{"promptTokenCount":5}}`),
			Want:   llmtest.Want{Class: llm.ClassEmptyResponse, HTTPStatus: as, InputTokens: 5},
		},
		{
			Name: "tool-use-prompt-tokens-billed-as-input",
			Handle: reply(200, nil, `{"candidates":[{"content":{"role":"model","parts":[{"text":"ok"}]},"finishReason":"STOP"}],
				"usageMetadata":{"promptTokenCount":100,"toolUsePromptTokenCount":20,"cachedContentTokenCount":30,"candidatesTokenCount":2}}`),
			Want: llmtest.Want{HTTPStatus: as, Text: "ok", FinishReason: "stop", InputTokens: 90, CacheReadTokens: 30, OutputTokens: 2},
		},
		{
			Name: "free-tier-limit-zero",
			Handle: reply(429, nil, `{"error":{"code":429,"message":"quota exceeded, limit: 0","status":"RESOURCE_EXHAUSTED","details":[
				{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier","quotaValue":"0"}]},
				{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}`),
			Want: llmtest.Want{Class: llm.ClassQuotaExhausted, HTTPStatus: as},
		},
		{
			// Several windows exceeded at once, one of them daily (seen from gemini-cli users).
			Name: "per-day-among-several-violations",
			Handle: reply(429, nil, `{"error":{"code":429,"message":"You exceeded your current quota","status":"RESOURCE_EXHAUSTED","details":[
				{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[
					{"quotaId":"GenerateContentInputTokensPerModelPerMinute-FreeTier"},
					{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"},
					{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},
				{"@type":"type.googleapis.com/google.rpc.Help","links":[{"url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]},
				{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"55s"}]}}`),
			Want: llmtest.Want{Class: llm.ClassQuotaExhausted, HTTPStatus: as},
		},
		{
			Name:   "rate-limited-fractional-retry-delay",
			Handle: reply(429, nil, `{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"20.223932614s"}]}}`),
			Want:   llmtest.Want{Class: llm.ClassRateLimited, HTTPStatus: as, RetryAfter: 20223932614 * time.Nanosecond},
		},
		{
			Name:   "rate-limited-without-details",
			Handle: reply(429, nil, `{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}`),
			Want:   llmtest.Want{Class: llm.ClassRateLimited, HTTPStatus: as},
		},
		{
			Name:   "array-wrapped-error",
			Handle: reply(503, nil, `[{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}]`),
			Want:   llmtest.Want{Class: llm.ClassOverloaded, HTTPStatus: as, MessageContains: "overloaded"},
		},
		{
			// Only the text says the input is too long: left as bad_request.
			Name:   "input-too-long-text-only",
			Handle: reply(400, nil, `{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}`),
			Want:   llmtest.Want{Class: llm.ClassBadRequest, HTTPStatus: as},
		},
		{
			Name:    "model-with-models-prefix",
			Request: &prefixed,
			Handle:  reply(200, nil, `{"candidates":[{"content":{"role":"model","parts":[{"text":"ok"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":1},"responseId":"r1"}`),
			Want:    llmtest.Want{HTTPStatus: as, Text: "ok", FinishReason: "stop", RequestID: "r1", InputTokens: 1, OutputTokens: 1},
		},
		{
			Name:   "error-object-in-200",
			Handle: reply(200, nil, `{"error":{"code":500,"message":"internal","status":"INTERNAL"}}`),
			Want:   llmtest.Want{Class: llm.ClassServerError, HTTPStatus: as},
		},
	}
}

func TestDefaultMaxTokensAndBaseSuffix(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1beta/models/gemini-2.5-flash:generateContent" {
			t.Errorf("path = %s", r.URL.Path)
		}
		var b struct {
			GenerationConfig struct {
				MaxOutputTokens int `json:"maxOutputTokens"`
			} `json:"generationConfig"`
		}
		json.NewDecoder(r.Body).Decode(&b)
		if b.GenerationConfig.MaxOutputTokens != 500 {
			t.Errorf("maxOutputTokens = %d, want the configured default 500", b.GenerationConfig.MaxOutputTokens)
		}
		io.WriteString(w, `{"candidates":[{"content":{"parts":[{"text":"hi"}]},"finishReason":"STOP"}]}`)
	}))
	defer srv.Close()
	c, err := gemini.New(gemini.Config{BaseURL: srv.URL + "/v1beta/", APIKey: "AIza-test-key", HTTPClient: srv.Client(), DefaultMaxTokens: 500})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Complete(context.Background(), llm.Request{Model: "gemini-2.5-flash", Prompt: "hi"})
	if err != nil || resp.Text != "hi" || !resp.UsageEstimated {
		t.Fatalf("Complete = %+v, %v", resp, err)
	}
}
