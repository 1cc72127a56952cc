// Package llmtest is the conformance suite that every HTTP provider adapter
// (openai, anthropic, gemini) passes. An adapter's test supplies a Harness
// that builds the adapter against an httptest server and renders each
// canonical Situation (a success, a truncation, an error of each class, a
// retry hint) in the provider's own wire format; the suite drives the server,
// including the failures no wire format describes (slow headers, a slow body,
// a connection dropped mid-body, malformed JSON, a refused connection, an
// oversized body, a cancelled call), and asserts what the adapter returns:
// Class, HTTPStatus, RetryAfter, RequestID, text, finish reason and usage.
//
// Across every case it also asserts that the API key (APIKey, which the fake
// servers echo back inside error messages) never appears in an error, that the
// adapter sends exactly one HTTP request per call (retries belong to the
// cascade, not the adapter), and, through Harness.CheckRequest, that every
// request has the provider's method, path, headers and body shape.
package llmtest

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
)

// APIKey is the recognisable key every harness must configure. Fake servers
// echo it in error messages; the suite fails if it ever leaves the adapter.
const APIKey = "sk-SECRET-canary-123"

// Now is the fixed clock the adapters under test must use, so that HTTP-date
// and RFC 3339 retry hints turn into exact durations.
var Now = time.Date(2026, time.March, 14, 15, 9, 26, 0, time.UTC)

// MaxResponseBytes is the body limit the harness must configure, small so
// that the oversized-body cases stay cheap.
const MaxResponseBytes = 64 << 10

// DefaultRequest is the request most cases send.
var DefaultRequest = llm.Request{
	Model:     "suite-model-1",
	System:    "You are terse.",
	Prompt:    "What is the capital of France?",
	MaxTokens: 64,
}

// Env is what a harness needs to build the adapter under test.
type Env struct {
	BaseURL          string       // the fake server's root (no path)
	APIKey           string       // always APIKey
	HTTPClient       *http.Client // a client of its own per case
	Now              func() time.Time
	MaxResponseBytes int64
}

// Kind says whether a Situation is a completion or an error response.
type Kind int

// Kinds of Situation.
const (
	KindSuccess Kind = iota
	KindError
)

// Finish is a canonical finish reason; the harness renders it in the
// provider's vocabulary (end_turn, MAX_TOKENS, SAFETY, ...).
type Finish string

// Canonical finish reasons.
const (
	FinishStop          Finish = "stop"
	FinishLength        Finish = "length"
	FinishContentFilter Finish = "content_filter"
)

// Usage is canonical usage in billed terms. Input excludes cache reads and
// writes; Output includes Reasoning. A harness renders it in the provider's
// terms (OpenAI and Gemini count cached tokens inside the prompt total;
// Gemini counts thoughts apart from candidates).
type Usage struct {
	Input, CacheRead, CacheWrite, Output, Reasoning int
}

// Situation is one canonical server behaviour for Harness.Respond to render.
type Situation struct {
	Name string
	Kind Kind

	// KindSuccess.
	Text   string
	Finish Finish
	Usage  *Usage // nil: the response carries no usage at all

	// KindError.
	Class   llm.Class // the class the adapter must report
	Message string    // the provider's message; contains APIKey (servers echo keys)

	// Both.
	RequestID string // render it wherever the provider sends request ids
	// ProviderRetry, when > 0, is a retry hint to send in the provider's own
	// form (OpenAI x-ratelimit-reset-*, Anthropic anthropic-ratelimit-*-reset,
	// Gemini RetryInfo), not in the standard Retry-After headers, which the
	// suite sets itself.
	ProviderRetry time.Duration
	Now           time.Time
}

// Harness adapts one provider to the suite.
type Harness struct {
	// New builds the adapter aimed at env.BaseURL with env.APIKey,
	// env.HTTPClient, env.Now as its clock and env.MaxResponseBytes as its
	// body limit.
	New func(t testing.TB, env Env) llm.Provider
	// CheckRequest validates one request the adapter sent (method, path,
	// auth and version headers, body shape) against the llm.Request being
	// sent, reporting problems with t.Errorf. body is the request body.
	CheckRequest func(t testing.TB, r *http.Request, body []byte, req llm.Request)
	// Respond writes s in the provider's wire format. It returns false when
	// the provider's protocol has no structured form for s; that case is
	// skipped with a note.
	Respond func(w http.ResponseWriter, r *http.Request, s Situation) bool
	// HeaderRequestIDs reports whether the provider sends its request id in
	// a response header, so that errors (even a body cut short) carry it.
	// False for Gemini, whose only id is responseId in a success body.
	HeaderRequestIDs bool
	// Extra are provider-specific cases run with the same assertions.
	Extra []Case
}

// StatusAsSent in Want.HTTPStatus means "the status the fake server wrote".
const StatusAsSent = -1

// Want is what a case expects from Complete.
type Want struct {
	Class        llm.Class // "" means success
	HTTPStatus   int       // exact, or StatusAsSent
	RetryAfter   time.Duration
	RequestID    string
	Text         string
	FinishReason string

	InputTokens, OutputTokens, CacheReadTokens, CacheWriteTokens int
	UsageEstimated                                               bool

	// MessageContains must appear in the error's Message.
	MessageContains string
	// ErrIs, when set, must match the error with errors.Is.
	ErrIs error
}

// Case is one provider-specific scenario for Harness.Extra.
type Case struct {
	Name    string
	Request *llm.Request  // nil: DefaultRequest
	Timeout time.Duration // context deadline for the call; 0: 5s
	// Handle serves the adapter's request. The request body has already
	// been checked with Harness.CheckRequest and can be read again.
	Handle func(w http.ResponseWriter, r *http.Request)
	Want   Want
}

// JSONReply is a Case.Handle that answers with status, the given headers and
// body, as application/json.
func JSONReply(status int, header map[string]string, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// UsageWant converts canonical usage into the expected Response fields.
func UsageWant(u *Usage, w Want) Want {
	if u == nil {
		w.UsageEstimated = true
		return w
	}
	w.InputTokens, w.OutputTokens = u.Input, u.Output
	w.CacheReadTokens, w.CacheWriteTokens = u.CacheRead, u.CacheWrite
	return w
}
