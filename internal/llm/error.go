package llm

import (
	"errors"
	"fmt"
	"time"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// Class says how a failed call behaves. Callers decide what to do from the
// class alone (Retryable, Transient), never from message text. A class is
// an attempt outcome (the value request_log.outcome stores): one
// vocabulary, shared with prompt, so nothing is cast by string.
type Class = prompt.Outcome

// Error classes: the failure outcomes a provider call can end with.
const (
	ClassRateLimited    = prompt.OutcomeRateLimited    // 429: retry after a pause
	ClassOverloaded     = prompt.OutcomeOverloaded     // Anthropic 529, Groq 498: retry after a pause
	ClassServerError    = prompt.OutcomeServerError    // 5xx: retry
	ClassTimeout        = prompt.OutcomeTimeout        // deadline passed: retry
	ClassNetwork        = prompt.OutcomeNetwork        // connection refused/reset, truncated body: retry
	ClassAuth           = prompt.OutcomeAuthError      // 401: no retry; cascade
	ClassPermission     = prompt.OutcomePermission     // 403: no retry; cascade
	ClassNotFound       = prompt.OutcomeNotFound       // 404, retired model: disable model; cascade
	ClassBadRequest     = prompt.OutcomeBadRequest     // 400: no retry; cascade
	ClassContextWindow  = prompt.OutcomeContextWindow  // prompt too long for model: cascade
	ClassQuotaExhausted = prompt.OutcomeQuotaExhausted // billing/spend limit: no retry; cascade
	ClassContentFilter  = prompt.OutcomeContentFilter  // refused by safety system: cascade
	ClassEmptyResponse  = prompt.OutcomeEmptyResponse  // 200 with no text: quality failure; cascade
)

// Error is a failed provider call.
type Error struct {
	Class      Class
	Provider   string        // "openai", "anthropic", ...
	Model      string        // bare model id
	HTTPStatus int           // 0 when no response arrived
	RequestID  string        // provider's request id, when sent
	RetryAfter time.Duration // server's hint; 0 when none
	Message    string        // provider's message, secrets removed
	Err        error         // underlying error, if any
	Quota      Quota         // rate-limit headers of the reply, when sent
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s/%s: %s", e.Provider, e.Model, e.Class)
	if e.HTTPStatus != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.HTTPStatus)
	}
	if e.Message != "" {
		s += ": " + e.Message
	} else if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.RequestID != "" {
		s += " [request " + e.RequestID + "]"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether the same model may be tried again.
func (e *Error) Retryable() bool { return e.Class.Retryable() }

// ClassOf returns the class of err, or "" when err is not an *Error.
func ClassOf(err error) Class {
	var le *Error
	if errors.As(err, &le) {
		return le.Class
	}
	return ""
}
