package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/promptcascade/promptcascade/internal/redact"
)

// Shared plumbing for the HTTP adapters (openai, anthropic, gemini): sending a
// request and reading a bounded body, and turning what went wrong into an
// *Error with the right Class.

// MaxResponseBytes is the default cap on a response body. A completion is
// rarely more than a few hundred kilobytes; anything beyond this is a broken
// or hostile server, and reading it would only cost memory.
const MaxResponseBytes int64 = 32 << 20

// MaxMessageLen caps Error.Message (in runes): enough for a provider's
// explanation, short enough for a log line and a table column.
const MaxMessageLen = 300

// ErrBodyTooLarge is wrapped by Send when a body exceeds its limit.
var ErrBodyTooLarge = errors.New("response body too large")

var defaultClient = sync.OnceValue(func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// A worker keeps hundreds of calls in flight to the same few hosts; the
	// default of 2 idle connections per host would make most of them dial
	// afresh (and TLS-handshake) on every call.
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	// No client-wide Timeout: every call carries its own context deadline.
	return &http.Client{Transport: t}
})

// DefaultHTTPClient returns the client that adapters use when their Config
// gives none: one shared connection pool sized for many concurrent calls per
// host, and no client-wide timeout (each call's context sets its deadline).
func DefaultHTTPClient() *http.Client { return defaultClient() }

// Exchange is one HTTP round trip whose body has been read.
type Exchange struct {
	Status int // 0 when no response arrived
	Header http.Header
	Body   []byte
}

// Send performs req with c and reads at most limit bytes of the body
// (MaxResponseBytes when limit <= 0). On a body that fails half-way the
// returned Exchange still carries the status and headers that did arrive, so
// that the error can report them.
func Send(c *http.Client, req *http.Request, limit int64) (Exchange, error) {
	if limit <= 0 {
		limit = MaxResponseBytes
	}
	resp, err := c.Do(req)
	if err != nil {
		return Exchange{}, err
	}
	defer resp.Body.Close()
	ex := Exchange{Status: resp.StatusCode, Header: resp.Header}
	if resp.ContentLength > limit {
		return ex, fmt.Errorf("%w: %d bytes announced, limit %d", ErrBodyTooLarge, resp.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return ex, fmt.Errorf("reading response body: %w", err)
	}
	if int64(len(body)) > limit {
		return ex, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, limit)
	}
	ex.Body = body
	return ex, nil
}

// TransportError classifies a call that produced no complete response: err
// came from Send, status is the HTTP status if headers arrived (else 0).
//
//   - ctx done (deadline or cancellation) → ClassTimeout. The error unwraps to
//     ctx.Err() and its cause, so callers can still tell a cancellation
//     (errors.Is(err, context.Canceled)) from a deadline.
//   - a body over the size limit → ClassServerError.
//   - any other net.Error that reports Timeout() → ClassTimeout.
//   - everything else (refused, reset, EOF or a body cut mid-way, TLS) →
//     ClassNetwork.
//
// The message is redacted with red and truncated.
func TransportError(ctx context.Context, provider, model string, status int, err error, red redact.Redactor) *Error {
	e := &Error{Provider: provider, Model: model, HTTPStatus: status}
	var ne net.Error
	switch {
	case ctx.Err() != nil:
		e.Class = ClassTimeout
		ctxErr := ctx.Err()
		cause := context.Cause(ctx)
		if cause != nil && cause != ctxErr {
			ctxErr = fmt.Errorf("%w: %w", ctxErr, cause)
		}
		where := "before the response arrived"
		if status != 0 {
			where = "while reading the response body"
		}
		what := "deadline exceeded"
		if errors.Is(ctx.Err(), context.Canceled) {
			what = "canceled"
		}
		e.Message = CleanMessage(red, fmt.Sprintf("%s %s: %v", what, where, ctxErr))
		e.Err = red.Error(ctxErr)
		return e
	case errors.Is(err, ErrBodyTooLarge):
		e.Class = ClassServerError
	case errors.As(err, &ne) && ne.Timeout():
		e.Class = ClassTimeout
	default:
		e.Class = ClassNetwork
	}
	e.Message = CleanMessage(red, err.Error())
	e.Err = red.Error(err)
	return e
}

