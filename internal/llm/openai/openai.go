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
	// HTTPClient sends the requests. Default llm.DefaultHTTPClient().
	HTTPClient *http.Client
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
	// MaxResponseBytes caps a response body. Default llm.MaxResponseBytes.
	MaxResponseBytes int64
	// CountTokens, when set, estimates usage for servers that report none
	// (Response.UsageEstimated is set either way).
	CountTokens func(string) int
	// Now is the clock for Retry-After dates. Default time.Now.
	Now func() time.Time
}

// Client calls one OpenAI-compatible server. It is safe for concurrent use.
type Client struct {
	cfg      Config
	endpoint string
	http     *http.Client
	header   http.Header // sent with every request: Config.Header plus auth
	red      llm.Redactor
	now      func() time.Time
}

var _ llm.Provider = (*Client)(nil)

// New checks cfg, fills its defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.Name == "" {
		cfg.Name = "openai"
	}
	base, err := llm.NormalizeBaseURL(cfg.BaseURL, DefaultBaseURL, "/v1")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Name, err)
	}
	if cfg.DefaultMaxTokens < 0 {
		return nil, fmt.Errorf("%s: DefaultMaxTokens %d: must be >= 0", cfg.Name, cfg.DefaultMaxTokens)
	}
	c := &Client{cfg: cfg, endpoint: base + "/v1/chat/completions", http: cfg.HTTPClient, now: cfg.Now}
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
		c.header.Set("Authorization", "Bearer "+cfg.APIKey)
	}
	secrets := append([]string{cfg.APIKey}, llm.URLSecrets(cfg.BaseURL)...)
	for _, vs := range cfg.Header {
		secrets = append(secrets, vs...)
	}
	c.red = llm.NewRedactor(secrets...)
	return c, nil
}

// Name returns the provider name used in errors.
func (c *Client) Name() string { return c.cfg.Name }

// Complete sends one chat completion. On content_filter and empty_response
// errors the returned Response still carries the usage that was billed.
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
		return llm.Response{}, c.statusError(req.Model, ex)
	}
	return c.parse(req, ex)
}

func (c *Client) wireRequest(req llm.Request) chatRequest {
	w := chatRequest{Model: req.Model}
	if req.System != "" {
		w.Messages = append(w.Messages, message{Role: "system", Content: req.System})
	}
	w.Messages = append(w.Messages, message{Role: "user", Content: req.Prompt})
	max := req.MaxTokens
	if max <= 0 {
		max = c.cfg.DefaultMaxTokens
	}
	if max > 0 {
		if c.cfg.LegacyMaxTokens {
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
		e := llm.MalformedBody(c.cfg.Name, req.Model, ex, err, c.red)
		e.RequestID = c.requestID(ex.Header)
		return llm.Response{}, e
	}
	if f, ok := parseErrorValue(cr.Error); ok {
		// A 2xx that carries an error object (some proxies do this).
		return llm.Response{}, c.bodyError(req.Model, ex, f)
	}
	resp := llm.Response{HTTPStatus: ex.Status, RequestID: c.requestID(ex.Header)}
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
		return resp, &llm.Error{Class: class, Provider: c.cfg.Name, Model: req.Model, HTTPStatus: ex.Status, RequestID: resp.RequestID, Message: msg}
	}
	if len(cr.Choices) == 0 {
		c.estimate(&resp, req, cr.Usage == nil)
		return fail(llm.ClassEmptyResponse, "response has no choices")
	}
	ch := cr.Choices[0]
	resp.FinishReason = ch.FinishReason
	text, err := ch.Message.text()
	if err != nil {
		e := llm.MalformedBody(c.cfg.Name, req.Model, ex, err, c.red)
		e.RequestID = resp.RequestID
		return llm.Response{}, e
	}
	resp.Text = text
	c.estimate(&resp, req, cr.Usage == nil)
	switch {
	case ch.FinishReason == "content_filter":
		return fail(llm.ClassContentFilter, "finish_reason content_filter")
	case strings.TrimSpace(text) == "" && ch.Message.Refusal != nil && *ch.Message.Refusal != "":
		return fail(llm.ClassContentFilter, llm.CleanMessage(c.red, "refusal: "+*ch.Message.Refusal))
	case strings.TrimSpace(text) == "":
		return fail(llm.ClassEmptyResponse, fmt.Sprintf("no text in response (finish_reason %q)", ch.FinishReason))
	}
	return resp, nil
}

func (c *Client) estimate(resp *llm.Response, req llm.Request, missing bool) {
	if missing {
		llm.EstimateUsage(resp, req, c.cfg.CountTokens)
	}
}

// statusError builds the error for a non-2xx response.
func (c *Client) statusError(model string, ex llm.Exchange) *llm.Error {
	return c.bodyError(model, ex, parseErrorBody(ex.Body))
}

func (c *Client) bodyError(model string, ex llm.Exchange, f errorFields) *llm.Error {
	e := &llm.Error{
		Class:      classify(ex.Status, f),
		Provider:   c.cfg.Name,
		Model:      model,
		HTTPStatus: ex.Status,
		RequestID:  c.requestID(ex.Header),
	}
	if e.Class.Retryable() {
		e.RetryAfter = retryAfter(ex.Header, c.now())
	}
	msg := f.message
	if msg == "" {
		msg = llm.StatusText(ex.Status)
	}
	if label := f.label(); label != "" {
		msg = label + ": " + msg
	}
	e.Message = llm.CleanMessage(c.red, msg)
	return e
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
	if status >= 200 && status <= 299 {
		return llm.ClassServerError // an error object in a success response
	}
	return llm.StatusClass(status)
}

// requestID is the response's request id, redacted: a misbehaving server or
// proxy may echo credentials in any header.
func (c *Client) requestID(h http.Header) string {
	if h == nil {
		return ""
	}
	return llm.CleanMessage(c.red, h.Get("X-Request-Id"))
}

var rateWindows = []llm.RateWindow{
	{Reset: "X-Ratelimit-Reset-Requests", Remaining: "X-Ratelimit-Remaining-Requests"},
	{Reset: "X-Ratelimit-Reset-Tokens", Remaining: "X-Ratelimit-Remaining-Tokens"},
}

func retryAfter(h http.Header, now time.Time) time.Duration {
	if d, ok := llm.StandardRetryAfter(h, now); ok {
		return d
	}
	d, _ := llm.WindowRetryAfter(h, llm.ParseResetDuration, rateWindows...)
	return d
}
