package llm

import (
	"errors"
	"fmt"
	"time"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// Class says how a failed call behaves. Callers decide what to do from the
// class alone, never from message text.
type Class string

// Error classes. Their string values are stored in request_log.outcome.
const (
	ClassRateLimited    Class = Class(prompt.OutcomeRateLimited)    // 429: retry after a pause
	ClassOverloaded     Class = Class(prompt.OutcomeOverloaded)     // Anthropic 529, Groq 498: retry after a pause
	ClassServerError    Class = Class(prompt.OutcomeServerError)    // 5xx: retry
	ClassTimeout        Class = Class(prompt.OutcomeTimeout)        // deadline passed: retry
	ClassNetwork        Class = Class(prompt.OutcomeNetwork)        // connection refused/reset, truncated body: retry
	ClassAuth           Class = Class(prompt.OutcomeAuthError)      // 401: no retry; cascade
	ClassPermission     Class = Class(prompt.OutcomePermission)     // 403: no retry; cascade
	ClassNotFound       Class = Class(prompt.OutcomeNotFound)       // 404, retired model: disable model; cascade
	ClassBadRequest     Class = Class(prompt.OutcomeBadRequest)     // 400: no retry; cascade
	ClassContextWindow  Class = Class(prompt.OutcomeContextWindow)  // prompt too long for model: cascade
	ClassQuotaExhausted Class = Class(prompt.OutcomeQuotaExhausted) // billing/spend limit: no retry; cascade
	ClassContentFilter  Class = Class(prompt.OutcomeContentFilter)  // refused by safety system: cascade
	ClassEmptyResponse  Class = Class(prompt.OutcomeEmptyResponse)  // 200 with no text: quality failure; cascade
)

// Retryable reports whether the same model may be tried again for the same
// prompt (after a backoff).
func (c Class) Retryable() bool {
	switch c {
	case ClassRateLimited, ClassOverloaded, ClassServerError, ClassTimeout, ClassNetwork:
		return true
	}
	return false
}

// Transient reports whether the failure says nothing about the prompt itself:
// a whole cascade that fails only with transient classes is handed back to the
// queue for a later delivery instead of being stored as failed.
func (c Class) Transient() bool { return c.Retryable() }

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
