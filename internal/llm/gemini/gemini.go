// Package gemini is a thin net/http client for the Gemini API's
// generateContent method (POST {base}/v1beta/models/{model}:generateContent,
// key in the x-goog-api-key header, never in the URL). It implements
// llm.Provider.
//
// A call sends the system prompt as systemInstruction (omitted when empty),
// one user turn in contents, and generationConfig.maxOutputTokens when a limit
// is set. The answer is the text of the first candidate's parts, skipping
// thought parts. Usage: InputTokens = promptTokenCount (+ toolUsePromptTokenCount)
// − cachedContentTokenCount, CacheReadTokens = cachedContentTokenCount,
// OutputTokens = candidatesTokenCount + thoughtsTokenCount (thinking is billed
// as output). RequestID is the body's responseId (Gemini sends no request-id
// header, so errors carry none).
//
// Failures are *llm.Error, classified by the error body's canonical status,
// its structured details and the HTTP status, never by message text:
//
//	400 INVALID_ARGUMENT, OUT_OF_RANGE               → bad_request
//	400 with ErrorInfo reason API_KEY_INVALID         → auth_error
//	400 FAILED_PRECONDITION (region, billing)         → permission
//	401 UNAUTHENTICATED, 403 PERMISSION_DENIED        → auth_error (Gemini's
//	    403s are about the key: missing, leaked, wrong project)
//	404 NOT_FOUND                                     → not_found
//	429 RESOURCE_EXHAUSTED with a QuotaFailure violation whose quotaId is
//	    per day (…PerDay…) or whose quotaValue is 0   → quota_exhausted
//	other 429 RESOURCE_EXHAUSTED                      → rate_limited
//	500 INTERNAL                                      → server_error
//	503 UNAVAILABLE ("the model is overloaded")       → overloaded
//	504 DEADLINE_EXCEEDED                             → timeout
//	promptFeedback.blockReason, finishReason SAFETY, RECITATION, BLOCKLIST,
//	    PROHIBITED_CONTENT, SPII, IMAGE_SAFETY        → content_filter
//	200 with no text                                  → empty_response
//
// A prompt over the context window comes back as 400 INVALID_ARGUMENT with
// only the message text to say so ("The input token count exceeds the
// maximum…"); it stays bad_request. Retry hints come from retry-after-ms and
// retry-after, else from the RetryInfo detail's retryDelay ("13s").
package gemini

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
)

// DefaultBaseURL is the Gemini API host.
const DefaultBaseURL = "https://generativelanguage.googleapis.com"

// Config configures a Client.
type Config struct {
	// Name is the provider name reported in errors. Default "gemini".
	Name string
	// BaseURL is the server root; a trailing "/v1beta" is tolerated.
	// Default DefaultBaseURL.
	BaseURL string
	// APIKey is sent as x-goog-api-key (omitted when empty).
	APIKey string
	// DefaultMaxTokens is sent as maxOutputTokens when a Request has
	// MaxTokens == 0. Zero means no limit (the model's default).
	DefaultMaxTokens int
	// Header holds extra headers sent with every request. Values are
	// treated as secrets in errors.
	Header http.Header

	// HTTPClient, MaxResponseBytes, CountTokens (usage for a response
	// without any) and Now (the clock for Retry-After dates) are as in
	// llm.ClientConfig.
	HTTPClient       *http.Client
	MaxResponseBytes int64
	CountTokens      func(string) int
	Now              func() time.Time

	// BatchInlineBytes is the largest batchGenerateContent body sent with
	// inline requests; a batch whose inline body would be larger is
	// uploaded as a JSONL file through the Files API. 0 means
	// BatchInlineMaxBytes (the documented inline limit); a negative value
	// sends every batch as a file.
	BatchInlineBytes int64
}

// Client calls generateContent. It is safe for concurrent use.
type Client struct {
	t           *llm.Transport
	inlineLimit int64 // Config.BatchInlineBytes with its default; < 0: always a file
}

var _ llm.Provider = (*Client)(nil)

// New checks cfg, fills its defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	t, err := llm.NewTransport(llm.ClientConfig{
		Name: cfg.Name, BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, HTTPClient: cfg.HTTPClient,
		DefaultMaxTokens: cfg.DefaultMaxTokens, Header: cfg.Header, MaxResponseBytes: cfg.MaxResponseBytes,
		CountTokens: cfg.CountTokens, Now: cfg.Now,
	}, llm.Protocol{
		Name: "gemini", BaseURL: DefaultBaseURL, VersionPath: "/v1beta",
		KeyHeader: "X-Goog-Api-Key",
		// No request-id header: the only id is responseId in a success body.
		ParseError: func(ex llm.Exchange) llm.ErrorReply { return parseErrorBody(ex.Body).reply(ex.Status) },
	})
	if err != nil {
		return nil, err
	}
	inline := cfg.BatchInlineBytes
	switch {
	case inline == 0:
		inline = BatchInlineMaxBytes
	case inline > BatchInlineMaxBytes:
		return nil, fmt.Errorf("%s: BatchInlineBytes %d: above the inline limit of %d bytes", t.Name(), inline, int64(BatchInlineMaxBytes))
	}
	return &Client{t: t, inlineLimit: inline}, nil
}

// Name returns the provider name used in errors.
func (c *Client) Name() string { return c.t.Name() }

