package openai_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/openai"
)

// A Groq-style OpenAI-compatible server answers one prompt; the client
// reports text, finish reason and usage, cached prompt tokens apart.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "req_01")
		io.WriteString(w, `{"choices":[{"index":0,"message":{"role":"assistant","content":"Paris."},"finish_reason":"stop"}],
			"usage":{"prompt_tokens":120,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":100}}}`)
	}))
	defer srv.Close()

	c, err := openai.New(openai.Config{
		Name:       "groq",
		BaseURL:    srv.URL, // e.g. https://api.groq.com/openai
		APIKey:     "gsk_example",
		HTTPClient: srv.Client(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	resp, err := c.Complete(context.Background(), llm.Request{
		Model: "llama-3.1-8b-instant", System: "Answer in one word.", Prompt: "Capital of France?", MaxTokens: 16,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Text, resp.FinishReason)
	fmt.Println("input", resp.InputTokens, "cached", resp.CacheReadTokens, "output", resp.OutputTokens, "request", resp.RequestID)
	// Output:
	// Paris. stop
	// input 20 cached 100 output 3 request req_01
}

// Failures are *llm.Error values whose Class says what to do next; the key
// never appears in them, even when the server echoes it.
func Example_rateLimited() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":{"message":"Rate limit reached for key sk-live-123456","type":"requests","code":"rate_limit_exceeded"}}`)
	}))
	defer srv.Close()

	c, _ := openai.New(openai.Config{BaseURL: srv.URL, APIKey: "sk-live-123456", HTTPClient: srv.Client()})
	_, err := c.Complete(context.Background(), llm.Request{Model: "gpt-4o-mini", Prompt: "hi"})

	var le *llm.Error
	if errors.As(err, &le) {
		fmt.Println(le.Class, le.HTTPStatus, le.RetryAfter, le.Retryable())
		fmt.Println(le.Message)
	}
	// Output:
	// rate_limited 429 7s true
	// rate_limit_exceeded: Rate limit reached for key [REDACTED]
}
