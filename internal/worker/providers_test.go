package worker_test

// End-to-end tests of the worker on real provider adapters: real JetStream,
// real Postgres, and httptest servers that speak the OpenAI, Anthropic and
// Gemini wire formats. The registry and the cascade are built exactly as
// cmd/worker builds them (config.ParseRoutes, wire.Registry with
// <PROVIDER>_BASE_URL pointing at the fakes), so these tests cover routes
// parsing, adapters, cascade and store together.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
	tok "github.com/promptcascade/promptcascade/internal/tokens"
	wiring "github.com/promptcascade/promptcascade/internal/wire"
	"github.com/promptcascade/promptcascade/internal/worker"
)

// ---------------------------------------------------------------- fake APIs

// wire is the protocol a fake server speaks.
type wire string

const (
	wireOpenAI    wire = "openai" // also Groq, vLLM, Ollama
	wireAnthropic wire = "anthropic"
	wireGemini    wire = "gemini"
)

// keyMark in a reply's body or headers is replaced by the API key the request
// carried: real providers echo keys back ("Incorrect API key provided: sk-...").
// ridMark is replaced by a request id, which echoes the key too when the fake
// has echoKeyInRequestIDs.
const (
	keyMark = "{{KEY}}"
	ridMark = "{{RID}}"
)

// reply is one HTTP response of a fake server.
type reply struct {
	status int
	header map[string]string
	body   any // JSON-encoded
}

// apiCall is one request a fake server received.
type apiCall struct {
	model, prompt string
	at            time.Time // arrival, measured at the server
	body          map[string]any
}

// script answers the n-th call (1-based) of one model.
type script func(n int, prompt string) reply

func always(r reply) script { return func(int, string) reply { return r } }

// seq answers the n-th call with rs[n-1], and every later call with the last.
func seq(rs ...reply) script {
	return func(n int, _ string) reply { return rs[min(n, len(rs))-1] }
}

// fakeAPI is one provider's HTTP API. It checks the route and the key header
// of every request, records it, and answers from the script of its model (a
// model without a script gets the provider's 404 "model not found").
type fakeAPI struct {
	t       *testing.T
	wire    wire
	key     string
	scripts map[string]script
	// echoKeyInHeaders also sends the received key back in response
	// headers other than request ids.
	echoKeyInHeaders bool
	// echoKeyInRequestIDs puts the key into every request id: the
	// x-request-id and request-id headers and Anthropic's body request_id.
	echoKeyInRequestIDs bool

	srv      *httptest.Server
	mu       sync.Mutex
	calls    []apiCall
	perModel map[string]int
}

func newFakeAPI(t *testing.T, w wire, key string, scripts map[string]script) *fakeAPI {
	f := &fakeAPI{t: t, wire: w, key: key, scripts: scripts, perModel: map[string]int{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	data, err := io.ReadAll(r.Body)
	var body map[string]any
	if err == nil {
		err = json.Unmarshal(data, &body)
	}
	if err != nil {
		f.t.Errorf("%s fake: unreadable request body: %v", f.wire, err)
		http.Error(w, "bad request body", http.StatusBadRequest)
		return
	}
	model, text, key, ok := f.route(r, body)
	if !ok {
		f.t.Errorf("%s fake: unexpected request %s %s", f.wire, r.Method, r.URL.Path)
		http.NotFound(w, r)
		return
	}
	if key != f.key {
		// Never print keys, not even in test output.
		f.t.Errorf("%s fake: request for %s carried the wrong key (or none)", f.wire, model)
	}
	f.mu.Lock()
	f.calls = append(f.calls, apiCall{model: model, prompt: text, at: at, body: body})
	f.perModel[model]++
	n := f.perModel[model]
	s := f.scripts[model]
	f.mu.Unlock()

	rep := errReply(f.wire, llm.ClassNotFound)
	if s != nil {
		rep = s(n, text)
	}
	rid := fmt.Sprintf("req_%04d", n)
	if f.echoKeyInRequestIDs {
		rid = "req_" + key
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	for k, v := range rep.header {
		h.Set(k, strings.ReplaceAll(v, keyMark, key))
	}
	if f.echoKeyInHeaders {
		h.Set("X-Echo-Api-Key", key)
		h.Set("Www-Authenticate", `Bearer error="invalid_token", key="`+key+`"`)
	}
	if f.echoKeyInRequestIDs {
		h.Set("X-Request-Id", rid) // OpenAI-compatible servers
		if n%2 == 0 {
			// Anthropic's header; on odd calls the error body's
			// request_id is the one the adapter reads.
			h.Set("Request-Id", rid)
		}
	}
	out, err := json.Marshal(rep.body)
	if err != nil {
		f.t.Errorf("fake reply: %v", err)
	}
	out = bytes.ReplaceAll(out, []byte(ridMark), []byte(rid))
	w.WriteHeader(rep.status)
	w.Write(bytes.ReplaceAll(out, []byte(keyMark), []byte(key)))
}

// route checks method, path and auth headers for the wire format and returns
// the bare model id, the user prompt and the key the request carried.
func (f *fakeAPI) route(r *http.Request, body map[string]any) (model, text, key string, ok bool) {
	if r.Method != http.MethodPost {
		return "", "", "", false
	}
	str := func(v any) string { s, _ := v.(string); return s }
	switch f.wire {
	case wireOpenAI:
		if !strings.HasSuffix(r.URL.Path, "/v1/chat/completions") {
			return "", "", "", false
		}
		msgs, _ := body["messages"].([]any)
		if len(msgs) > 0 {
			m, _ := msgs[len(msgs)-1].(map[string]any)
			text = str(m["content"])
		}
		return str(body["model"]), text, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), true
	case wireAnthropic:
		if r.URL.Path != "/v1/messages" || r.Header.Get("Anthropic-Version") == "" {
			return "", "", "", false
		}
		if _, ok := body["max_tokens"]; !ok {
			f.t.Errorf("anthropic fake: max_tokens missing (the API requires it)")
		}
		msgs, _ := body["messages"].([]any)
		if len(msgs) > 0 {
			m, _ := msgs[0].(map[string]any)
			text = str(m["content"])
		}
		return str(body["model"]), text, r.Header.Get("X-Api-Key"), true
	case wireGemini:
		rest, found := strings.CutPrefix(r.URL.Path, "/v1beta/models/")
		model, found2 := strings.CutSuffix(rest, ":generateContent")
		if !found || !found2 || r.URL.RawQuery != "" {
			return "", "", "", false
		}
		contents, _ := body["contents"].([]any)
		if len(contents) > 0 {
			c, _ := contents[0].(map[string]any)
			parts, _ := c["parts"].([]any)
			if len(parts) > 0 {
				p, _ := parts[0].(map[string]any)
				text = str(p["text"])
			}
		}
		return model, text, r.Header.Get("X-Goog-Api-Key"), true
	}
	return "", "", "", false
}

// requests returns the calls received for model ("" for all), in arrival order.
func (f *fakeAPI) requests(model string) []apiCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []apiCall
	for _, c := range f.calls {
		if model == "" || c.model == model {
			out = append(out, c)
		}
	}
	return out
}

// tokens is the usage a fake reports. in excludes cache reads and writes.
type tokens struct{ in, out, cacheRead, cacheWrite, thoughts int }

// answer passes the article's quality gate for any prompt.
const answer = "Here is a complete answer with more than enough words in it to pass the quality gate of the cascade comfortably."

// okReply is a successful completion in w's format; u nil means the response
// carries no usage at all.
func okReply(w wire, text string, u *tokens) reply {
	switch w {
	case wireOpenAI:
		b := map[string]any{
			"id": "chatcmpl-1", "object": "chat.completion",
			"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": text}, "finish_reason": "stop"}},
		}
		if u != nil {
			b["usage"] = map[string]any{
				"prompt_tokens": u.in + u.cacheRead, "completion_tokens": u.out, "total_tokens": u.in + u.cacheRead + u.out,
				"prompt_tokens_details": map[string]any{"cached_tokens": u.cacheRead},
			}
		}
		return reply{status: 200, header: map[string]string{"X-Request-Id": "req_ok"}, body: b}
	case wireAnthropic:
		b := map[string]any{
			"id": "msg_1", "type": "message", "role": "assistant",
			"content": []any{map[string]any{"type": "text", "text": text}}, "stop_reason": "end_turn",
		}
		if u != nil {
			b["usage"] = map[string]any{"input_tokens": u.in, "output_tokens": u.out,
				"cache_read_input_tokens": u.cacheRead, "cache_creation_input_tokens": u.cacheWrite}
		}
		return reply{status: 200, header: map[string]string{"Request-Id": "req_ok"}, body: b}
	default:
		b := map[string]any{
			"candidates": []any{map[string]any{"content": map[string]any{"role": "model", "parts": []any{map[string]any{"text": text}}}, "finishReason": "STOP"}},
			"responseId": "resp-1",
		}
		if u != nil {
			b["usageMetadata"] = map[string]any{
				"promptTokenCount": u.in + u.cacheRead, "candidatesTokenCount": u.out, "thoughtsTokenCount": u.thoughts,
				"cachedContentTokenCount": u.cacheRead, "totalTokenCount": u.in + u.cacheRead + u.out + u.thoughts,
			}
		}
		return reply{status: 200, body: b}
	}
}

