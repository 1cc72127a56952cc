package anthropic_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/anthropic"
)

// The Messages API answers with content blocks and cache-aware usage.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Request-Id", "req_011")
		io.WriteString(w, `{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"Paris."}],
			"stop_reason":"end_turn","usage":{"input_tokens":12,"output_tokens":4,"cache_read_input_tokens":900,"cache_creation_input_tokens":0}}`)
	}))
	defer srv.Close()

	c, err := anthropic.New(anthropic.Config{BaseURL: srv.URL, APIKey: "sk-ant-example", HTTPClient: srv.Client()})
	if err != nil {
		fmt.Println(err)
		return
	}
	resp, err := c.Complete(context.Background(), llm.Request{
		Model: "claude-haiku-4-5", System: "Answer in one word.", Prompt: "Capital of France?",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Text, resp.FinishReason, resp.RequestID)
	fmt.Println("input", resp.InputTokens, "cache read", resp.CacheReadTokens, "output", resp.OutputTokens)
	// Output:
	// Paris. stop req_011
	// input 12 cache read 900 output 4
}

// A 529 is "overloaded": retry the same model after a pause.
func Example_overloaded() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(529)
		io.WriteString(w, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
	}))
	defer srv.Close()

	c, _ := anthropic.New(anthropic.Config{BaseURL: srv.URL, APIKey: "sk-ant-example", HTTPClient: srv.Client()})
	_, err := c.Complete(context.Background(), llm.Request{Model: "claude-haiku-4-5", Prompt: "hi"})
	fmt.Println(err)
	fmt.Println(llm.ClassOf(err).Retryable())
	// Output:
	// anthropic/claude-haiku-4-5: overloaded (HTTP 529): overloaded_error: Overloaded
	// true
}
