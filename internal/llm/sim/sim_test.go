package sim

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/tokens"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	simplePrompt  = "What is the capital of France?"
	articlePrompt = "Analyze the tradeoffs between LORA and full fine-tuning for a 70B parameter model, compare memory usage and downstream task performance"
)

// hardPrompt is long (over 60 words) with several complex keywords.
var hardPrompt = articlePrompt + ". Then design a migration plan, debug the failure modes you expect, optimize the " +
	"evaluation loop, and prove that the implications for latency and cost are acceptable for a team of " +
	"five engineers who maintain the serving stack and the training cluster."

var refusalPhrases = []string{"i cannot", "i can't", "i'm unable to", "as an ai", "i don't have the ability"}

// weak reports whether text fails the article's quality check for prompt.
func weak(prompt, text string) bool {
	if len(strings.Fields(prompt)) > 20 && len(strings.Fields(text)) < 15 {
		return true
	}
	if strings.TrimSpace(text) == "" {
		return true
	}
	lower := strings.ToLower(text)
	for _, p := range refusalPhrases {
		if strings.Contains(lower, p) {
			return true
		}
	}
	return false
}

func complete(t testing.TB, p *Provider, req llm.Request) (llm.Response, error) {
	t.Helper()
	return p.Complete(context.Background(), req)
}

