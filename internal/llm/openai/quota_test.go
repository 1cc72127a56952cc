package openai_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/openai"
)

// The x-ratelimit-* headers reach the limiter on answers and on 429s alike.
func TestQuotaHeaders(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("x-ratelimit-limit-requests", "5000")
		h.Set("x-ratelimit-remaining-requests", "4999")
		h.Set("x-ratelimit-reset-requests", "12ms")
		h.Set("x-ratelimit-limit-tokens", "160000")
		h.Set("x-ratelimit-remaining-tokens", "159976")
		h.Set("x-ratelimit-reset-tokens", "6m0s")
		if r.Header.Get("X-Limited") != "" {
			h.Set("x-ratelimit-remaining-requests", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`)
			return
		}
		io.WriteString(w, `{"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}`)
	}))
	defer srv.Close()
	want := llm.Quota{
		Requests: llm.QuotaWindow{Known: true, Limit: 5000, Remaining: 4999, Reset: 12 * time.Millisecond},
		Tokens:   llm.QuotaWindow{Known: true, Limit: 160000, Remaining: 159976, Reset: 6 * time.Minute},
	}
	c, err := openai.New(openai.Config{BaseURL: srv.URL, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Complete(context.Background(), llm.Request{Model: "m", Prompt: "hi"})
	if err != nil || resp.Quota != want {
		t.Fatalf("Complete: quota %+v, %v; want %+v", resp.Quota, err, want)
	}
	limited, err := openai.New(openai.Config{BaseURL: srv.URL, HTTPClient: srv.Client(), Header: http.Header{"X-Limited": {"1"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = limited.Complete(context.Background(), llm.Request{Model: "m", Prompt: "hi"})
	var le *llm.Error
	want.Requests.Remaining = 0
	if !errors.As(err, &le) || le.Class != llm.ClassRateLimited || le.Quota != want {
		t.Fatalf("429: %+v, want rate_limited with quota %+v", le, want)
	}
}
