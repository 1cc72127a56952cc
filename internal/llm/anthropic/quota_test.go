package anthropic_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/anthropic"
)

// The anthropic-ratelimit-* headers (RFC 3339 resets) reach the limiter.
func TestQuotaHeaders(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 8, 21, 12, 40, 58, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("anthropic-ratelimit-requests-limit", "1000")
		h.Set("anthropic-ratelimit-requests-remaining", "999")
		h.Set("anthropic-ratelimit-requests-reset", "2025-08-21T12:40:59Z")
		h.Set("anthropic-ratelimit-tokens-limit", "96000")
		h.Set("anthropic-ratelimit-tokens-remaining", "95000")
		h.Set("anthropic-ratelimit-tokens-reset", "2025-08-21T12:41:00Z")
		io.WriteString(w, `{"type":"message","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}`)
	}))
	defer srv.Close()
	c, err := anthropic.New(anthropic.Config{BaseURL: srv.URL, HTTPClient: srv.Client(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Complete(context.Background(), llm.Request{Model: "m", Prompt: "hi"})
	want := llm.Quota{
		Requests: llm.QuotaWindow{Known: true, Limit: 1000, Remaining: 999, Reset: time.Second},
		Tokens:   llm.QuotaWindow{Known: true, Limit: 96000, Remaining: 95000, Reset: 2 * time.Second},
	}
	if err != nil || resp.Quota != want {
		t.Fatalf("Complete: quota %+v, %v; want %+v", resp.Quota, err, want)
	}
}