func TestUnknownModel(t *testing.T) {
	t.Parallel()
	p := New(map[string]Model{"small": {}})
	_, err := complete(t, p, llm.Request{Model: "huge", Prompt: "hi"})
	var le *llm.Error
	if !errors.As(err, &le) || le.Class != llm.ClassNotFound || le.HTTPStatus != 404 || le.Provider != Name {
		t.Fatalf("err = %#v, want not_found 404", err)
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	m := Model{Latency: 100 * time.Millisecond, ErrorRate: 0.1, RateLimitRate: 0.1, WeakRate: 0.2, Capability: 0.3}
	p := New(map[string]Model{"m": m})
	mm := p.models["m"]
	texts, good := map[string]bool{}, 0
	for seed := range uint64(300) {
		req := llm.Request{Model: "m", System: "You are a helpful assistant.", Prompt: hardPrompt, Seed: seed}
		a, b := mm.plan(req), mm.plan(req)
		if a != b {
			t.Fatalf("seed %d: plans differ:\n%+v\n%+v", seed, a, b)
		}
		if a.kind == kindOK {
			texts[a.text] = true
			good++
		}
	}
	if len(texts) < good*9/10 {
		t.Errorf("only %d distinct texts among %d good answers", len(texts), good)
	}

	// Complete itself (latency 0 so the test does not sleep).
	p0 := New(map[string]Model{"m": {ErrorRate: 0.2, RateLimitRate: 0.2, WeakRate: 0.2}})
	for seed := range uint64(200) {
		req := llm.Request{Model: "m", Prompt: articlePrompt, Seed: seed}
		r1, e1 := complete(t, p0, req)
		r2, e2 := complete(t, p0, req)
		if r1 != r2 || llm.ClassOf(e1) != llm.ClassOf(e2) {
			t.Fatalf("seed %d: %+v/%v vs %+v/%v", seed, r1, e1, r2, e2)
		}
	}
}

// within checks that k successes in n trials fit probability p, with a
// 5-sigma band (plus one count for tiny p) so the test never flakes.
func within(t *testing.T, name string, k, n int, p float64) {
	t.Helper()
	sigma := math.Sqrt(float64(n) * p * (1 - p))
	if d := math.Abs(float64(k) - float64(n)*p); d > 5*sigma+1 {
		t.Errorf("%s: %d of %d, want %.0f ± %.0f", name, k, n, float64(n)*p, 5*sigma)
	}
}

func TestRatesHonoured(t *testing.T) {
	t.Parallel()
	m := Model{ErrorRate: 0.10, RateLimitRate: 0.05, TimeoutRate: 0.02, WeakRate: 0.15, Capability: 1}
	p := New(map[string]Model{"m": m})
	mm := p.models["m"]
	const n = 10000
	var counts [5]int
	for seed := range uint64(n) {
		pl := mm.plan(llm.Request{Model: "m", Prompt: articlePrompt, Seed: seed*7919 + 13})
		counts[pl.kind]++
	}
	within(t, "server errors", counts[kindServerError], n, m.ErrorRate)
	within(t, "rate limits", counts[kindRateLimited], n, m.RateLimitRate)
	within(t, "timeouts", counts[kindTimeout], n, m.TimeoutRate)
	answered := counts[kindOK] + counts[kindWeak]
	within(t, "weak answers", counts[kindWeak], answered, m.WeakRate) // capability 1: WeakRate alone

	zero := New(map[string]Model{"m": {Capability: 1}}).models["m"]
	for seed := range uint64(1000) {
		if k := zero.plan(llm.Request{Model: "m", Prompt: hardPrompt, Seed: seed}).kind; k != kindOK {
			t.Fatalf("seed %d: kind %d with every rate at 0", seed, k)
		}
	}
}

func TestWeakMoreLikelyForLowCapabilityOnHardPrompts(t *testing.T) {
	t.Parallel()
	p := New(map[string]Model{
		"low":  {WeakRate: 0.01, Capability: 0.2},
		"high": {WeakRate: 0.01, Capability: 0.95},
	})
	const n = 3000
	rate := func(model, prompt string) int {
		k := 0
		for seed := range uint64(n) {
			resp, err := complete(t, p, llm.Request{Model: model, Prompt: prompt, Seed: seed})
			if err != nil {
				t.Fatal(err)
			}
			if p.models[model].plan(llm.Request{Model: model, Prompt: prompt, Seed: seed}).kind == kindWeak {
				k++
				if len(strings.Fields(resp.Text)) >= 15 && !weak(hardPrompt, resp.Text) {
					t.Fatalf("weak answer %q is neither short nor a refusal", resp.Text)
				}
			} else if weak(hardPrompt, resp.Text) {
				t.Fatalf("good answer fails the quality check: %q", resp.Text)
			}
		}
		return k
	}
	lowHard, lowEasy, highHard := rate("low", hardPrompt), rate("low", simplePrompt), rate("high", hardPrompt)
	t.Logf("weak answers of %d: low/hard %d, low/easy %d, high/hard %d", n, lowHard, lowEasy, highHard)
	for _, c := range []struct {
		name   string
		model  string
		prompt string
		k      int
	}{{"low/hard", "low", hardPrompt, lowHard}, {"low/easy", "low", simplePrompt, lowEasy}, {"high/hard", "high", hardPrompt, highHard}} {
		within(t, c.name, c.k, n, p.models[c.model].weakProbability(measure(c.prompt)))
	}
	if lowHard < 3*lowEasy || lowHard < 3*highHard {
		t.Errorf("weak answers not concentrated on low capability + hard prompt: %d %d %d", lowHard, lowEasy, highHard)
	}
}

func TestUsageMatchesTokenizer(t *testing.T) {
	t.Parallel()
	p := New(map[string]Model{"m": {WeakRate: 0.2, Capability: 0.5}})
	prompts := []string{
		simplePrompt, articlePrompt, hardPrompt,
		"Summarize (briefly) the 2024 report on GPU pricing, AWS-vs-GCP, and NVIDIA's H100 supply.",
		"Translate «bonjour le monde» into Japanese: 日本語 please, and explain kanji usage 42 times",
		"x", "   ", "DEBUG   the   PARSER\n\nthen REFACTOR it; ALLCAPS words like HTTP2 and IPv6 matter",
	}
	for _, prompt := range prompts {
		for seed := range uint64(150) {
			req := llm.Request{Model: "m", System: "You are a helpful assistant.", Prompt: prompt, Seed: seed, MaxTokens: int(seed % 97)}
			resp, err := complete(t, p, req)
			if err != nil {
				t.Fatal(err)
			}
			if got := tokens.Count(resp.Text); got != resp.OutputTokens {
				t.Fatalf("prompt %q seed %d: OutputTokens %d, tokenizer says %d for %q", prompt, seed, resp.OutputTokens, got, resp.Text)
			}
			if want := tokens.Count(req.System) + tokens.Count(req.Prompt); resp.InputTokens != want {
				t.Fatalf("InputTokens %d, want %d", resp.InputTokens, want)
			}
			if resp.HTTPStatus != 200 || resp.RequestID == "" {
				t.Fatalf("resp %+v", resp)
			}
		}
	}
}

func TestMaxTokens(t *testing.T) {
	t.Parallel()
	p := New(map[string]Model{"m": {Capability: 1}})
	exact := 0
	for seed := range uint64(200) {
		resp, err := complete(t, p, llm.Request{Model: "m", Prompt: hardPrompt, Seed: seed, MaxTokens: 25})
		if err != nil {
			t.Fatal(err)
		}
		if resp.FinishReason != "length" || resp.OutputTokens > 25 || resp.OutputTokens < 20 {
			t.Fatalf("seed %d: finish %q, %d tokens", seed, resp.FinishReason, resp.OutputTokens)
		}
		if resp.OutputTokens == 25 {
			exact++
		}
		full, _ := complete(t, p, llm.Request{Model: "m", Prompt: hardPrompt, Seed: seed})
		if full.FinishReason != "stop" || !strings.HasPrefix(full.Text, resp.Text) {
			t.Fatalf("seed %d: uncut answer %q does not start with the cut one %q", seed, full.Text, resp.Text)
		}
	}
	if exact < 150 {
		t.Errorf("only %d of 200 cut answers use the whole budget", exact)
	}
}

func TestAnswerLengthFitsPrompt(t *testing.T) {
	t.Parallel()
	p := New(map[string]Model{"m": {Capability: 1}})
	avg := func(prompt string) float64 {
		total := 0
		for seed := range uint64(200) {
			resp, _ := complete(t, p, llm.Request{Model: "m", Prompt: prompt, Seed: seed})
			w := len(strings.Fields(resp.Text))
			if w < 15 {
				t.Fatalf("good answer of %d words: %q", w, resp.Text)
			}
			total += w
		}
		return float64(total) / 200
	}
	simple, article, hard := avg(simplePrompt), avg(articlePrompt), avg(hardPrompt)
	t.Logf("average answer words: simple %.0f, article complex %.0f, hard %.0f", simple, article, hard)
	if !(simple < article && article < hard) || simple > 60 {
		t.Errorf("answer lengths do not grow with the prompt: %.0f %.0f %.0f", simple, article, hard)
	}
}

func TestFailureModes(t *testing.T) {
	t.Parallel()
	p := New(map[string]Model{
		"err":  {ErrorRate: 1},
		"rl":   {RateLimitRate: 1},
		"rl5":  {RateLimitRate: 1, RetryAfter: 5 * time.Second},
		"hang": {TimeoutRate: 1},
	})
	statuses := map[int]int{}
	for seed := range uint64(100) {
		_, err := complete(t, p, llm.Request{Model: "err", Prompt: "x", Seed: seed})
		var le *llm.Error
		if !errors.As(err, &le) || le.Class != llm.ClassServerError || (le.HTTPStatus != 500 && le.HTTPStatus != 503) || le.RequestID == "" {
			t.Fatalf("err = %#v", err)
		}
		statuses[le.HTTPStatus]++
	}
	if statuses[500] == 0 || statuses[503] == 0 {
		t.Errorf("server errors %v: want both 500 and 503", statuses)
	}
	for model, ra := range map[string]time.Duration{"rl": DefaultRetryAfter, "rl5": 5 * time.Second} {
		_, err := complete(t, p, llm.Request{Model: model, Prompt: "x"})
		var le *llm.Error
		if !errors.As(err, &le) || le.Class != llm.ClassRateLimited || le.HTTPStatus != 429 || le.RetryAfter != ra || !le.Retryable() {
			t.Fatalf("%s: err = %#v", model, err)
		}
	}

	// A timeout blocks until the deadline, then reports ClassTimeout.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := p.Complete(ctx, llm.Request{Model: "hang", Prompt: "x"})
	if llm.ClassOf(err) != llm.ClassTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	// Measured against the context's own deadline: a clock read after
	// WithTimeout starts late by however long the scheduler took.
	if dl, _ := ctx.Deadline(); time.Now().Before(dl) {
		t.Errorf("returned %v before the deadline", time.Until(dl))
	}
}

func TestContextCancellation(t *testing.T) {
	t.Parallel()
	p := New(map[string]Model{"slow": {Latency: time.Hour}, "hang": {TimeoutRate: 1}})
	for _, model := range []string{"slow", "hang"} {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := p.Complete(ctx, llm.Request{Model: model, Prompt: "x"})
			done <- err
		}()
		time.Sleep(5 * time.Millisecond)
		cancel()
		select {
		case err := <-done:
			if llm.ClassOf(err) != llm.ClassTimeout || !errors.Is(err, context.Canceled) {
				t.Errorf("%s: err = %v", model, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Complete ignored the cancelled context", model)
		}
	}
	// Already done: fails at once without drawing anything.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Complete(ctx, llm.Request{Model: "slow", Prompt: "x"}); llm.ClassOf(err) != llm.ClassTimeout {
		t.Errorf("err = %v", err)
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	p := New(map[string]Model{"zero": {ErrorRate: 0.3, RateLimitRate: 0.3}, "m": {Latency: 400 * time.Millisecond}})
	for seed := range uint64(500) {
		if l := p.models["zero"].plan(llm.Request{Model: "zero", Prompt: hardPrompt, Seed: seed}).latency; l != 0 {
			t.Fatalf("latency %v with Latency 0", l)
		}
	}
	m := p.models["m"]
	var sum, sumTok float64
	seen := map[time.Duration]bool{}
	const n = 2000
	for seed := range uint64(n) {
		pl := m.plan(llm.Request{Model: "m", Prompt: articlePrompt, Seed: seed})
		if pl.latency <= 0 {
			t.Fatalf("latency %v", pl.latency)
		}
		seen[pl.latency] = true
		sum += float64(pl.latency)
		sumTok += float64(pl.outTokens)
	}
	// Mean = Latency * (0.5 + 0.5 * mean tokens / 150), lognormal jitter on the first half.
	want := 400e6 * (0.5 + 0.5*sumTok/n/typicalAnswerTokens)
	if got := sum / n; math.Abs(got-want) > 0.05*want {
		t.Errorf("mean latency %v, want about %v", time.Duration(got), time.Duration(want))
	}
	if len(seen) < n/2 {
		t.Errorf("latency has little jitter: %d distinct values", len(seen))
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, m := range Defaults() {
		if err := m.Validate(); err != nil {
			t.Errorf("default model invalid: %v", err)
		}
	}
	bad := map[string]Model{
		"latency":                      {Latency: -1},
		"error_rate":                   {ErrorRate: 1.5},
		"weak_rate":                    {WeakRate: -0.1},
		"capability":                   {Capability: math.NaN()},
		"retry_after":                  {RetryAfter: -time.Second},
		"rpm":                          {RPM: -1},
		"tpm":                          {TPM: -1},
		"max_concurrency":              {MaxConcurrency: -1},
		"error_rate + rate_limit_rate": {ErrorRate: 0.6, RateLimitRate: 0.6},
	}
	for want, m := range bad {
		if err := m.Validate(); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Validate(%+v) = %v, want %s...", m, err, want)
		}
	}
}

func TestDefaultsArePriced(t *testing.T) {
	t.Parallel()
	prices := pricing.Builtin()
	for id := range Defaults() {
		if _, ok := prices.Lookup(Name + "/" + id); !ok {
			t.Errorf("sim/%s has no built-in price", id)
		}
	}
}

func BenchmarkComplete(b *testing.B) {
	p := New(map[string]Model{"m": {Capability: 0.7, WeakRate: 0.02}})
	p.Complete(context.Background(), llm.Request{Model: "m", Prompt: "warm up the tokenizer"})
	for _, bc := range []struct{ name, prompt string }{{"simple", simplePrompt}, {"article_complex", articlePrompt}, {"hard", hardPrompt}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			var seed uint64
			for b.Loop() {
				seed++
				if _, err := p.Complete(ctx, llm.Request{Model: "m", System: "You are a helpful assistant.", Prompt: bc.prompt, Seed: seed}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestSimJudge(t *testing.T) {
	t.Parallel()
	p := New(map[string]Model{"judge": {Capability: 0.9}})
	verdicts := func(promptText string) (yes, no int) {
		for seed := range uint64(200) {
			resp, err := p.Complete(t.Context(), llm.Request{Model: "judge", System: llm.JudgeSystem,
				Prompt: llm.JudgePrompt(promptText, "an answer of a few words here", "another answer of a few words"), Seed: seed})
			if err != nil {
				t.Fatal(err)
			}
			good, ok := llm.ParseVerdict(resp.Text)
			if !ok || resp.OutputTokens == 0 {
				t.Fatalf("judge reply %q (%d tokens) is not a verdict", resp.Text, resp.OutputTokens)
			}
			if good {
				yes++
			} else {
				no++
			}
		}
		return yes, no
	}
	easyYes, _ := verdicts("What is the capital of France?")
	hardYes, hardNo := verdicts("Analyze and compare the tradeoffs, then design and optimize a plan; prove it and debug the implications " +
		strings.Repeat("of every part of the system ", 12))
	if easyYes < 180 || hardNo < 60 || hardYes >= easyYes {
		t.Errorf("judge: easy prompt %d/200 YES, hard prompt %d/200 YES; want nearly all YES on easy, far fewer on hard", easyYes, hardYes)
	}
	// A much shorter answer A always loses.
	resp, err := p.Complete(t.Context(), llm.Request{Model: "judge", System: llm.JudgeSystem,
		Prompt: llm.JudgePrompt("What is 2+2?", "4", "The answer is four, since two plus two makes four."), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if good, _ := llm.ParseVerdict(resp.Text); good {
		t.Errorf("judge said a one-word answer is as good as a full one: %q", resp.Text)
	}
}