// Complete generates one answer. On content_filter and empty_response errors
// the returned Response still carries the usage that was billed.
func (c *Client) Complete(ctx context.Context, req llm.Request) (llm.Response, error) {
	model := strings.TrimPrefix(req.Model, "models/")
	if model == "" {
		return llm.Response{}, c.t.NoModelError()
	}
	ex, err := c.t.Post(ctx, "/v1beta/models/"+url.PathEscape(model)+":generateContent", req.Model, c.wireRequest(req))
	if err != nil {
		return llm.Response{}, err
	}
	return c.parse(req, ex)
}

func (c *Client) wireRequest(req llm.Request) generateRequest {
	w := generateRequest{Contents: []content{{Role: "user", Parts: []part{{Text: req.Prompt}}}}}
	if req.System != "" {
		w.SystemInstruction = &content{Parts: []part{{Text: req.System}}}
	}
	if max := c.t.MaxTokens(req); max > 0 {
		w.GenerationConfig = &generationConfig{MaxOutputTokens: max}
	}
	return w
}

// contentFilter lists the finish reasons that mean "blocked by a safety or
// policy system".
var contentFilter = map[string]bool{
	"SAFETY": true, "RECITATION": true, "BLOCKLIST": true, "PROHIBITED_CONTENT": true,
	"SPII": true, "IMAGE_SAFETY": true, "IMAGE_PROHIBITED_CONTENT": true,
}

func (c *Client) parse(req llm.Request, ex llm.Exchange) (llm.Response, error) {
	var gr generateResponse
	if err := json.Unmarshal(ex.Body, &gr); err != nil {
		return llm.Response{}, c.t.Malformed(req.Model, ex, err)
	}
	if gr.Error != nil {
		return llm.Response{}, c.t.ReplyError(req.Model, ex, gr.Error.fields().reply(ex.Status))
	}
	resp := llm.Response{HTTPStatus: ex.Status, RequestID: c.t.Clean(gr.ResponseID)}
	var finish string
	if len(gr.Candidates) > 0 {
		cand := gr.Candidates[0]
		finish = cand.FinishReason
		if cand.Content != nil {
			var b strings.Builder
			for _, p := range cand.Content.Parts {
				if !p.Thought {
					b.WriteString(p.Text)
				}
			}
			resp.Text = b.String()
		}
	}
	resp.FinishReason = finishReason(finish)
	if u := gr.UsageMetadata; u != nil {
		resp.CacheReadTokens = u.CachedContentTokenCount
		resp.InputTokens = max(u.PromptTokenCount+u.ToolUsePromptTokenCount-u.CachedContentTokenCount, 0)
		resp.OutputTokens = u.CandidatesTokenCount + u.ThoughtsTokenCount
	} else {
		c.t.EstimateUsage(&resp, req)
	}
	fail := func(class llm.Class, msg string) (llm.Response, error) {
		return resp, c.t.AnswerError(class, req.Model, resp, msg)
	}
	switch {
	case gr.PromptFeedback != nil && gr.PromptFeedback.BlockReason != "":
		msg := "prompt blocked: " + gr.PromptFeedback.BlockReason
		if gr.PromptFeedback.BlockReasonMessage != "" {
			msg += ": " + gr.PromptFeedback.BlockReasonMessage
		}
		return fail(llm.ClassContentFilter, msg)
	case len(gr.Candidates) == 0:
		return fail(llm.ClassEmptyResponse, "response has no candidates")
	case contentFilter[finish]:
		return fail(llm.ClassContentFilter, "finishReason "+finish)
	case strings.TrimSpace(resp.Text) == "":
		return fail(llm.ClassEmptyResponse, fmt.Sprintf("no text in response (finishReason %q)", finish))
	}
	return resp, nil
}

// finishReason normalises finishReason; unknown values pass through.
func finishReason(s string) string {
	switch {
	case s == "STOP":
		return "stop"
	case s == "MAX_TOKENS":
		return "length"
	case contentFilter[s]:
		return "content_filter"
	}
	return s
}

// reply reduces an error body to what the error reports. The retry hint is
// the RetryInfo detail's retryDelay ("13s").
func (f errorFields) reply(status int) llm.ErrorReply {
	return llm.ErrorReply{Class: classify(status, f), Label: f.status, Message: f.message,
		RetryHint: func(http.Header, time.Time) (time.Duration, bool) { return llm.ParseResetDuration(f.retryDelay) }}
}

// classify maps an error response to a class: structured details, then the
// canonical status, then the HTTP status.
func classify(status int, f errorFields) llm.Class {
	if f.reason == "API_KEY_INVALID" {
		return llm.ClassAuth
	}
	switch f.status {
	case "INVALID_ARGUMENT", "OUT_OF_RANGE", "UNIMPLEMENTED":
		return llm.ClassBadRequest
	case "FAILED_PRECONDITION":
		return llm.ClassPermission
	case "UNAUTHENTICATED", "PERMISSION_DENIED":
		return llm.ClassAuth
	case "NOT_FOUND":
		return llm.ClassNotFound
	case "RESOURCE_EXHAUSTED":
		if f.exhaustedForTheDay {
			return llm.ClassQuotaExhausted
		}
		return llm.ClassRateLimited
	case "INTERNAL", "UNKNOWN", "DATA_LOSS", "ABORTED":
		return llm.ClassServerError
	case "UNAVAILABLE":
		return llm.ClassOverloaded
	case "DEADLINE_EXCEEDED", "CANCELLED":
		return llm.ClassTimeout
	}
	return llm.ReplyClass(status)
}
