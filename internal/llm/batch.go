package llm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// The vocabulary of the providers' batch APIs (OpenAI Batch, Anthropic
// Message Batches, Gemini Batch Mode), shared by the adapters that offer batch
// submission and by internal/providerbatch, which declares the interface it
// needs. A batch is a set of requests, each with a caller-chosen custom id,
// answered within 24 hours at about half the synchronous price.

// BatchRequest is one request of a provider batch.
type BatchRequest struct {
	// CustomID identifies the request in the results. Adapters accept
	// 1-64 characters of [A-Za-z0-9_-] (Anthropic's rule, the strictest).
	CustomID string
	Request  Request
}

// BatchState is a provider batch's state, normalised.
type BatchState string

// Batch states.
const (
	// BatchRunning: accepted, validating, in progress, finalizing or
	// cancelling; poll again later.
	BatchRunning BatchState = "running"
	// BatchEnded: processing is over and results can be read (OpenAI
	// completed, expired or cancelled with partial output; Anthropic ended;
	// Gemini succeeded). A request without a result line counts as expired.
	BatchEnded BatchState = "ended"
	// BatchFailed: the batch as a whole failed (OpenAI validation failed;
	// Gemini failed, cancelled or expired): there are no results, every
	// request is to be treated as failed.
	BatchFailed BatchState = "failed"
)

// Batch is a provider batch as the provider reports it.
type Batch struct {
	ID string // the provider's id: batch_..., msgbatch_..., batches/...
	// Label is the name the submitter gave the batch, read back from the
	// provider (OpenAI metadata, Gemini displayName); "" where the
	// provider keeps none (Anthropic).
	Label          string
	State          BatchState
	ProviderStatus string // the provider's own status value
	CreatedAt      time.Time
	// Total is the number of requests in the batch, when reported.
	Total int
	// Done counts requests that finished (succeeded or not), when reported.
	Done int
	// Error is the provider's reason for a failed batch.
	Error string
}

// BatchItemState is how one request of an ended batch ended.
type BatchItemState string

// Item states; the names are Anthropic's result types.
const (
	ItemSucceeded BatchItemState = "succeeded"
	ItemErrored   BatchItemState = "errored"
	ItemExpired   BatchItemState = "expired"
	ItemCanceled  BatchItemState = "canceled"
)

// BatchResult is the result of one request of an ended batch.
type BatchResult struct {
	CustomID string
	State    BatchItemState
	// Response is the answer when State is ItemSucceeded. Its usage is the
	// billed usage (at batch prices).
	Response Response
	// Err is set when State is ItemErrored, and for a succeeded request
	// whose answer is unusable (content filter, empty): the same *Error a
	// synchronous call would have returned.
	Err *Error
}

// MaxBatchResultBytes caps a downloaded batch result file.
const MaxBatchResultBytes int64 = 1 << 30

// ValidCustomID reports whether id is 1-64 characters of [A-Za-z0-9_-].
func ValidCustomID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// AsError returns err as an *Error: itself when it is one (or wraps one),
// else a server error carrying its text.
func AsError(err error) *Error {
	var le *Error
	if errors.As(err, &le) {
		return le
	}
	return &Error{Class: ClassServerError, Message: err.Error(), Err: err}
}

// ListNewestFirst reads a paginated list endpoint of the form
// {"data": [...], "has_more", "last_id"} whose items come newest first
// (OpenAI's GET /v1/batches, Anthropic's GET /v1/messages/batches), passing
// the last id of a page in the cursor query parameter ("after",
// "after_id"). It stops at the first batch created before since.
func ListNewestFirst[T any](ctx context.Context, t *Transport, path, cursor string, since time.Time, batch func(T) Batch) ([]Batch, error) {
	var out []Batch
	after := ""
	for {
		q := url.Values{"limit": {"100"}}
		if after != "" {
			q.Set(cursor, after)
		}
		var page struct {
			Data    []T    `json:"data"`
			HasMore bool   `json:"has_more"`
			LastID  string `json:"last_id"`
		}
		if _, err := t.DoJSON(ctx, http.MethodGet, path+"?"+q.Encode(), "batches", nil, &page); err != nil {
			return nil, err
		}
		for _, item := range page.Data {
			b := batch(item)
			if b.CreatedAt.Before(since) {
				return out, nil
			}
			out = append(out, b)
		}
		if !page.HasMore || len(page.Data) == 0 {
			return out, nil
		}
		after = out[len(out)-1].ID
	}
}

// EachLine calls fn for every non-blank line of a JSONL result file, with
// its 1-based line number; a line longer than 64 MiB, or an error from fn,
// stops it. t.Malformed wraps the error, reported against batch.
func EachLine(t *Transport, batch string, ex Exchange, fn func(n int, line []byte) error) error {
	sc := bufio.NewScanner(bytes.NewReader(ex.Body))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if err := fn(n, line); err != nil {
			return t.Malformed(batch, ex, fmt.Errorf("result line %d: %w", n, err))
		}
	}
	if err := sc.Err(); err != nil {
		return t.Malformed(batch, ex, err)
	}
	return nil
}
