package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/openai"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/worker"
)

// limitedAPI is an OpenAI-compatible server with two models: "cheap", whose
// capacity is a token bucket shared by every client (rate per second, burst
// of a tenth of a second), answering 429 with retry-after-ms beyond it, and
// "pricey", unlimited. Both answer after latency.
type limitedAPI struct {
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

func newLimitedAPI(t *testing.T, rate float64, latency time.Duration) *limitedAPI {
	a := &limitedAPI{rate: rate, burst: math.Max(1, rate/10), latency: latency, calls: map[string]int{}}
	a.tokens, a.last = a.burst, time.Now()
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *limitedAPI) serve(w http.ResponseWriter, r *http.Request) {
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

type apiCounts struct {
	cheap, pricey, limited int
	capacityUsed           float64 // cheap answers / what the bucket allowed between the first call and the last answer
}

func (a *limitedAPI) counts() apiCounts {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := apiCounts{cheap: a.calls["cheap"], pricey: a.calls["pricey"], limited: a.limited}
	if answered := c.cheap - c.limited; answered > 0 {
		allowed := a.burst + a.rate*a.lastOK.Sub(a.first).Seconds()
		c.capacityUsed = float64(answered) / allowed
	}
	return c
}

// runSharedWorkers runs n worker processes (each with its own cascade and
// limiters, as separate processes have) on one consumer until the queue is
// empty.
func runSharedWorkers(t *testing.T, b *bundle, api *limitedAPI, n int, policy cascade.OnRateLimit) {
	t.Helper()
	mini, _ := pricing.Builtin().Lookup("openai/gpt-4o-mini")
	pricey := pricing.Price{InputPerMTok: mini.InputPerMTok * 30, OutputPerMTok: mini.OutputPerMTok * 30}
	models := []string{"openai/cheap", "openai/pricey"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for i := range n {
		client, err := openai.New(openai.Config{BaseURL: api.srv.URL, APIKey: "sk-test", HTTPClient: api.srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		reg := llm.NewRegistry()
		reg.Register("openai", client)
		cas, err := cascade.New(cascade.Settings{
			Tiers: map[prompt.Tier][]string{prompt.TierSimple: models, prompt.TierModerate: models, prompt.TierComplex: models},
			Models: map[string]cascade.ModelPolicy{
				"openai/cheap":  {Model: "openai/cheap", Timeout: 10 * time.Second, MaxRetries: 1, Price: mini},
				"openai/pricey": {Model: "openai/pricey", Timeout: 10 * time.Second, MaxRetries: 1, Price: pricey},
			},
			Backoff:     cascade.Backoff{Base: 10 * time.Millisecond, Max: time.Second},
			RateLimit:   cascade.RateLimit{OnRateLimit: policy},
			MaxInFlight: 100,
		}, reg, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg := b.cfg
		cfg.WorkerID = fmt.Sprint("w", i)
		cfg.Concurrency = 100
		w := worker.New(cfg, queue.NewSource(b.qc, b.cons), b.st, classify.Default(), cas,
			slog.New(slog.DiscardHandler))
		wg.Go(func() {
			if err := w.Run(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

// TestRateLimitedProviderSharedByWorkers: three workers share a cheap
// model's capacity (100 requests/s, 429 beyond it) and an unlimited fallback
// priced 30× higher. Under on_rate_limit: wait they settle under the
// capacity without being told it: nearly every prompt is answered by the
// cheap model, most of its capacity is used, and few of its calls are 429s.
// Under cascade the fallback answers what the cheap model refuses.
func TestRateLimitedProviderSharedByWorkers(t *testing.T) {
	const prompts = 1500
	t.Run("wait", func(t *testing.T) {
		b := setup(t, queue.Config{})
		api := newLimitedAPI(t, 100, 20*time.Millisecond)
		b.publish("b1", prompts)
		start := time.Now()
		runSharedWorkers(t, b, api, 3, cascade.WaitOnRateLimit)
		c := api.counts()
		cheapAnswers := b.count(`SELECT count(*) FROM results WHERE status = 'succeeded' AND model_used = 'openai/cheap'`)
		done := b.count(`SELECT count(*) FROM results WHERE status = 'succeeded'`)
		t.Logf("%v: %d prompts, %d by the cheap model; cheap calls %d (%d 429s, %.1f%%), pricey calls %d; capacity used %.1f%%",
			time.Since(start).Round(time.Millisecond), done, cheapAnswers, c.cheap, c.limited, 100*float64(c.limited)/float64(c.cheap), c.pricey, 100*c.capacityUsed)
		if done != prompts {
			t.Fatalf("%d prompts answered, want %d", done, prompts)
		}
		if share := float64(cheapAnswers) / prompts; share < 0.95 {
			t.Errorf("cheap model answered %.1f%% of the prompts, want >= 95%%", 100*share)
		}
		if c.capacityUsed < 0.85 {
			t.Errorf("%.1f%% of the cheap model's capacity used, want >= 85%%", 100*c.capacityUsed)
		}
		if share := float64(c.limited) / float64(c.cheap); share > 0.10 {
			t.Errorf("%.1f%% of the cheap model's calls were 429s, want <= 10%%", 100*share)
		}
		if n := b.count(`SELECT count(*) FROM request_log WHERE outcome = 'rate_limited'`); n != c.limited {
			t.Errorf("request_log has %d rate_limited rows, the server sent %d 429s", n, c.limited)
		}
	})
	t.Run("cascade", func(t *testing.T) {
		b := setup(t, queue.Config{})
		api := newLimitedAPI(t, 100, 20*time.Millisecond)
		b.publish("b1", prompts)
		runSharedWorkers(t, b, api, 3, cascade.CascadeOnRateLimit)
		c := api.counts()
		pricey := b.count(`SELECT count(*) FROM results WHERE status = 'succeeded' AND model_used = 'openai/pricey'`)
		done := b.count(`SELECT count(*) FROM results WHERE status = 'succeeded'`)
		t.Logf("%d prompts, %d by the fallback; cheap calls %d (%d 429s)", done, pricey, c.cheap, c.limited)
		if done != prompts {
			t.Fatalf("%d prompts answered, want %d", done, prompts)
		}
		if share := float64(pricey) / prompts; share < 0.3 {
			t.Errorf("the fallback answered %.1f%% of the prompts; under cascade a rate limit falls back", 100*share)
		}
	})
}