// MalformedBody classifies a 2xx response whose body is not the JSON the
// adapter expects. A body that ends in the middle of a value was cut short
// (a proxy or connection that closed early without a transport error) and is
// ClassNetwork; anything else (an HTML page from a proxy, a wrong shape) is
// ClassServerError. Both are retryable.
func MalformedBody(provider, model string, ex Exchange, err error, red redact.Redactor) *Error {
	class := ClassServerError
	var se *json.SyntaxError
	if errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &se) && se.Offset >= int64(len(ex.Body))) || len(strings.TrimSpace(string(ex.Body))) == 0 {
		class = ClassNetwork
	}
	msg := fmt.Sprintf("malformed response body (%d bytes): %v", len(ex.Body), err)
	if snippet := CleanMessage(red, string(ex.Body)); snippet != "" {
		msg += "; body: " + snippet
	}
	return &Error{
		Class:      class,
		Provider:   provider,
		Model:      model,
		HTTPStatus: ex.Status,
		Message:    CleanMessage(red, msg),
		Err:        red.Error(err),
	}
}

// StatusClass is the class an HTTP status implies when the body says nothing
// more specific. Adapters refine it from their own error bodies.
//
//	400, 422 and other 4xx → bad_request   401 → auth_error
//	402 → quota_exhausted (payment required)
//	403 → permission      404 → not_found   408 → timeout
//	413 → context_window (the request is too big for this model/endpoint)
//	429 → rate_limited    498 (Groq flex capacity), 529 (Anthropic) → overloaded
//	500, 502, 503, 504 and every other 5xx → server_error
func StatusClass(status int) Class {
	switch {
	case status == http.StatusUnauthorized:
		return ClassAuth
	case status == http.StatusPaymentRequired:
		return ClassQuotaExhausted
	case status == http.StatusForbidden:
		return ClassPermission
	case status == http.StatusNotFound:
		return ClassNotFound
	case status == http.StatusRequestTimeout:
		return ClassTimeout
	case status == http.StatusRequestEntityTooLarge:
		return ClassContextWindow
	case status == http.StatusTooManyRequests:
		return ClassRateLimited
	case status == 498 || status == 529:
		return ClassOverloaded
	case status >= 500:
		return ClassServerError
	default:
		return ClassBadRequest
	}
}

// CleanMessage makes provider text fit for an error: secrets replaced,
// whitespace collapsed, cut to MaxMessageLen runes. Redaction happens before
// the cut, so a secret can never survive as a fragment.
func CleanMessage(red redact.Redactor, s string) string {
	s = red.String(s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= MaxMessageLen {
		return s
	}
	runes := []rune(s)
	return string(runes[:MaxMessageLen-1]) + "…"
}

// NormalizeBaseURL validates a provider base URL (def when raw is empty) and
// returns it without a trailing slash and without a trailing API version
// segment (version, e.g. "/v1"), which adapters append themselves; users often
// copy base URLs with the version included (OPENAI_BASE_URL conventionally
// ends in /v1). Errors never echo a password from the URL.
func NormalizeBaseURL(raw, def, version string) (string, error) {
	if strings.TrimSpace(raw) == "" {
		raw = def
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", errors.New("base URL does not parse as a URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("base URL %q: want an absolute http:// or https:// URL", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("base URL %q: must not have a query or fragment", u.Redacted())
	}
	s := strings.TrimRight(u.String(), "/")
	if version != "" {
		s = strings.TrimSuffix(s, version)
		s = strings.TrimRight(s, "/")
	}
	return s, nil
}

// PostJSON encodes body as JSON, POSTs it to url with header (plus JSON
// Content-Type and Accept) under ctx, and reads the reply with Send.
func PostJSON(ctx context.Context, c *http.Client, url string, header http.Header, body any, limit int64) (Exchange, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return Exchange{}, fmt.Errorf("encoding request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return Exchange{}, err
	}
	for k, vs := range header {
		req.Header[k] = append([]string(nil), vs...)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	return Send(c, req, limit)
}

// StatusText is http.StatusText with names for the providers' own statuses,
// for error responses whose body says nothing.
func StatusText(status int) string {
	switch status {
	case 498:
		return "Capacity Exceeded"
	case 499:
		return "Client Closed Request"
	case 529:
		return "Overloaded"
	}
	if s := http.StatusText(status); s != "" {
		return s
	}
	return fmt.Sprintf("HTTP status %d", status)
}