// errReply is the error response w's provider sends for class, with the
// request's key echoed in the message the way providers do.
func errReply(w wire, class llm.Class) reply {
	type oe = map[string]any
	switch w {
	case wireOpenAI:
		e := func(status int, typ, code, msg string) reply {
			return reply{status: status, body: oe{"error": oe{"message": msg, "type": typ, "param": nil, "code": code}}}
		}
		switch class {
		case llm.ClassRateLimited:
			return e(429, "requests", "rate_limit_exceeded", "Rate limit reached for requests on key "+keyMark)
		case llm.ClassQuotaExhausted:
			return e(429, "insufficient_quota", "insufficient_quota", "You exceeded your current quota (key "+keyMark+"), please check your plan and billing details.")
		case llm.ClassAuth:
			return e(401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided: "+keyMark+". You can find your API key at https://platform.openai.com/account/api-keys.")
		case llm.ClassNotFound:
			return e(404, "invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it (key "+keyMark+").")
		case llm.ClassBadRequest:
			return e(400, "invalid_request_error", "invalid_value", "Invalid value in request made with key "+keyMark)
		case llm.ClassOverloaded:
			return reply{status: 498, body: oe{"error": oe{"message": "Capacity exceeded for key " + keyMark, "type": "capacity_exceeded"}}}
		default:
			return e(500, "server_error", "", "The server had an error while processing your request (key "+keyMark+").")
		}
	case wireAnthropic:
		e := func(status int, typ, msg string) reply {
			return reply{status: status, body: oe{"type": "error", "error": oe{"type": typ, "message": msg}, "request_id": ridMark}}
		}
		switch class {
		case llm.ClassOverloaded:
			return e(529, "overloaded_error", "Overloaded (key "+keyMark+")")
		case llm.ClassRateLimited:
			return e(429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit for key "+keyMark)
		case llm.ClassAuth:
			return e(401, "authentication_error", "invalid x-api-key: "+keyMark)
		case llm.ClassNotFound:
			return e(404, "not_found_error", "model: not found (key "+keyMark+")")
		case llm.ClassQuotaExhausted:
			return e(402, "billing_error", "Your credit balance is too low for key "+keyMark)
		case llm.ClassBadRequest:
			return e(400, "invalid_request_error", "messages: bad input for key "+keyMark)
		default:
			return e(500, "api_error", "Internal server error (key "+keyMark+")")
		}
	default:
		e := func(code int, status, msg string, details ...any) reply {
			er := oe{"code": code, "message": msg, "status": status}
			if len(details) > 0 {
				er["details"] = details
			}
			return reply{status: code, body: oe{"error": er}}
		}
		switch class {
		case llm.ClassRateLimited:
			return e(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (key "+keyMark+").",
				oe{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.01s"})
		case llm.ClassQuotaExhausted:
			return e(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota (key "+keyMark+").",
				oe{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []any{oe{
					"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
					"quotaId":     "GenerateRequestsPerDayPerProjectPerModel-FreeTier", "quotaValue": "250"}}})
		case llm.ClassAuth:
			return e(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key. ("+keyMark+")",
				oe{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
					"metadata": oe{"service": "generativelanguage.googleapis.com", "key": keyMark}})
		case llm.ClassNotFound:
			return e(404, "NOT_FOUND", "models/x is not found for API version v1beta (key "+keyMark+").")
		case llm.ClassOverloaded:
			return e(503, "UNAVAILABLE", "The model is overloaded. Please try again later. ("+keyMark+")")
		default:
			return e(500, "INTERNAL", "An internal error has occurred. ("+keyMark+")")
		}
	}
}

// withHeader returns r with an extra response header.
func withHeader(r reply, k, v string) reply {
	h := map[string]string{k: v}
	for hk, hv := range r.header {
		h[hk] = hv
	}
	r.header = h
	return r
}

// ------------------------------------------------------------- environment

// Default test keys. The canary test replaces them.
var testKeys = map[string]string{
	"openai": "sk-test-openai-0001", "anthropic": "sk-ant-test-0002", "gemini": "AIza-test-0003",
	"groq": "gsk_test-0004", "vllm": "vllm-test-0005",
}

// provEnv is the worker bundle (JetStream, Postgres schema, store) plus fake
// provider APIs, a routes file and captured logs.
type provEnv struct {
	t     *testing.T
	b     *bundle
	keys  map[string]string // by provider name
	fakes map[string]*fakeAPI
	pk    config.ProviderKeys
	logs  *syncBuf
	log   *slog.Logger
	rt    *config.Routes
	reg   *llm.Registry
	cas   *cascade.Cascade
	errs  []error // every error a component returned
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newProvEnv(t *testing.T, qcfg queue.Config) *provEnv {
	t.Helper()
	p := &provEnv{t: t, b: setup(t, qcfg), keys: map[string]string{}, fakes: map[string]*fakeAPI{}, logs: &syncBuf{}}
	for k, v := range testKeys {
		p.keys[k] = v
	}
	p.log = slog.New(slog.NewJSONHandler(p.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("captured logs:\n%s", p.logs)
		}
	})
	return p
}

// fake starts the fake API of provider name (openai, anthropic, gemini,
// groq, or a named OpenAI-compatible server such as vllm) and points the
// provider settings at it.
func (p *provEnv) fake(name string, scripts map[string]script) *fakeAPI {
	w := wireOpenAI
	switch name {
	case "anthropic":
		w = wireAnthropic
	case "gemini":
		w = wireGemini
	}
	f := newFakeAPI(p.t, w, p.keys[name], scripts)
	p.fakes[name] = f
	switch name {
	case "openai":
		p.pk.OpenAIKey, p.pk.OpenAIBaseURL = f.key, f.srv.URL+"/v1"
	case "anthropic":
		p.pk.AnthropicKey, p.pk.AnthropicBaseURL, p.pk.AnthropicVersion = f.key, f.srv.URL, "2023-06-01"
	case "gemini":
		p.pk.GeminiKey, p.pk.GeminiBaseURL = f.key, f.srv.URL
	case "groq":
		p.pk.GroqKey, p.pk.GroqBaseURL = f.key, f.srv.URL+"/openai"
	}
	return f
}

// start parses routes ("{{name}}" is replaced by the named fake's URL),
// builds the registry and the cascade as cmd/worker does.
func (p *provEnv) start(routes string) {
	p.t.Helper()
	for name, f := range p.fakes {
		routes = strings.ReplaceAll(routes, "{{"+name+"}}", f.srv.URL)
	}
	rt, err := config.ParseRoutes("test-routes.yaml", strings.NewReader(routes), pricing.Builtin())
	if err != nil {
		p.t.Fatal(err)
	}
	lookup := func(name string) (string, bool) {
		if prov, ok := strings.CutSuffix(name, "_TEST_KEY"); ok {
			k, ok := p.keys[strings.ToLower(prov)]
			return k, ok
		}
		return "", false
	}
	reg, err := wiring.Registry(rt, p.pk, lookup)
	if err != nil {
		p.errs = append(p.errs, err)
		p.t.Fatal(err)
	}
	cas, err := cascade.New(wiring.CascadeSettings(rt, 1), reg, p.log)
	if err != nil {
		p.errs = append(p.errs, err)
		p.t.Fatal(err)
	}
	p.rt, p.reg, p.cas = rt, reg, cas
}

// publish enqueues jobs of batch "b1" (raw JetStream publish, as enqueue does).
func (p *provEnv) publish(jobs ...prompt.Job) {
	p.t.Helper()
	ctx := context.Background()
	for _, j := range jobs {
		j.BatchID, j.EnqueuedAt = "b1", time.Now()
		data, err := json.Marshal(j)
		if err != nil {
			p.t.Fatal(err)
		}
		if _, err := p.b.qc.JetStream().Publish(ctx, queue.Subject("prompts", j.BatchID), data, jetstream.WithMsgID("b1/"+j.ID)); err != nil {
			p.t.Fatal(err)
		}
	}
}

// run processes everything queued with the given concurrency and returns
// when the consumer is idle.
func (p *provEnv) run(concurrency int) *worker.Worker {
	p.t.Helper()
	cfg := p.b.cfg
	cfg.Concurrency = concurrency
	w := worker.New(cfg, queue.NewSource(p.b.qc, p.b.cons), p.b.st, classify.Default(), p.cas, p.log)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Run(ctx); err != nil {
		p.errs = append(p.errs, err)
		p.t.Fatal(err)
	}
	return w
}

func (p *provEnv) conn() *pgx.Conn {
	p.t.Helper()
	c := connect(p.t, p.b.dsn)
	p.t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// logRow is one request_log row.
type logRow struct {
	attempt, delivery int
	model, outcome    string
	httpStatus        *int
	errText           *string
	in, out           int
	estimated         bool
}

func (r logRow) String() string {
	st := "NULL"
	if r.httpStatus != nil {
		st = fmt.Sprint(*r.httpStatus)
	}
	return fmt.Sprintf("#%d/%d %s %s http=%s", r.delivery, r.attempt, r.model, r.outcome, st)
}

// attempts returns the request_log rows of one prompt in order.
func (p *provEnv) attempts(id string) []logRow {
	p.t.Helper()
	rows, err := p.conn().Query(context.Background(), `
		SELECT attempt, delivery, model, outcome, http_status, error, input_tokens, output_tokens, estimated
		FROM request_log WHERE batch_id = 'b1' AND prompt_id = $1 ORDER BY delivery, attempt`, id)
	if err != nil {
		p.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (logRow, error) {
		var l logRow
		err := r.Scan(&l.attempt, &l.delivery, &l.model, &l.outcome, &l.httpStatus, &l.errText, &l.in, &l.out, &l.estimated)
		return l, err
	})
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// want is an expected request_log row: model, outcome and HTTP status (0 for NULL).
type wantRow struct {
	model, outcome string
	status         int
}

func (p *provEnv) checkAttempts(id string, want ...wantRow) []logRow {
	p.t.Helper()
	got := p.attempts(id)
	if len(got) != len(want) {
		p.t.Fatalf("prompt %s: request_log %v, want %d rows %v", id, got, len(want), want)
	}
	for i, w := range want {
		g := got[i]
		status := 0
		if g.httpStatus != nil {
			status = *g.httpStatus
			if status == 0 {
				p.t.Errorf("prompt %s row %d: http_status 0 stored instead of NULL", id, i)
			}
		}
		if g.model != w.model || g.outcome != w.outcome || status != w.status {
			p.t.Errorf("prompt %s row %d = %v, want %s %s http=%d", id, i, g, w.model, w.outcome, w.status)
		}
	}
	return got
}

// result is one results row.
type result struct {
	status, tier, modelUsed string
	attempts, in, out       int
	estimated               bool
	errText                 *string
}

func (p *provEnv) result(id string) result {
	p.t.Helper()
	var r result
	err := p.conn().QueryRow(context.Background(), `
		SELECT status, tier, coalesce(model_used, ''), attempts, input_tokens, output_tokens, usage_estimated, error
		FROM results WHERE batch_id = 'b1' AND prompt_id = $1`, id).
		Scan(&r.status, &r.tier, &r.modelUsed, &r.attempts, &r.in, &r.out, &r.estimated, &r.errText)
	if err != nil {
		p.t.Fatalf("results row of %s: %v", id, err)
	}
	return r
}

// checkCost asserts that the prompt's results.cost_usd, and the sum of its
// request_log costs, equal want (compared at the column's numeric(18,10)).
func (p *provEnv) checkCost(id string, want float64) {
	p.t.Helper()
	var stored, logged string
	var same, sameLog bool
	err := p.conn().QueryRow(context.Background(), `
		SELECT r.cost_usd::text, r.cost_usd = $2::float8::numeric(18,10),
		       (SELECT sum(cost_usd) FROM request_log l WHERE l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id)::text,
		       (SELECT sum(cost_usd) FROM request_log l WHERE l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id) = $2::float8::numeric(18,10)
		FROM results r WHERE r.batch_id = 'b1' AND r.prompt_id = $1`, id, want).Scan(&stored, &same, &logged, &sameLog)
	if err != nil {
		p.t.Fatal(err)
	}
	if !same || !sameLog {
		p.t.Errorf("prompt %s: results.cost_usd %s, request_log sum %s, want %.10f", id, stored, logged, want)
	}
}

func (p *provEnv) count(q string, args ...any) int { p.t.Helper(); return p.b.count(q, args...) }

// price is a built-in price; the test fails if the model has none.
func price(t *testing.T, model string) pricing.Price {
	t.Helper()
	pr, ok := pricing.Builtin().Lookup(model)
	if !ok {
		t.Fatalf("no built-in price for %s", model)
	}
	return pr
}

// cost is the expected cost, computed here from the price fields and the
// usage the fake reported (not with pricing.Price.Cost, the code under test).
func cost(p pricing.Price, in, out, cacheRead, cacheWrite int) float64 {
	return (float64(in)*p.InputPerMTok + float64(out)*p.OutputPerMTok +
		float64(cacheRead)*p.CacheReadPerMTok + float64(cacheWrite)*p.CacheWritePerMTok) / 1e6
}

func job(id, text string) prompt.Job { return prompt.Job{ID: id, Prompt: text} }

// simpleJobs are n short prompts without keywords: tier simple.
func simpleJobs(n int) []prompt.Job {
	var js []prompt.Job
	for i := range n {
		js = append(js, job(fmt.Sprintf("s%d", i), fmt.Sprintf("What is %d plus %d?", i, i)))
	}
	return js
}

// ------------------------------------------------------------------- tests

// TestProvidersCascadeAcrossProviders: an Anthropic 529 cascades to OpenAI;
// costs in Postgres equal the built-in prices applied to the usage the fakes
// reported: OpenAI cached tokens at the cache price, Anthropic cache reads
// and writes priced in, Gemini thoughts billed as output.
func TestProvidersCascadeAcrossProviders(t *testing.T) {
	p := newProvEnv(t, queue.Config{})
	anthropic := p.fake("anthropic", map[string]script{
		"claude-haiku-4-5":  always(errReply(wireAnthropic, llm.ClassOverloaded)),
		"claude-sonnet-4-5": always(okReply(wireAnthropic, answer, &tokens{in: 50, out: 40, cacheRead: 1000, cacheWrite: 200})),
	})
	openai := p.fake("openai", map[string]script{
		"gpt-4o-mini": always(okReply(wireOpenAI, answer, &tokens{in: 100, out: 30, cacheRead: 20})),
	})
	gemini := p.fake("gemini", map[string]script{
		"gemini-2.5-flash": always(okReply(wireGemini, answer, &tokens{in: 30, out: 20, thoughts: 100})),
	})
	p.start(`
on_rate_limit: cascade   # these 429s and 529s are scripted failures that must cascade
tiers:
  simple:   [anthropic/claude-haiku-4-5, openai/gpt-4o-mini]
  moderate: [anthropic/claude-sonnet-4-5]
  complex:  [gemini/gemini-2.5-flash]
models:
  anthropic/claude-haiku-4-5: {max_retries: 0}
backoff: {base: 1ms, max: 1s}
`)
	jobs := append(simpleJobs(3),
		job("m0", "Explain why the sky is blue."),
		job("c0", "Analyze and compare quicksort with mergesort."))
	p.publish(jobs...)
	w := p.run(8)
	if s := w.Stats(); s.Succeeded != 5 || s.Failed != 0 || s.Naked != 0 {
		t.Fatalf("stats %+v", s)
	}

	mini := price(t, "openai/gpt-4o-mini")
	for _, j := range jobs[:3] {
		p.checkAttempts(j.ID, wantRow{"anthropic/claude-haiku-4-5", "overloaded", 529}, wantRow{"openai/gpt-4o-mini", "ok", 200})
		r := p.result(j.ID)
		if r.status != "succeeded" || r.tier != "simple" || r.modelUsed != "openai/gpt-4o-mini" || r.attempts != 2 || r.in != 100 || r.out != 30 || r.estimated {
			t.Errorf("%s: result %+v", j.ID, r)
		}
		p.checkCost(j.ID, cost(mini, 100, 30, 20, 0))
	}

	sonnet := price(t, "anthropic/claude-sonnet-4-5")
	p.checkAttempts("m0", wantRow{"anthropic/claude-sonnet-4-5", "ok", 200})
	if r := p.result("m0"); r.tier != "moderate" || r.modelUsed != "anthropic/claude-sonnet-4-5" || r.in != 50 || r.out != 40 {
		t.Errorf("m0: result %+v", r)
	}
	withCache := cost(sonnet, 50, 40, 1000, 200)
	if noCache := cost(sonnet, 50, 40, 0, 0); withCache <= noCache {
		t.Fatalf("test data: cache tokens must change the cost")
	}
	p.checkCost("m0", withCache)

	flash := price(t, "gemini/gemini-2.5-flash")
	p.checkAttempts("c0", wantRow{"gemini/gemini-2.5-flash", "ok", 200})
	if r := p.result("c0"); r.tier != "complex" || r.in != 30 || r.out != 120 { // 20 candidates + 100 thoughts
		t.Errorf("c0: result %+v, want output_tokens 120 (candidates + thoughts)", r)
	}
	p.checkCost("c0", cost(flash, 30, 120, 0, 0))

	// Each provider saw exactly the calls the rows say.
	if n := len(anthropic.requests("claude-haiku-4-5")); n != 3 {
		t.Errorf("claude-haiku-4-5 got %d requests, want 3", n)
	}
	if n := len(openai.requests("")); n != 3 {
		t.Errorf("openai got %d requests, want 3", n)
	}
	if n := len(gemini.requests("")); n != 1 {
		t.Errorf("gemini got %d requests, want 1", n)
	}
}

// TestProvidersRetryAfterRespected: a 429 with retry-after-ms: 300 is retried
// on the same model no sooner than 300 ms later, measured at the server.
func TestProvidersRetryAfterRespected(t *testing.T) {
	p := newProvEnv(t, queue.Config{})
	limited := withHeader(errReply(wireOpenAI, llm.ClassRateLimited), "Retry-After-Ms", "300")
	openai := p.fake("openai", map[string]script{
		"gpt-4o-mini": seq(limited, okReply(wireOpenAI, answer, &tokens{in: 10, out: 20})),
	})
	p.start(`
tiers:
  simple:   [openai/gpt-4o-mini]
  moderate: [openai/gpt-4o-mini]
  complex:  [openai/gpt-4o-mini]
models:
  openai/gpt-4o-mini: {max_retries: 1}
backoff: {base: 1ms, max: 5s}
`)
	p.publish(job("r0", "What is the capital of France?"))
	p.run(1)

	calls := openai.requests("gpt-4o-mini")
	if len(calls) != 2 {
		t.Fatalf("%d requests, want 2", len(calls))
	}
	gap := calls[1].at.Sub(calls[0].at)
	if gap < 300*time.Millisecond {
		t.Errorf("retry arrived %v after the 429; the server asked for 300ms", gap)
	}
	t.Logf("retry arrived %v after the 429 (retry-after-ms: 300)", gap)
	// Retried within the same delivery, not handed back to the queue.
	rows := p.checkAttempts("r0", wantRow{"openai/gpt-4o-mini", "rate_limited", 429}, wantRow{"openai/gpt-4o-mini", "ok", 200})
	if rows[0].delivery != 1 || rows[1].delivery != 1 {
		t.Errorf("rows %v: want both in delivery 1", rows)
	}
	if r := p.result("r0"); r.status != "succeeded" || r.attempts != 2 {
		t.Errorf("result %+v", r)
	}
}

// TestProvidersCooldownSkipsFailingModel: once a model has failed enough
// (N in a row, or above a failure share), later prompts skip it with
// outcome cooldown_skip and no request reaches its server.
func TestProvidersCooldownSkipsFailingModel(t *testing.T) {
	tests := []struct {
		name     string
		cooldown string
		groq     script
		calls    int // requests groq gets before the cooldown
		groqWins int // prompts groq answered
	}{
		{"consecutive", "{failures: 3, period: 1h}", always(errReply(wireOpenAI, llm.ClassServerError)), 3, 0},
		{
			// fail, fail, ok, fail, fail: 4 of 5 calls failed (0.8 > 0.6), never 3 in a row.
			"failure share", "{failures: 3, period: 1h, window: 1m, max_failure_share: 0.6, min_calls: 5}",
			func(n int, _ string) reply {
				if n%3 == 0 {
					return okReply(wireOpenAI, answer, &tokens{in: 10, out: 20})
				}
				return errReply(wireOpenAI, llm.ClassOverloaded)
			}, 5, 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProvEnv(t, queue.Config{})
			groq := p.fake("groq", map[string]script{"llama-3.3-70b-versatile": tt.groq})
			openai := p.fake("openai", map[string]script{"gpt-4o-mini": always(okReply(wireOpenAI, answer, &tokens{in: 10, out: 20}))})
			p.start(`
on_rate_limit: cascade   # these 429s and 529s are scripted failures that must cascade
tiers:
  simple:   [groq/llama-3.3-70b-versatile, openai/gpt-4o-mini]
  moderate: [openai/gpt-4o-mini]
  complex:  [openai/gpt-4o-mini]
models:
  groq/llama-3.3-70b-versatile: {max_retries: 0}
backoff: {base: 1ms, max: 1s}
cooldown: ` + tt.cooldown + "\n")
			const n = 10
			p.publish(simpleJobs(n)...)
			p.run(1) // one prompt at a time: the order of failures is fixed

			if got := len(groq.requests("")); got != tt.calls {
				t.Errorf("groq got %d requests, want %d (then none while cooling down)", got, tt.calls)
			}
			if got := len(openai.requests("")); got != n-tt.groqWins {
				t.Errorf("openai got %d requests, want %d", got, n-tt.groqWins)
			}
			if got := p.count(`SELECT count(*) FROM request_log WHERE model = 'groq/llama-3.3-70b-versatile' AND outcome = 'cooldown_skip' AND http_status IS NULL AND cost_usd = 0`); got != n-tt.calls {
				t.Errorf("cooldown_skip rows = %d, want %d", got, n-tt.calls)
			}
			if got := p.count(`SELECT count(*) FROM request_log WHERE model = 'groq/llama-3.3-70b-versatile' AND http_status IS NOT NULL`); got != tt.calls {
				t.Errorf("groq rows with an HTTP status = %d, want %d", got, tt.calls)
			}
			if got := p.count(`SELECT count(*) FROM results WHERE status = 'succeeded' AND delivery = 1`); got != n {
				t.Errorf("succeeded on the first delivery = %d, want %d", got, n)
			}
			if got := strings.Count(p.logs.String(), "model cooling down"); got != 1 {
				t.Errorf("%d cooldown log lines, want 1", got)
			}
		})
	}
}

// TestProvidersRetiredModelDisabled: a model the provider does not know (404)
// is called once; every later prompt logs outcome not_found without a request.
func TestProvidersRetiredModelDisabled(t *testing.T) {
	p := newProvEnv(t, queue.Config{})
	anthropic := p.fake("anthropic", map[string]script{}) // knows no model: 404 not_found_error
	p.fake("openai", map[string]script{"gpt-4o-mini": always(okReply(wireOpenAI, answer, &tokens{in: 10, out: 20}))})
	p.start(`
tiers:
  simple:   [anthropic/claude-3-haiku-20240307, openai/gpt-4o-mini]
  moderate: [openai/gpt-4o-mini]
  complex:  [openai/gpt-4o-mini]
models:
  anthropic/claude-3-haiku-20240307: {input_cost_per_mtok: 0.25, output_cost_per_mtok: 1.25, max_retries: 2}
backoff: {base: 1ms, max: 1s}
`)
	jobs := simpleJobs(6)
	p.publish(jobs...)
	p.run(1)

	if n := len(anthropic.requests("")); n != 1 {
		t.Fatalf("retired model got %d requests, want 1", n)
	}
	first := 0
	for _, j := range jobs {
		rows := p.attempts(j.ID)
		if len(rows) != 2 || rows[0].outcome != "not_found" || rows[1].model != "openai/gpt-4o-mini" || rows[1].outcome != "ok" {
			t.Fatalf("%s: request_log %v", j.ID, rows)
		}
		if rows[0].httpStatus != nil {
			if *rows[0].httpStatus != 404 {
				t.Errorf("%s: not_found with http %d", j.ID, *rows[0].httpStatus)
			}
			first++
		}
	}
	if first != 1 {
		t.Errorf("%d prompts called the retired model, want 1", first)
	}
	if n := strings.Count(p.logs.String(), "model disabled until restart"); n != 1 {
		t.Errorf("%d 'disabled' log lines, want 1", n)
	}
}

// TestProvidersQuotaAndAuthNotRetried: quota_exhausted (OpenAI
// insufficient_quota, Gemini per-day quota) and auth_error (Anthropic 401)
// cascade at once, although max_retries allows retries, and take the model
// out of service: later prompts skip it without a request (outcome kept,
// no HTTP status), instead of paying a round trip per prompt to learn the
// same thing.
func TestProvidersQuotaAndAuthNotRetried(t *testing.T) {
	p := newProvEnv(t, queue.Config{})
	openai := p.fake("openai", map[string]script{"gpt-4o-mini": always(errReply(wireOpenAI, llm.ClassQuotaExhausted))})
	anthropic := p.fake("anthropic", map[string]script{"claude-haiku-4-5": always(errReply(wireAnthropic, llm.ClassAuth))})
	gemini := p.fake("gemini", map[string]script{"gemini-2.5-flash": always(errReply(wireGemini, llm.ClassQuotaExhausted))})
	groq := p.fake("groq", map[string]script{"llama-3.3-70b-versatile": always(okReply(wireOpenAI, answer, &tokens{in: 10, out: 20}))})
	p.start(`
tiers:
  simple:   [openai/gpt-4o-mini, anthropic/claude-haiku-4-5, gemini/gemini-2.5-flash, groq/llama-3.3-70b-versatile]
  moderate: [groq/llama-3.3-70b-versatile]
  complex:  [groq/llama-3.3-70b-versatile]
models:
  openai/gpt-4o-mini:         {max_retries: 3}
  anthropic/claude-haiku-4-5: {max_retries: 3}
  gemini/gemini-2.5-flash:    {max_retries: 3}
backoff: {base: 1ms, max: 1s}
cooldown: {failures: 1, period: 1h}
`)
	const n = 4
	p.publish(simpleJobs(n)...)
	p.run(1) // one prompt at a time: the first one finds out, the rest skip

	for name, f := range map[string]*fakeAPI{"openai": openai, "anthropic": anthropic, "gemini": gemini} {
		if got := len(f.requests("")); got != 1 {
			t.Errorf("%s got %d requests, want 1 (no retry; then out of service)", name, got)
		}
	}
	if got := len(groq.requests("")); got != n {
		t.Errorf("groq got %d requests, want %d", got, n)
	}
	for i, j := range simpleJobs(n) {
		status := func(code int) int {
			if i == 0 {
				return code
			}
			return 0 // skipped without a call
		}
		p.checkAttempts(j.ID,
			wantRow{"openai/gpt-4o-mini", "quota_exhausted", status(429)},
			wantRow{"anthropic/claude-haiku-4-5", "auth_error", status(401)},
			wantRow{"gemini/gemini-2.5-flash", "quota_exhausted", status(429)},
			wantRow{"groq/llama-3.3-70b-versatile", "ok", 200})
		if r := p.result(j.ID); r.status != "succeeded" || r.modelUsed != "groq/llama-3.3-70b-versatile" {
			t.Errorf("%s: result %+v", j.ID, r)
		}
	}
}

// TestProvidersContextWindowSkip: a model whose context window (set in the
// routes file) cannot hold prompt + max_tokens is skipped without a request.
func TestProvidersContextWindowSkip(t *testing.T) {
	p := newProvEnv(t, queue.Config{})
	openai := p.fake("openai", map[string]script{"gpt-4o-mini": always(okReply(wireOpenAI, answer, &tokens{in: 10, out: 20}))})
	p.fake("anthropic", map[string]script{"claude-haiku-4-5": always(okReply(wireAnthropic, answer, &tokens{in: 10, out: 20}))})
	p.start(`
tiers:
  simple:   [openai/gpt-4o-mini, anthropic/claude-haiku-4-5]
  moderate: [anthropic/claude-haiku-4-5]
  complex:  [anthropic/claude-haiku-4-5]
models:
  openai/gpt-4o-mini: {context_window: 40}
backoff: {base: 1ms, max: 1s}
`)
	small := job("fits", "What is 2 plus 2?")
	big := job("big", "What is 3 plus 3?")
	big.MaxTokens = 64 // prompt + 64 > 40
	p.publish(small, big)
	p.run(2)

	calls := openai.requests("")
	if len(calls) != 1 || calls[0].prompt != small.Prompt {
		t.Fatalf("openai got %d requests (%v), want only the prompt that fits", len(calls), calls)
	}
	p.checkAttempts("fits", wantRow{"openai/gpt-4o-mini", "ok", 200})
	rows := p.checkAttempts("big", wantRow{"openai/gpt-4o-mini", "context_window", 0}, wantRow{"anthropic/claude-haiku-4-5", "ok", 200})
	if rows[0].errText == nil || !strings.Contains(*rows[0].errText, "context window is 40") {
		t.Errorf("skip reason %v", rows[0].errText)
	}
	if got := p.count(`SELECT count(*) FROM request_log WHERE prompt_id = 'big' AND outcome = 'context_window' AND cost_usd = 0 AND input_tokens = 0`); got != 1 {
		t.Errorf("context_window row with no cost = %d, want 1", got)
	}
}

// TestProvidersMissingUsageEstimated: a named OpenAI-compatible server (vLLM,
// declared under providers:) that reports no usage is billed from tiktoken
// estimates, and the rows say so; a response with usage is not marked.
func TestProvidersMissingUsageEstimated(t *testing.T) {
	p := newProvEnv(t, queue.Config{})
	vllm := p.fake("vllm", map[string]script{"meta-llama/Llama-3.1-8B-Instruct": always(okReply(wireOpenAI, answer, nil))})
	p.fake("openai", map[string]script{"gpt-4o-mini": always(okReply(wireOpenAI, answer, &tokens{in: 10, out: 20}))})
	p.start(`
providers:
  vllm: {base_url: "{{vllm}}/v1", api_key_env: VLLM_TEST_KEY, legacy_max_tokens: true}
tiers:
  simple:   [vllm/meta-llama/Llama-3.1-8B-Instruct]
  moderate: [openai/gpt-4o-mini]
  complex:  [openai/gpt-4o-mini]
models:
  vllm/meta-llama/Llama-3.1-8B-Instruct: {input_cost_per_mtok: 0.5, output_cost_per_mtok: 1.5}
backoff: {base: 1ms, max: 1s}
`)
	est := job("est", "What is the capital of France?")
	est.System = "You are terse."
	est.MaxTokens = 100
	p.publish(est, job("reported", "Explain why the sky is blue."))
	p.run(2)

	calls := vllm.requests("")
	if len(calls) != 1 {
		t.Fatalf("vllm got %d requests, want 1", len(calls))
	}
	if mt, has := calls[0].body["max_completion_tokens"]; calls[0].body["max_tokens"] != float64(100) || has {
		t.Errorf("vllm body max_tokens=%v max_completion_tokens=%v, want legacy max_tokens only", calls[0].body["max_tokens"], mt)
	}
	wantIn := tok.Count(est.Prompt) + tok.Count(est.System)
	wantOut := tok.Count(answer)
	rows := p.checkAttempts("est", wantRow{"vllm/meta-llama/Llama-3.1-8B-Instruct", "ok", 200})
	if r := rows[0]; !r.estimated || r.in != wantIn || r.out != wantOut {
		t.Errorf("request_log %+v, want estimated with %d in / %d out", r, wantIn, wantOut)
	}
	if r := p.result("est"); !r.estimated || r.in != wantIn || r.out != wantOut {
		t.Errorf("result %+v, want usage_estimated with %d in / %d out", r, wantIn, wantOut)
	}
	p.checkCost("est", cost(pricing.Price{InputPerMTok: 0.5, OutputPerMTok: 1.5}, wantIn, wantOut, 0, 0))

	if r := p.result("reported"); r.estimated || r.in != 10 || r.out != 20 {
		t.Errorf("reported usage: result %+v, want not estimated", r)
	}
	if got := p.count(`SELECT count(*) FROM request_log WHERE prompt_id = 'reported' AND NOT estimated`); got != 1 {
		t.Errorf("reported usage marked estimated")
	}
}

// TestProvidersNeverLeakAPIKeys: with every key set to a recognisable
// canary and fake servers that echo the key in error messages, error
// detail fields and response headers, the canary appears in no log line, no
// returned error, and no text, json or bytea column of any table.
func TestProvidersNeverLeakAPIKeys(t *testing.T) { testKeyCanary(t, false) }

// TestProvidersNeverLeakAPIKeysInRequestIDs: the same, with servers (or a
// proxy) that also echo the key inside request ids, which the adapters copy
// into llm.Error.RequestID and the cascade into request_log.error.
func TestProvidersNeverLeakAPIKeysInRequestIDs(t *testing.T) { testKeyCanary(t, true) }

func testKeyCanary(t *testing.T, inRequestIDs bool) {
	const canary = "CANARY"
	p := newProvEnv(t, queue.Config{MaxDeliver: 3})
	p.keys = map[string]string{
		"openai": "sk-CANARY-openai-123", "anthropic": "sk-ant-CANARY-anthropic-123", "gemini": "AIzaCANARY-gemini-123",
		"groq": "gsk_CANARY-groq-123",
		// No well-known prefix: only the adapters' own redaction can catch it.
		"vllm": "CANARY-vllm-123",
	}
	flatVLLM := reply{status: 500, body: map[string]any{"object": "error", "message": "backend failure serving key " + keyMark,
		"type": "InternalServerError", "param": nil, "code": 500}}
	alternate := func(ok, bad reply) script {
		return func(_ int, text string) reply {
			if strings.Contains(text, "odd") {
				return ok
			}
			return bad
		}
	}
	fakes := []*fakeAPI{
		p.fake("openai", map[string]script{
			"gpt-4o-mini": always(errReply(wireOpenAI, llm.ClassAuth)),
			"gpt-4.1":     always(errReply(wireOpenAI, llm.ClassBadRequest)),
		}),
		p.fake("vllm", map[string]script{"m": always(flatVLLM)}),
		p.fake("anthropic", map[string]script{
			"claude-haiku-4-5":  seq(withHeader(errReply(wireAnthropic, llm.ClassRateLimited), "Retry-After", "0"), okReply(wireAnthropic, answer, &tokens{in: 5, out: 20})),
			"claude-sonnet-4-5": always(errReply(wireAnthropic, llm.ClassNotFound)),
		}),
		p.fake("gemini", map[string]script{
			"gemini-2.5-flash": always(errReply(wireGemini, llm.ClassAuth)),
			"gemini-2.5-pro":   always(errReply(wireGemini, llm.ClassRateLimited)),
		}),
		p.fake("groq", map[string]script{
			"llama-3.3-70b-versatile": alternate(okReply(wireOpenAI, answer, nil), errReply(wireOpenAI, llm.ClassOverloaded)),
		}),
	}
	for _, f := range fakes {
		f.echoKeyInHeaders = true
		f.echoKeyInRequestIDs = inRequestIDs
	}
	p.start(`
on_rate_limit: cascade   # these 429s and 529s are scripted failures that must cascade
providers:
  vllm: {base_url: "{{vllm}}", api_key_env: VLLM_TEST_KEY}
tiers:
  simple:   [openai/gpt-4o-mini, vllm/m, anthropic/claude-haiku-4-5]
  moderate: [gemini/gemini-2.5-flash, groq/llama-3.3-70b-versatile]
  complex:  [anthropic/claude-sonnet-4-5, gemini/gemini-2.5-pro, openai/gpt-4.1]
models:
  vllm/m: {input_cost_per_mtok: 0, output_cost_per_mtok: 0}
backoff: {base: 1ms, max: 50ms}
cooldown: {failures: 50, period: 1s}
`)
	// Probes prove that the table scan below finds text in text, jsonb and bytea columns.
	const probe = "PROBE7f3a"
	jobs := []prompt.Job{
		job("s1", "What is "+probe+" plus one?"),
		job("s2", "What is two plus two?"),
		job("m1", "Explain the odd numbers."),
		job("m2", "Explain the even numbers."),
		job("c1", "Analyze and compare the two designs."),
	}
	jobs[1].Metadata = json.RawMessage(`{"tag":"` + probe + `"}`)
	p.publish(jobs...)
	if _, err := p.b.qc.JetStream().Publish(context.Background(), "prompts.b1", []byte("not json "+probe), jetstream.WithMsgID("poison")); err != nil {
		t.Fatal(err)
	}
	p.run(4)

	// The batch exercised every path: success after a retry, permanent
	// failure, gave-up after transient failures, a dead letter.
	if got := p.count(`SELECT count(*) FROM results WHERE status = 'succeeded'`); got != 3 {
		t.Errorf("succeeded = %d, want 3 (s1, s2, m1)", got)
	}
	if got := p.count(`SELECT count(*) FROM results WHERE status = 'failed'`); got != 2 {
		t.Errorf("failed = %d, want 2 (m2 gave up, c1 refused)", got)
	}
	if got := p.count(`SELECT count(DISTINCT outcome) FROM request_log`); got < 6 {
		t.Errorf("only %d distinct outcomes exercised", got)
	}
	if got := p.count(`SELECT count(*) FROM dead_letters`); got != 1 {
		t.Errorf("dead letters = %d, want 1", got)
	}

	// Errors returned straight from every adapter (what the cascade sees).
	var errs []error
	for _, m := range []string{"openai/gpt-4o-mini", "openai/gpt-4.1", "vllm/m", "anthropic/claude-sonnet-4-5",
		"gemini/gemini-2.5-flash", "gemini/gemini-2.5-pro", "groq/llama-3.3-70b-versatile"} {
		prov, id, err := p.reg.Resolve(m)
		if err != nil {
			t.Fatal(err)
		}
		_, err = prov.Complete(context.Background(), llm.Request{Model: id, Prompt: "even"})
		if err == nil {
			t.Fatalf("%s: no error from a failing fake", m)
		}
		errs = append(errs, err)
	}
	errs = append(errs, p.errs...)
	for _, err := range errs {
		for e := err; e != nil; e = errors.Unwrap(e) {
			if strings.Contains(e.Error(), canary) || strings.Contains(fmt.Sprintf("%+v", e), canary) {
				t.Errorf("API key in an error: %q", e.Error())
			}
			var le *llm.Error
			if errors.As(e, &le) && (strings.Contains(le.RequestID, canary) || strings.Contains(le.Message, canary)) {
				t.Errorf("API key in llm.Error fields: request id %q, message %q", le.RequestID, le.Message)
			}
		}
	}

	logs := p.logs.String()
	if !strings.Contains(logs, "cascade attempt failed") {
		t.Fatalf("logs captured nothing at debug level")
	}
	if strings.Contains(logs, canary) {
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, canary) {
				t.Errorf("API key in a log line: %s", line)
			}
		}
	}

	// Every text-like column of every table in the schema.
	found := scanSchema(t, p, probe)
	for _, col := range []string{"results.prompt", "results.metadata", "dead_letters.payload"} {
		if found[col] == 0 {
			t.Errorf("scan found no probe in %s (found %v): the scan is broken", col, found)
		}
	}
	if leaks := scanSchema(t, p, canary); len(leaks) > 0 {
		t.Errorf("API key stored in %v", leaks)
	}
}

// scanSchema counts, per "table.column", the rows of the test schema whose
// text, json or bytea column contains needle.
func scanSchema(t *testing.T, p *provEnv, needle string) map[string]int {
	t.Helper()
	ctx := context.Background()
	c := p.conn()
	rows, err := c.Query(ctx, `
		SELECT table_name, column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema()
		  AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea', 'ARRAY', 'USER-DEFINED')
		ORDER BY table_name, column_name`)
	if err != nil {
		t.Fatal(err)
	}
	type col struct{ table, column, typ string }
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (col, error) {
		var c col
		return c, r.Scan(&c.table, &c.column, &c.typ)
	})
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]bool{}
	for _, cl := range cols {
		tables[cl.table] = true
	}
	for _, want := range []string{"results", "request_log", "dead_letters", "batches"} {
		if !tables[want] {
			t.Fatalf("schema scan sees no table %s (tables %v)", want, tables)
		}
	}
	found := map[string]int{}
	for _, cl := range cols {
		ident := pgx.Identifier{cl.table}.Sanitize() + "." + pgx.Identifier{cl.column}.Sanitize()
		cond := ident + "::text LIKE '%' || $1 || '%'"
		if cl.typ == "bytea" {
			cond = "position(convert_to($1, 'UTF8') in " + ident + ") > 0"
		}
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{cl.table}.Sanitize()+" WHERE "+cond, needle).Scan(&n); err != nil {
			t.Fatalf("scanning %s.%s: %v", cl.table, cl.column, err)
		}
		if n > 0 {
			found[cl.table+"."+cl.column] = n
		}
	}
	if len(cols) < 10 {
		names := make([]string, 0, len(cols))
		for _, cl := range cols {
			names = append(names, cl.table+"."+cl.column)
		}
		sort.Strings(names)
		t.Fatalf("only %d text-like columns found: %v", len(cols), names)
	}
	return found
}
