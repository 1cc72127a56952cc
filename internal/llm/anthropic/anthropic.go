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
	// HTTPClient sends the requests. Default llm.DefaultHTTPClient().
	HTTPClient *http.Client
	// DefaultMaxTokens is sent when a Request has MaxTokens == 0. Default
	// DefaultMaxTokens (the API requires a value).
	DefaultMaxTokens int
	// Header holds extra headers sent with every request (anthropic-beta,
	// a proxy's header). Values are treated as secrets in errors.
	Header http.Header
	// MaxResponseBytes caps a response body. Default llm.MaxResponseBytes.
	MaxResponseBytes int64
	// CountTokens, when set, estimates usage for a response without any.
	CountTokens func(string) int
	// Now is the clock for reset times and Retry-After dates. Default time.Now.
	Now func() time.Time
}

// Client calls the Messages API. It is safe for concurrent use.
type Client struct {
	cfg      Config
	endpoint string
	http     *http.Client
	header   http.Header
	red      llm.Redactor
	now      func() time.Time
}

var _ llm.Provider = (*Client)(nil)

// New checks cfg, fills its defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.Name == "" {
		cfg.Name = "anthropic"
	}
	base, err := llm.NormalizeBaseURL(cfg.BaseURL, DefaultBaseURL, "/v1")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Name, err)
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	switch {
	case cfg.DefaultMaxTokens < 0:
		return nil, fmt.Errorf("%s: DefaultMaxTokens %d: must be >= 0", cfg.Name, cfg.DefaultMaxTokens)
	case cfg.DefaultMaxTokens == 0:
		cfg.DefaultMaxTokens = DefaultMaxTokens
	}
	c := &Client{cfg: cfg, endpoint: base + "/v1/messages", http: cfg.HTTPClient, now: cfg.Now}
	if c.http == nil {
		c.http = llm.DefaultHTTPClient()
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.header = cfg.Header.Clone()
	if c.header == nil {
		c.header = http.Header{}
	}
	if cfg.APIKey != "" {
		c.header.Set("X-Api-Key", cfg.APIKey)
	}
	c.header.Set("Anthropic-Version", cfg.Version)
	secrets := append([]string{cfg.APIKey}, llm.URLSecrets(cfg.BaseURL)...)
	for _, vs := range cfg.Header {
		secrets = append(secrets, vs...)
	}
	c.red = llm.NewRedactor(secrets...)
	return c, nil
}

// Name returns the provider name used in errors.
func (c *Client) Name() string { return c.cfg.Name }

// Complete sends one message. On content_filter and empty_response errors
// the returned Response still carries the usage that was billed.
func (c *Client) Complete(ctx context.Context, req llm.Request) (llm.Response, error) {
	if req.Model == "" {
		return llm.Response{}, &llm.Error{Class: llm.ClassBadRequest, Provider: c.cfg.Name, Message: "request has no model"}
	}
	ex, err := llm.PostJSON(ctx, c.http, c.endpoint, c.header, c.wireRequest(req), c.cfg.MaxResponseBytes)
	if err != nil {
		e := llm.TransportError(ctx, c.cfg.Name, req.Model, ex.Status, err, c.red)
		e.RequestID = c.requestID(ex.Header)
		return llm.Response{}, e
	}
	if ex.Status < 200 || ex.Status > 299 {
		return llm.Response{}, c.errorFrom(req.Model, ex, parseErrorBody(ex.Body))
	}
	return c.parse(req, ex)
}

func (c *Client) wireRequest(req llm.Request) messagesRequest {
	max := req.MaxTokens
	if max <= 0 {
		max = c.cfg.DefaultMaxTokens
	}
	return messagesRequest{
		Model:     req.Model,
		MaxTokens: max,
		System:    req.System,
		Messages:  []message{{Role: "user", Content: req.Prompt}},
	}
}

func (c *Client) parse(req llm.Request, ex llm.Exchange) (llm.Response, error) {
	var mr messagesResponse
	if err := json.Unmarshal(ex.Body, &mr); err != nil {
		e := llm.MalformedBody(c.cfg.Name, req.Model, ex, err, c.red)
		e.RequestID = c.requestID(ex.Header)
		return llm.Response{}, e
	}
	if mr.Type == "error" {
		return llm.Response{}, c.errorFrom(req.Model, ex, parseErrorBody(ex.Body))
	}
	resp := llm.Response{HTTPStatus: ex.Status, RequestID: c.requestID(ex.Header)}
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
		llm.EstimateUsage(&resp, req, c.cfg.CountTokens)
	}
	fail := func(class llm.Class, msg string) (llm.Response, error) {
		return resp, &llm.Error{Class: class, Provider: c.cfg.Name, Model: req.Model, HTTPStatus: ex.Status,
			RequestID: resp.RequestID, Message: msg}
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

func (c *Client) errorFrom(model string, ex llm.Exchange, f errorFields) *llm.Error {
	e := &llm.Error{
		Class:      classify(ex.Status, f),
		Provider:   c.cfg.Name,
		Model:      model,
		HTTPStatus: ex.Status,
		RequestID:  c.requestID(ex.Header),
	}
	if e.RequestID == "" {
		e.RequestID = llm.CleanMessage(c.red, f.requestID)
	}
	if e.Class.Retryable() {
		e.RetryAfter = c.retryAfter(ex.Header)
	}
	msg := f.message
	if msg == "" {
		msg = llm.StatusText(ex.Status)
	}
	if f.typ != "" {
		msg = f.typ + ": " + msg
	}
	e.Message = llm.CleanMessage(c.red, msg)
	return e
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
	if status >= 200 && status <= 299 {
		return llm.ClassServerError // an error object in a success response
	}
	return llm.StatusClass(status)
}

var rateWindows = []llm.RateWindow{
	{Reset: "Anthropic-Ratelimit-Requests-Reset", Remaining: "Anthropic-Ratelimit-Requests-Remaining"},
	{Reset: "Anthropic-Ratelimit-Tokens-Reset", Remaining: "Anthropic-Ratelimit-Tokens-Remaining"},
	{Reset: "Anthropic-Ratelimit-Input-Tokens-Reset", Remaining: "Anthropic-Ratelimit-Input-Tokens-Remaining"},
	{Reset: "Anthropic-Ratelimit-Output-Tokens-Reset", Remaining: "Anthropic-Ratelimit-Output-Tokens-Remaining"},
}

func (c *Client) retryAfter(h http.Header) time.Duration {
	now := c.now()
	if d, ok := llm.StandardRetryAfter(h, now); ok {
		return d
	}
	d, _ := llm.WindowRetryAfter(h, func(v string) (time.Duration, bool) { return llm.ParseResetTime(v, now) }, rateWindows...)
	return d
}

// requestID is the response's request id, redacted: a misbehaving server or
// proxy may echo credentials in any header.
func (c *Client) requestID(h http.Header) string {
	return llm.CleanMessage(c.red, h.Get("Request-Id"))
}
