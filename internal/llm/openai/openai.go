// Package openai is a thin net/http client for the OpenAI Chat Completions API
// (POST {base}/v1/chat/completions) and for the many servers that speak it:
// Groq (https://api.groq.com/openai), vLLM, Ollama, Together, LiteLLM and
// company proxies. It implements llm.Provider.
//
// A call sends one optional system message and one user message, reads the
// first choice's text, the finish reason and the usage (cached prompt tokens
// are reported as CacheReadTokens and not counted again in InputTokens), and
// returns every failure as an *llm.Error whose Class is decided from the HTTP
// status and the structured error code, never from message text:
//
//	401, code invalid_api_key                → auth_error
//	403                                      → permission
//	404, code model_not_found                → not_found
//	400 code context_length_exceeded, 413    → context_window
//	400 code content_filter, finish content_filter, refusal → content_filter
//	other 400, 422                           → bad_request
//	429 code/type insufficient_quota, code *_spend_limit_exceeded,
//	    billing_hard_limit_reached, billing_not_active → quota_exhausted
//	other 429                                → rate_limited
//	498 (Groq flex capacity)                 → overloaded
//	500, 502, 503, 504, other 5xx            → server_error
//	200 with no text                         → empty_response
//
// Retry hints come from retry-after-ms, retry-after (seconds or HTTP date),
// and else from x-ratelimit-reset-requests / x-ratelimit-reset-tokens
// ("1s", "6m0s", "20ms"), preferring the window whose x-ratelimit-remaining-*
// header is 0. Both error body shapes are understood: {"error":{...}} and
// older vLLM's flat {"object":"error","message":...}.
//
// The API key is sent only in the Authorization header (omitted when empty,
// for local servers) and is replaced by "[REDACTED]" in every error, even when
// a server echoes it back.
package openai

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
)

// DefaultBaseURL is OpenAI's API host. Groq's is "https://api.groq.com/openai".
const DefaultBaseURL = "https://api.openai.com"

// Config configures a Client. Only the zero value's defaults are needed for
// OpenAI itself (plus an API key).
type Config struct {
	// Name is the provider name reported in errors ("openai", "groq",
	// "vllm", ...). Default "openai".
	Name string
	// BaseURL is the server root; the client posts to BaseURL+"/v1/chat/completions".
	// A trailing "/v1" is tolerated and dropped. Default DefaultBaseURL.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer ..."; when empty no
	// Authorization header is sent (local vLLM or Ollama).
	APIKey string
	// LegacyMaxTokens sends "max_tokens" instead of "max_completion_tokens",
	// for servers that predate the newer field.
	LegacyMaxTokens bool
	// DefaultMaxTokens is sent when a Request has MaxTokens == 0. Zero means
	// send no limit (the model's default).
	DefaultMaxTokens int
	// Header holds extra headers sent with every request (OpenAI-Organization,
	// OpenAI-Project, a proxy's routing header). Values are treated as secrets
	// and never appear in errors.
	Header http.Header

	// HTTPClient, MaxResponseBytes, CountTokens (usage for servers that
	// report none) and Now (the clock for Retry-After dates) are as in
	// llm.ClientConfig.
	HTTPClient       *http.Client
	MaxResponseBytes int64
	CountTokens      func(string) int
	Now              func() time.Time
}

// Client calls one OpenAI-compatible server. It is safe for concurrent use.
type Client struct {
	t               *llm.Transport
	legacyMaxTokens bool
}

var _ llm.Provider = (*Client)(nil)

// New checks cfg, fills its defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	t, err := llm.NewTransport(llm.ClientConfig{
		Name: cfg.Name, BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, HTTPClient: cfg.HTTPClient,
		DefaultMaxTokens: cfg.DefaultMaxTokens, Header: cfg.Header, MaxResponseBytes: cfg.MaxResponseBytes,
		CountTokens: cfg.CountTokens, Now: cfg.Now,
	}, llm.Protocol{
		Name: "openai", BaseURL: DefaultBaseURL, VersionPath: "/v1",
		KeyHeader: "Authorization", KeyPrefix: "Bearer ",
		RequestIDHeader: "X-Request-Id",
		ParseError:      func(ex llm.Exchange) llm.ErrorReply { return parseErrorBody(ex.Body).reply(ex.Status) },
		Quota:           quotaHeaders,
	})
	if err != nil {
		return nil, err
	}
	return &Client{t: t, legacyMaxTokens: cfg.LegacyMaxTokens}, nil
}

// Name returns the provider name used in errors.
func (c *Client) Name() string { return c.t.Name() }

// Complete sends one chat completion. On content_filter and empty_response
// errors the returned Response still carries the usage that was billed.
func (c *Client) Complete(ctx context.Context, req llm.Request) (llm.Response, error) {
	ex, err := c.t.Post(ctx, "/v1/chat/completions", req.Model, c.wireRequest(req))
	if err != nil {
		return llm.Response{}, err
	}
	resp, err := c.parse(req, ex)
	resp.Quota = c.t.Quota(ex.Header)
	return resp, err
}

