// Package anthropic is a thin net/http client for Anthropic's Messages API
// (POST {base}/v1/messages). It implements llm.Provider.
//
// A call sends the system prompt as the top-level "system" string (omitted
// when empty), one user message, and always "max_tokens" (the API requires
// it: Request.MaxTokens, else Config.DefaultMaxTokens, else 1024). It sends no
// sampling fields (temperature, top_p), which newer models reject in
// combination. The answer is the concatenation of the response's "text"
// content blocks (thinking and tool blocks are skipped); usage maps
// input_tokens, output_tokens, cache_read_input_tokens and
// cache_creation_input_tokens one to one.
//
// Failures are *llm.Error, classified by the error body's "type" and the HTTP
// status, never by message text:
//
//	authentication_error (401)                     → auth_error
//	permission_error (403)                         → permission
//	not_found_error (404)                          → not_found
//	invalid_request_error (400)                    → bad_request
//	request_too_large (413)                        → context_window
//	billing_error (402)                            → quota_exhausted
//	rate_limit_error (429) with details.error_code
//	    enforced_spend_limit_reached               → quota_exhausted
//	other rate_limit_error (429)                   → rate_limited
//	overloaded_error (529)                         → overloaded
//	api_error (500), other 5xx                     → server_error
//	timeout_error (504)                            → timeout
//	stop_reason refusal                            → content_filter
//	200 with no text                               → empty_response
//
// Two cases are left as bad_request on purpose, because the only signal is the
// message text: a prompt longer than the model's context ("prompt is too
// long: N tokens > M maximum") and a user-set spend limit ("You have reached
// your specified API usage limits"). Callers avoid the first by checking the
// context window before the call.
//
// Retry hints come from retry-after-ms and retry-after, else from the
// anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-reset
// RFC 3339 times (measured against Config.Now), preferring the windows whose
// -remaining header is 0. The request id is the request-id header (or the
// error body's request_id). The API key travels only in x-api-key and is
// replaced by "[REDACTED]" in every error.
package anthropic

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
)

// Defaults.
const (
	DefaultBaseURL   = "https://api.anthropic.com"
	DefaultVersion   = "2023-06-01"
	DefaultMaxTokens = 1024
)

// Config configures a Client.
type Config struct {
	// Name is the provider name reported in errors. Default "anthropic".
	Name string
	// BaseURL is the server root; the client posts to BaseURL+"/v1/messages".
	// A trailing "/v1" is tolerated. Default DefaultBaseURL.
	BaseURL string
	// APIKey is sent as x-api-key (omitted when empty; the server then
	// answers 401, an auth_error).
	APIKey string
	// Version is the anthropic-version header. Default DefaultVersion.
	Version string
	// DefaultMaxTokens is sent when a Request has MaxTokens == 0. Default
	// DefaultMaxTokens (the API requires a value).
	DefaultMaxTokens int
	// Header holds extra headers sent with every request (anthropic-beta,
	// a proxy's header). Values are treated as secrets in errors.
	Header http.Header

	// HTTPClient, MaxResponseBytes, CountTokens (usage for a response
	// without any) and Now (the clock for reset times and Retry-After dates)
	// are as in llm.ClientConfig.
	HTTPClient       *http.Client
	MaxResponseBytes int64
	CountTokens      func(string) int
	Now              func() time.Time
}

// Client calls the Messages API. It is safe for concurrent use.
type Client struct {
	t *llm.Transport
}

var _ llm.Provider = (*Client)(nil)

// New checks cfg, fills its defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if cfg.DefaultMaxTokens == 0 {
		cfg.DefaultMaxTokens = DefaultMaxTokens
	}
	t, err := llm.NewTransport(llm.ClientConfig{
		Name: cfg.Name, BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, HTTPClient: cfg.HTTPClient,
		DefaultMaxTokens: cfg.DefaultMaxTokens, Header: cfg.Header, MaxResponseBytes: cfg.MaxResponseBytes,
		CountTokens: cfg.CountTokens, Now: cfg.Now,
	}, llm.Protocol{
		Name: "anthropic", BaseURL: DefaultBaseURL, VersionPath: "/v1",
		KeyHeader:       "X-Api-Key",
		Header:          http.Header{"Anthropic-Version": {cfg.Version}},
		RequestIDHeader: "Request-Id",
		ParseError:      func(ex llm.Exchange) llm.ErrorReply { return parseErrorBody(ex.Body).reply(ex.Status) },
		Quota:           quotaHeaders,
	})
	if err != nil {
		return nil, err
	}
	return &Client{t: t}, nil
}

// Name returns the provider name used in errors.
func (c *Client) Name() string { return c.t.Name() }

// Complete sends one message. On content_filter and empty_response errors
// the returned Response still carries the usage that was billed.
func (c *Client) Complete(ctx context.Context, req llm.Request) (llm.Response, error) {
	ex, err := c.t.Post(ctx, "/v1/messages", req.Model, c.wireRequest(req))
	if err != nil {
		return llm.Response{}, err
	}
	resp, err := c.parse(req, ex)
	resp.Quota = c.t.Quota(ex.Header)
	return resp, err
}

