package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/promptcascade/promptcascade/internal/redact"
)

// The part of an HTTP adapter (openai, anthropic, gemini) that does not depend
// on the provider's wire format: checking and defaulting the configuration,
// holding the headers, the redactor and the clock, posting a request, and
// turning every failure into an *Error. An adapter keeps only its request
// body, its response parsing, its error classification and its retry hints.

// ClientConfig is the configuration every HTTP adapter shares. Each adapter's
// Config has these fields too (with provider-specific defaults and wording)
// and copies them into a ClientConfig for NewTransport.
type ClientConfig struct {
	// Name is the provider name reported in errors ("openai", "groq", ...).
	// Default Protocol.Name.
	Name string
	// BaseURL is the server root. A trailing Protocol.VersionPath is
	// tolerated and dropped. Default Protocol.BaseURL.
	BaseURL string
	// APIKey is sent in Protocol.KeyHeader; when empty no key header is sent.
	APIKey string
	// HTTPClient sends the requests. Default DefaultHTTPClient().
	HTTPClient *http.Client
	// DefaultMaxTokens is the token limit for a Request with MaxTokens == 0
	// (see Transport.MaxTokens). Zero means none; a negative value is an
	// error.
	DefaultMaxTokens int
	// Header holds extra headers sent with every request. Values are treated
	// as secrets and never appear in errors.
	Header http.Header
	// MaxResponseBytes caps a response body. Default MaxResponseBytes.
	MaxResponseBytes int64
	// CountTokens, when set, estimates usage for a response that reports
	// none (Response.UsageEstimated is set either way).
	CountTokens func(string) int
	// Now is the clock for retry hints (Retry-After dates, reset times).
	// Default time.Now.
	Now func() time.Time
}

// Protocol is what a Transport needs to know about one provider's HTTP API.
type Protocol struct {
	Name    string // default ClientConfig.Name
	BaseURL string // default ClientConfig.BaseURL
	// VersionPath is the API version path segment ("/v1", "/v1beta") that
	// the adapter puts in its request paths; users often include it in a
	// base URL, where it is dropped.
	VersionPath string
	// KeyHeader is the header that carries the API key, as KeyPrefix+key
	// ("Authorization" with "Bearer ", or "X-Api-Key" with "").
	KeyHeader, KeyPrefix string
	// Header holds fixed headers sent with every request (anthropic-version).
	// They are set after the configured ones and the key, and are not
	// secrets.
	Header http.Header
	// RequestIDHeader names the response header that carries the provider's
	// request id; "" when the provider sends none.
	RequestIDHeader string
	// ParseError reduces a non-2xx response to what its error reports.
	ParseError func(ex Exchange) ErrorReply
	// Quota names the provider's rate-limit headers; zero when it sends
	// none.
	Quota QuotaHeaders
}

// ErrorReply is a provider's error response reduced to what every adapter
// reports; an adapter builds it from its own error body and classification.
type ErrorReply struct {
	Class Class
	// Label is the structured code, type or status; it prefixes Message
	// ("rate_limit_exceeded: ...").
	Label string
	// Message is the provider's explanation; "" means StatusText(status).
	Message string
	// RequestID is a request id found in the body, reported when no
	// request-id header carries one.
	RequestID string
	// RetryHint is the provider's own retry hint (rate-limit reset headers, a
	// body field). It is consulted only for a retryable Class, and only when
	// the standard retry-after-ms and Retry-After headers give none. nil:
	// the provider has none.
	RetryHint func(h http.Header, now time.Time) (time.Duration, bool)
}

// ReplyClass is the class of an error reply whose body says nothing more
// specific: StatusClass, except that a 2xx status (an error object in a
// success response) is a server error.
func ReplyClass(status int) Class {
	if status >= 200 && status <= 299 {
		return ClassServerError
	}
	return StatusClass(status)
}

// Transport sends one provider's requests and builds its errors. It is safe
// for concurrent use.
type Transport struct {
	cfg        ClientConfig // defaults filled
	base       string       // normalised BaseURL
	header     http.Header  // sent with every request: Config.Header, the key, Protocol.Header
	red        redact.Redactor
	requestID  string // Protocol.RequestIDHeader
	parseError func(Exchange) ErrorReply
	quota      QuotaHeaders
}

