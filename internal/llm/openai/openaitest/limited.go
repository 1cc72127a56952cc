// Package openaitest serves the OpenAI chat-completions wire format for
// tests and benchmarks: a server whose "cheap" model has a capacity shared
// by every client, as a real API key's rate limit is.
package openaitest

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"
)

// Limited is an OpenAI-compatible server with two models: "cheap", whose
// capacity is a token bucket shared by every client (Rate requests per
// second, a burst of a tenth of a second), answering 429 with
// retry-after-ms beyond it; and any other model, unlimited. Every answer
// comes after Latency. Close it when done.
type Limited struct {
	URL     string
	srv     *httptest.Server
	rate    float64
	burst   float64
	latency time.Duration

	mu      sync.Mutex
	tokens  float64
	last    time.Time
	calls   map[string]int
	limited int
	first   time.Time // first call to cheap
	lastOK  time.Time // last answer of cheap
}

// NewLimited starts a server whose cheap model allows rate requests/s.
func NewLimited(rate float64, latency time.Duration) *Limited {
	a := &Limited{rate: rate, burst: math.Max(1, rate/10), latency: latency, calls: map[string]int{}}
	a.tokens, a.last = a.burst, time.Now()
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	a.URL = a.srv.URL
	return a
}

// Client is an HTTP client for the server.
func (a *Limited) Client() *http.Client { return a.srv.Client() }

// Close stops the server.
func (a *Limited) Close() { a.srv.Close() }

func (a *Limited) serve(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	now := time.Now()
	a.calls[req.Model]++
	if req.Model == "cheap" {
		if a.first.IsZero() {
			a.first = now
		}
		a.tokens = math.Min(a.burst, a.tokens+now.Sub(a.last).Seconds()*a.rate)
		a.last = now
		if a.tokens < 1 {
			a.limited++
			wait := (1 - a.tokens) / a.rate * 1000
			a.mu.Unlock()
			w.Header().Set("Retry-After-Ms", strconv.Itoa(int(math.Ceil(wait))))
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}`)
			return
		}
		a.tokens--
	}
	a.mu.Unlock()
	time.Sleep(a.latency)
	if req.Model == "cheap" {
		a.mu.Lock()
		a.lastOK = time.Now()
		a.mu.Unlock()
	}
	io.WriteString(w, `{"id":"x","choices":[{"message":{"role":"assistant","content":"A long enough answer that passes the quality gate because it has plenty of words in it, sixteen or more."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":22}}`)
}

// Counts are what the server saw.
type Counts struct {
	Cheap, Other, Limited int // calls to cheap, to other models, and cheap's 429s
	// CapacityUsed is cheap's answers over what its bucket allowed between
	// its first call and its last answer.
	CapacityUsed float64
}

// Counts returns what the server saw so far.
func (a *Limited) Counts() Counts {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := Counts{Cheap: a.calls["cheap"], Limited: a.limited}
	for m, n := range a.calls {
		if m != "cheap" {
			c.Other += n
		}
	}
	if answered := c.Cheap - c.Limited; answered > 0 {
		allowed := a.burst + a.rate*a.lastOK.Sub(a.first).Seconds()
		c.CapacityUsed = float64(answered) / allowed
	}
	return c
}