func (c *Client) wireRequest(req llm.Request) messagesRequest {
	return messagesRequest{
		Model:     req.Model,
		MaxTokens: c.t.MaxTokens(req),
		System:    req.System,
		Messages:  []message{{Role: "user", Content: req.Prompt}},
	}
}

func (c *Client) parse(req llm.Request, ex llm.Exchange) (llm.Response, error) {
	var mr messagesResponse
	if err := json.Unmarshal(ex.Body, &mr); err != nil {
		return llm.Response{}, c.t.Malformed(req.Model, ex, err)
	}
	if mr.Type == "error" {
		return llm.Response{}, c.t.ReplyError(req.Model, ex, parseErrorBody(ex.Body).reply(ex.Status))
	}
	resp := llm.Response{HTTPStatus: ex.Status, RequestID: c.t.RequestID(ex.Header)}
	var text strings.Builder
	for _, b := range mr.Content {
		if b.Type == "text" {
			text.WriteString(b.Text)
		}
	}
	resp.Text = text.String()
	resp.FinishReason = finishReason(mr.StopReason)
	if u := mr.Usage; u != nil {
		resp.InputTokens = u.InputTokens
		resp.OutputTokens = u.OutputTokens
		resp.CacheReadTokens = u.CacheReadInputTokens
		resp.CacheWriteTokens = u.CacheCreationInputTokens
	} else {
		c.t.EstimateUsage(&resp, req)
	}
	fail := func(class llm.Class, msg string) (llm.Response, error) {
		return resp, c.t.AnswerError(class, req.Model, resp, msg)
	}
	switch {
	case mr.StopReason == "refusal":
		return fail(llm.ClassContentFilter, "stop_reason refusal")
	case strings.TrimSpace(resp.Text) == "":
		return fail(llm.ClassEmptyResponse, fmt.Sprintf("no text in response (stop_reason %q)", mr.StopReason))
	}
	return resp, nil
}

// finishReason normalises stop_reason.
func finishReason(s string) string {
	switch s {
	case "end_turn", "stop_sequence":
		return "stop"
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "refusal":
		return "content_filter"
	case "tool_use":
		return "tool_calls"
	}
	return s
}

// reply reduces an error body to what the error reports.
func (f errorFields) reply(status int) llm.ErrorReply {
	return llm.ErrorReply{Class: classify(status, f), Label: f.typ, Message: f.message, RequestID: f.requestID, RetryHint: retryHint}
}

// classify maps an error response to a class: the error type first, then
// the HTTP status.
func classify(status int, f errorFields) llm.Class {
	switch f.typ {
	case "authentication_error":
		return llm.ClassAuth
	case "permission_error":
		return llm.ClassPermission
	case "not_found_error":
		return llm.ClassNotFound
	case "request_too_large":
		return llm.ClassContextWindow
	case "billing_error":
		return llm.ClassQuotaExhausted
	case "rate_limit_error":
		if f.errorCode == "enforced_spend_limit_reached" {
			return llm.ClassQuotaExhausted
		}
		return llm.ClassRateLimited
	case "overloaded_error":
		return llm.ClassOverloaded
	case "api_error":
		return llm.ClassServerError
	case "timeout_error":
		return llm.ClassTimeout
	case "invalid_request_error":
		// The docs allow this type on other 4xx statuses too; let those
		// statuses (413, 402, ...) speak.
		if status == http.StatusBadRequest || status < 400 || status > 499 {
			return llm.ClassBadRequest
		}
	}
	return llm.ReplyClass(status)
}

var rateWindows = []llm.RateWindow{
	{Reset: "Anthropic-Ratelimit-Requests-Reset", Remaining: "Anthropic-Ratelimit-Requests-Remaining"},
	{Reset: "Anthropic-Ratelimit-Tokens-Reset", Remaining: "Anthropic-Ratelimit-Tokens-Remaining"},
	{Reset: "Anthropic-Ratelimit-Input-Tokens-Reset", Remaining: "Anthropic-Ratelimit-Input-Tokens-Remaining"},
	{Reset: "Anthropic-Ratelimit-Output-Tokens-Reset", Remaining: "Anthropic-Ratelimit-Output-Tokens-Remaining"},
}

// quotaHeaders are Anthropic's anthropic-ratelimit-requests-* and -tokens-*
// headers (tokens: the most restrictive token limit in effect); the resets
// are RFC 3339 times at which the window is full again.
var quotaHeaders = llm.QuotaHeaders{
	Requests:   llm.QuotaNames{Limit: "Anthropic-Ratelimit-Requests-Limit", Remaining: "Anthropic-Ratelimit-Requests-Remaining", Reset: "Anthropic-Ratelimit-Requests-Reset"},
	Tokens:     llm.QuotaNames{Limit: "Anthropic-Ratelimit-Tokens-Limit", Remaining: "Anthropic-Ratelimit-Tokens-Remaining", Reset: "Anthropic-Ratelimit-Tokens-Reset"},
	ParseReset: llm.ParseResetTime,
}

// retryHint reads the anthropic-ratelimit-*-reset times, measured from now.
func retryHint(h http.Header, now time.Time) (time.Duration, bool) {
	return llm.WindowRetryAfter(h, func(v string) (time.Duration, bool) { return llm.ParseResetTime(v, now) }, rateWindows...)
}