// NewTransport checks cfg, fills its defaults from p and returns a Transport.
// Errors name the provider and never echo a password from the base URL. The
// API key, a password in the base URL and every value of cfg.Header are
// redacted from the errors the Transport builds.
func NewTransport(cfg ClientConfig, p Protocol) (*Transport, error) {
	if cfg.Name == "" {
		cfg.Name = p.Name
	}
	base, err := NormalizeBaseURL(cfg.BaseURL, p.BaseURL, p.VersionPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Name, err)
	}
	if cfg.DefaultMaxTokens < 0 {
		return nil, fmt.Errorf("%s: DefaultMaxTokens %d: must be >= 0", cfg.Name, cfg.DefaultMaxTokens)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = DefaultHTTPClient()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	header := cfg.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	if cfg.APIKey != "" {
		header.Set(p.KeyHeader, p.KeyPrefix+cfg.APIKey)
	}
	for k, vs := range p.Header {
		header.Del(k)
		for _, v := range vs {
			header.Add(k, v)
		}
	}
	secrets := append([]string{cfg.APIKey}, redact.URLSecrets(cfg.BaseURL)...)
	for _, vs := range cfg.Header {
		secrets = append(secrets, vs...)
	}
	return &Transport{
		cfg:        cfg,
		base:       base,
		header:     header,
		red:        redact.New(secrets...),
		requestID:  p.RequestIDHeader,
		parseError: p.ParseError,
		quota:      p.Quota,
	}, nil
}

// Name returns the provider name used in errors.
func (t *Transport) Name() string { return t.cfg.Name }

// Clean is CleanMessage with the Transport's secrets.
func (t *Transport) Clean(s string) string { return CleanMessage(t.red, s) }

// MaxTokens is the token limit for req: req.MaxTokens, else
// ClientConfig.DefaultMaxTokens. Zero means none.
func (t *Transport) MaxTokens(req Request) int {
	if req.MaxTokens > 0 {
		return req.MaxTokens
	}
	return t.cfg.DefaultMaxTokens
}

// EstimateUsage is EstimateUsage with ClientConfig.CountTokens, for a
// response that reported no usage.
func (t *Transport) EstimateUsage(resp *Response, req Request) {
	EstimateUsage(resp, req, t.cfg.CountTokens)
}

// RequestID is the request id in a response's headers, redacted: a
// misbehaving server or proxy may echo credentials in any header. It is ""
// when the provider sends no request-id header.
func (t *Transport) RequestID(h http.Header) string {
	if t.requestID == "" {
		return ""
	}
	return t.Clean(h.Get(t.requestID))
}

// Post sends body as JSON to the base URL plus path and returns the reply when
// its status is 2xx. Every failure is an *Error reported against model:
//
//   - an empty model → ClassBadRequest, and nothing is sent;
//   - no complete reply → classified by TransportError, with the request id
//     when its headers arrived;
//   - a non-2xx status → ReplyError with what Protocol.ParseError makes of it.
func (t *Transport) Post(ctx context.Context, path, model string, body any) (Exchange, error) {
	if model == "" {
		return Exchange{}, t.NoModelError()
	}
	ex, err := PostJSON(ctx, t.cfg.HTTPClient, t.base+path, t.header, body, t.cfg.MaxResponseBytes)
	if err != nil {
		e := TransportError(ctx, t.cfg.Name, model, ex.Status, err, t.red)
		e.RequestID = t.RequestID(ex.Header)
		return ex, e
	}
	if ex.Status < 200 || ex.Status > 299 {
		return ex, t.ReplyError(model, ex, t.parseError(ex))
	}
	return ex, nil
}

// Quota reads the rate-limit headers of a reply.
func (t *Transport) Quota(h http.Header) Quota { return t.quota.Read(h, t.cfg.Now()) }

// NoModelError is the error for a request that names no model.
func (t *Transport) NoModelError() *Error {
	return &Error{Class: ClassBadRequest, Provider: t.cfg.Name, Message: "request has no model"}
}