func (c *Client) wireRequest(req llm.Request) chatRequest {
	w := chatRequest{Model: req.Model}
	if req.System != "" {
		w.Messages = append(w.Messages, message{Role: "system", Content: req.System})
	}
	w.Messages = append(w.Messages, message{Role: "user", Content: req.Prompt})
	if max := c.t.MaxTokens(req); max > 0 {
		if c.legacyMaxTokens {
			w.MaxTokens = max
		} else {
			w.MaxCompletionTokens = max
		}
	}
	return w
}

func (c *Client) parse(req llm.Request, ex llm.Exchange) (llm.Response, error) {
	var cr chatResponse
	if err := json.Unmarshal(ex.Body, &cr); err != nil {
		return llm.Response{}, c.t.Malformed(req.Model, ex, err)
	}
	if f, ok := parseErrorValue(cr.Error); ok {
		// A 2xx that carries an error object (some proxies do this).
		return llm.Response{}, c.t.ReplyError(req.Model, ex, f.reply(ex.Status))
	}
	resp := llm.Response{HTTPStatus: ex.Status, RequestID: c.t.RequestID(ex.Header)}
	if cr.Usage != nil {
		cached := 0
		if cr.Usage.PromptTokensDetails != nil {
			cached = cr.Usage.PromptTokensDetails.CachedTokens
		}
		resp.InputTokens = max(cr.Usage.PromptTokens-cached, 0)
		resp.CacheReadTokens = cached
		resp.OutputTokens = cr.Usage.CompletionTokens
	}
	fail := func(class llm.Class, msg string) (llm.Response, error) {
		return resp, c.t.AnswerError(class, req.Model, resp, msg)
	}
	if len(cr.Choices) == 0 {
		c.estimate(&resp, req, cr.Usage == nil)
		return fail(llm.ClassEmptyResponse, "response has no choices")
	}
	ch := cr.Choices[0]
	resp.FinishReason = ch.FinishReason
	text, err := ch.Message.text()
	if err != nil {
		return llm.Response{}, c.t.Malformed(req.Model, ex, err)
	}
	resp.Text = text
	c.estimate(&resp, req, cr.Usage == nil)
	switch {
	case ch.FinishReason == "content_filter":
		return fail(llm.ClassContentFilter, "finish_reason content_filter")
	case strings.TrimSpace(text) == "" && ch.Message.Refusal != nil && *ch.Message.Refusal != "":
		return fail(llm.ClassContentFilter, c.t.Clean("refusal: "+*ch.Message.Refusal))
	case strings.TrimSpace(text) == "":
		return fail(llm.ClassEmptyResponse, fmt.Sprintf("no text in response (finish_reason %q)", ch.FinishReason))
	}
	return resp, nil
}

func (c *Client) estimate(resp *llm.Response, req llm.Request, missing bool) {
	if missing {
		c.t.EstimateUsage(resp, req)
	}
}

// reply reduces an error body to what the error reports.
func (f errorFields) reply(status int) llm.ErrorReply {
	return llm.ErrorReply{Class: classify(status, f), Label: f.label(), Message: f.message, RetryHint: retryHint}
}

// classify maps an error response to a class: structured code and type
// first, then the HTTP status.
func classify(status int, f errorFields) llm.Class {
	switch f.code {
	case "insufficient_quota", "organization_spend_limit_exceeded", "project_spend_limit_exceeded",
		"billing_hard_limit_reached", "billing_not_active":
		return llm.ClassQuotaExhausted
	case "context_length_exceeded", "string_above_max_length":
		return llm.ClassContextWindow
	case "model_not_found":
		return llm.ClassNotFound
	case "invalid_api_key":
		return llm.ClassAuth
	case "content_filter", "content_policy_violation":
		return llm.ClassContentFilter
	}
	if f.typ == "insufficient_quota" {
		return llm.ClassQuotaExhausted
	}
	return llm.ReplyClass(status)
}

var rateWindows = []llm.RateWindow{
	{Reset: "X-Ratelimit-Reset-Requests", Remaining: "X-Ratelimit-Remaining-Requests"},
	{Reset: "X-Ratelimit-Reset-Tokens", Remaining: "X-Ratelimit-Remaining-Tokens"},
}

// quotaHeaders are OpenAI's (and Groq's) x-ratelimit-* headers; the resets
// are durations until the window is full again ("1s", "6m0s", "20ms").
var quotaHeaders = llm.QuotaHeaders{
	Requests:   llm.QuotaNames{Limit: "X-Ratelimit-Limit-Requests", Remaining: "X-Ratelimit-Remaining-Requests", Reset: "X-Ratelimit-Reset-Requests"},
	Tokens:     llm.QuotaNames{Limit: "X-Ratelimit-Limit-Tokens", Remaining: "X-Ratelimit-Remaining-Tokens", Reset: "X-Ratelimit-Reset-Tokens"},
	ParseReset: func(v string, _ time.Time) (time.Duration, bool) { return llm.ParseResetDuration(v) },
}

// retryHint reads the x-ratelimit-reset-* windows ("1s", "6m0s", "20ms").
func retryHint(h http.Header, _ time.Time) (time.Duration, bool) {
	return llm.WindowRetryAfter(h, llm.ParseResetDuration, rateWindows...)
}
