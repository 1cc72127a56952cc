package gemini_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/gemini"
)

// Thinking tokens are billed as output; thought parts are not part of the answer.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"candidates":[{"content":{"role":"model","parts":[{"text":"Capital, France...","thought":true},{"text":"Paris."}]},
			"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":2,"thoughtsTokenCount":30},
			"responseId":"resp_abc"}`)
	}))
	defer srv.Close()

	c, err := gemini.New(gemini.Config{BaseURL: srv.URL, APIKey: "AIza-example", HTTPClient: srv.Client()})
	if err != nil {
		fmt.Println(err)
		return
	}
	resp, err := c.Complete(context.Background(), llm.Request{
		Model: "gemini-2.5-flash", System: "Answer in one word.", Prompt: "Capital of France?", MaxTokens: 256,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Text, resp.FinishReason, resp.RequestID)
	fmt.Println("input", resp.InputTokens, "output", resp.OutputTokens)
	// Output:
	// Paris. stop resp_abc
	// input 10 output 32
}

// A per-day quota is quota_exhausted (not retried); a per-minute one is
// rate_limited with the server's retryDelay.
func Example_quota() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":{"code":429,"message":"You exceeded your current quota","status":"RESOURCE_EXHAUSTED","details":[
			{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
			{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"13s"}]}}`)
	}))
	defer srv.Close()

	c, _ := gemini.New(gemini.Config{BaseURL: srv.URL, APIKey: "AIza-example", HTTPClient: srv.Client()})
	_, err := c.Complete(context.Background(), llm.Request{Model: "gemini-2.5-flash", Prompt: "hi"})
	var le *llm.Error
	if errors.As(err, &le) {
		fmt.Println(le.Class, le.RetryAfter)
	}
	// Output:
	// rate_limited 13s
}