// ReplyError builds the error for an error reply: a non-2xx response, or a
// 2xx whose body is an error object. The message is "label: message" (the
// status text when the body has no message), redacted and cut; the request id
// comes from the headers, else from the body; a retryable class gets the
// retry hint of the standard headers, else the provider's own.
func (t *Transport) ReplyError(model string, ex Exchange, r ErrorReply) *Error {
	e := &Error{
		Class:      r.Class,
		Provider:   t.cfg.Name,
		Model:      model,
		HTTPStatus: ex.Status,
		RequestID:  t.RequestID(ex.Header),
		Quota:      t.Quota(ex.Header),
	}
	if e.RequestID == "" {
		e.RequestID = t.Clean(r.RequestID)
	}
	if e.Class.Retryable() {
		e.RetryAfter = t.retryAfter(ex.Header, r.RetryHint)
	}
	msg := r.Message
	if msg == "" {
		msg = StatusText(ex.Status)
	}
	if r.Label != "" {
		msg = r.Label + ": " + msg
	}
	e.Message = t.Clean(msg)
	return e
}

func (t *Transport) retryAfter(h http.Header, hint func(http.Header, time.Time) (time.Duration, bool)) time.Duration {
	now := t.cfg.Now()
	if d, ok := StandardRetryAfter(h, now); ok {
		return d
	}
	if hint != nil {
		if d, ok := hint(h, now); ok {
			return d
		}
	}
	return 0
}

// Malformed is MalformedBody for a 2xx reply the adapter cannot parse, with
// the request id from its headers.
func (t *Transport) Malformed(model string, ex Exchange, err error) *Error {
	e := MalformedBody(t.cfg.Name, model, ex, err, t.red)
	e.RequestID = t.RequestID(ex.Header)
	return e
}

// AnswerError builds the error for a 2xx response that parsed but has no
// usable answer (blocked by a content filter, or empty). It carries resp's
// HTTP status and request id; msg is redacted and shortened like any
// provider text.
func (t *Transport) AnswerError(class Class, model string, resp Response, msg string) *Error {
	return &Error{Class: class, Provider: t.cfg.Name, Model: model, HTTPStatus: resp.HTTPStatus, RequestID: resp.RequestID, Message: t.Clean(msg)}
}

// Do sends one request of any method to the base URL plus path (body may be
// nil; contentType is set when body is not nil) and returns the reply when
// its status is 2xx, with the same error classification as Post. limit caps
// the response body; 0 means ClientConfig.MaxResponseBytes. The batch APIs
// use it for their uploads, polls and result downloads.
func (t *Transport) Do(ctx context.Context, method, path, model, contentType string, body []byte, limit int64) (Exchange, error) {
	return t.DoHeader(ctx, method, path, model, nil, contentType, body, limit)
}

// DoHeader is Do with extra request headers (Gemini's resumable uploads
// send their commands as headers); the reply's headers are in the
// Exchange.
func (t *Transport) DoHeader(ctx context.Context, method, path, model string, extra http.Header, contentType string, body []byte, limit int64) (Exchange, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.base+path, rd)
	if err != nil {
		return Exchange{}, &Error{Class: ClassBadRequest, Provider: t.cfg.Name, Model: model, Message: t.Clean(err.Error())}
	}
	for k, vs := range t.header {
		req.Header[k] = append([]string(nil), vs...)
	}
	for k, vs := range extra {
		req.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if limit <= 0 {
		limit = t.cfg.MaxResponseBytes
	}
	ex, err := Send(t.cfg.HTTPClient, req, limit)
	if err != nil {
		e := TransportError(ctx, t.cfg.Name, model, ex.Status, err, t.red)
		e.RequestID = t.RequestID(ex.Header)
		return ex, e
	}
	if ex.Status < 200 || ex.Status > 299 {
		return ex, t.ReplyError(model, ex, t.parseError(ex))
	}
	return ex, nil
}

// DoJSON is Do with body encoded as JSON (nil sends no body) and the reply
// decoded into out (nil ignores it). A reply that does not decode is
// Malformed.
func (t *Transport) DoJSON(ctx context.Context, method, path, model string, body, out any) (Exchange, error) {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return Exchange{}, &Error{Class: ClassBadRequest, Provider: t.cfg.Name, Model: model, Message: "encoding request: " + err.Error()}
		}
	}
	ex, err := t.Do(ctx, method, path, model, "application/json", b, 0)
	if err != nil {
		return ex, err
	}
	if out != nil {
		if err := json.Unmarshal(ex.Body, out); err != nil {
			return ex, t.Malformed(model, ex, err)
		}
	}
	return ex, nil
}
