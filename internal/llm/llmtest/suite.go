package llmtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
)

// Answer is the text of the canonical successful completion.
const Answer = "Paris is the capital of France."

// mode is how the fake server delivers a case.
type mode int

const (
	modeReplay             mode = iota // the rendered response as is
	modeCustom                         // Case.Handle
	modeSlowHeaders                    // nothing until the client gives up
	modeSlowBody                       // headers and half the body, then nothing
	modeCancel                         // the test cancels the call once it arrives
	modeDropMidBody                    // Content-Length announced, half sent, connection closed
	modeDropChunked                    // one chunk sent, connection closed
	modeDropBeforeResponse             // connection closed without a byte
	modeRefused                        // nothing listens
	modeTruncatedJSON                  // half the body, with a matching Content-Length
	modeOversizedLength                // a body over the limit, announced
	modeOversizedChunked               // a body over the limit, chunked
)

type tcase struct {
	name      string
	req       llm.Request
	timeout   time.Duration
	situation *Situation  // rendered with Harness.Respond
	raw       *rawReply   // or a fixed reply that is no provider's format
	header    http.Header // set on top of the rendered reply (standard retry headers)
	mode      mode
	handle    func(w http.ResponseWriter, r *http.Request)
	want      Want
}

// rawReply is a reply written verbatim: a gateway page, a garbled body.
type rawReply struct {
	status      int
	contentType string
	body        string
}

// Run runs the conformance suite against h. Every case is a parallel subtest
// with its own httptest server and HTTP client.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil || h.CheckRequest == nil || h.Respond == nil {
		t.Fatal("llmtest: Harness needs New, CheckRequest and Respond")
	}
	for _, c := range cases(h) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runCase(t, h, c)
		})
	}
	t.Run("concurrent", func(t *testing.T) {
		t.Parallel()
		runConcurrent(t, h)
	})
}

func successSituation(name string) Situation {
	return Situation{
		Name: name, Kind: KindSuccess, Text: Answer, Finish: FinishStop,
		Usage: &Usage{Input: 25, Output: 8}, RequestID: "req_suite_" + sanitize(name), Now: Now,
	}
}

func errorSituation(name string, class llm.Class) Situation {
	return Situation{
		Name: name, Kind: KindError, Class: class,
		Message:   fmt.Sprintf("simulated %s; the key you sent was %s", class, APIKey),
		RequestID: "req_suite_" + sanitize(name), Now: Now,
	}
}

func cases(h Harness) []tcase {
	var cs []tcase
	idIf := func(id string) string {
		if h.HeaderRequestIDs {
			return id
		}
		return ""
	}
	success := func(name string, mut func(*Situation), req llm.Request) {
		s := successSituation(name)
		if mut != nil {
			mut(&s)
		}
		w := Want{HTTPStatus: StatusAsSent, RequestID: s.RequestID, Text: s.Text, FinishReason: string(s.Finish)}
		switch {
		case s.Finish == FinishContentFilter:
			w = Want{Class: llm.ClassContentFilter, HTTPStatus: StatusAsSent, RequestID: s.RequestID}
		case strings.TrimSpace(s.Text) == "":
			w = Want{Class: llm.ClassEmptyResponse, HTTPStatus: StatusAsSent, RequestID: s.RequestID}
		}
		cs = append(cs, tcase{name: name, req: req, situation: &s, want: UsageWant(s.Usage, w)})
	}

	// Completions.
	success("success", nil, DefaultRequest)
	noSystem := DefaultRequest
	noSystem.System = ""
	success("success/no-system", nil, noSystem)
	noMax := DefaultRequest
	noMax.MaxTokens = 0
	success("success/default-max-tokens", nil, noMax)
	success("success/cache-read", func(s *Situation) {
		s.Usage = &Usage{Input: 200, CacheRead: 1000, Output: 40, Reasoning: 12}
	}, DefaultRequest)
	success("success/cache-write", func(s *Situation) {
		s.Usage = &Usage{Input: 50, CacheWrite: 900, Output: 20}
	}, DefaultRequest)
	success("success/length", func(s *Situation) {
		s.Text, s.Finish, s.Usage = "Paris is", FinishLength, &Usage{Input: 25, Output: 2}
	}, DefaultRequest)
	success("success/no-usage", func(s *Situation) { s.Usage = nil }, DefaultRequest)
	success("success/unicode", func(s *Situation) {
		s.Text = "Paris — «la capitale»\n\t日本語 \u2028 \"quoted\" \\ back"
	}, DefaultRequest)
	success("empty", func(s *Situation) {
		s.Text, s.Usage = "", &Usage{Input: 25}
	}, DefaultRequest)
	success("empty/whitespace", func(s *Situation) {
		s.Text, s.Usage = " \n\t ", &Usage{Input: 25, Output: 2}
	}, DefaultRequest)
	success("content-filter", func(s *Situation) {
		s.Text, s.Finish, s.Usage = "", FinishContentFilter, &Usage{Input: 25}
	}, DefaultRequest)

	// One error response per class, in the provider's own form.
	for _, class := range []llm.Class{
		llm.ClassAuth, llm.ClassPermission, llm.ClassNotFound, llm.ClassBadRequest,
		llm.ClassContextWindow, llm.ClassQuotaExhausted, llm.ClassRateLimited,
		llm.ClassOverloaded, llm.ClassServerError, llm.ClassTimeout,
	} {
		name := "error/" + string(class)
		s := errorSituation(name, class)
		cs = append(cs, tcase{name: name, req: DefaultRequest, situation: &s, want: Want{
			Class: class, HTTPStatus: StatusAsSent, RequestID: idIf(s.RequestID),
			MessageContains: "simulated " + string(class),
		}})
	}

	// Retry hints in every form.
	retry := func(name string, class llm.Class, header http.Header, provider, want time.Duration) {
		s := errorSituation(name, class)
		s.ProviderRetry = provider
		cs = append(cs, tcase{name: name, req: DefaultRequest, situation: &s, header: header, want: Want{
			Class: class, HTTPStatus: StatusAsSent, RequestID: idIf(s.RequestID), RetryAfter: want,
			MessageContains: "simulated " + string(class),
		}})
	}
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	retry("retry/retry-after-seconds", llm.ClassRateLimited, hdr("Retry-After", "7"), 0, 7*time.Second)
	retry("retry/retry-after-date", llm.ClassRateLimited,
		hdr("Retry-After", Now.Add(30*time.Second).Format(http.TimeFormat)), 0, 30*time.Second)
	retry("retry/retry-after-date-past", llm.ClassRateLimited,
		hdr("Retry-After", Now.Add(-time.Minute).Format(http.TimeFormat)), 0, 0)
	retry("retry/retry-after-ms", llm.ClassRateLimited, hdr("Retry-After-Ms", "1500"), 0, 1500*time.Millisecond)
	retry("retry/ms-preferred-over-seconds", llm.ClassRateLimited,
		hdr("Retry-After-Ms", "250", "Retry-After", "1"), 0, 250*time.Millisecond)
	retry("retry/provider-hint", llm.ClassRateLimited, nil, 13*time.Second, 13*time.Second)
	retry("retry/overloaded", llm.ClassOverloaded, hdr("Retry-After", "5"), 0, 5*time.Second)
	retry("retry/server-error", llm.ClassServerError, hdr("Retry-After", "2"), 0, 2*time.Second)
	retry("retry/garbage-header", llm.ClassRateLimited, hdr("Retry-After", "soon-ish"), 0, 0)
	// Hints only matter for classes that are retried.
	retry("retry/ignored-on-bad-request", llm.ClassBadRequest, hdr("Retry-After", "9"), 0, 0)
	retry("retry/ignored-on-quota-exhausted", llm.ClassQuotaExhausted, hdr("Retry-After", "9"), 0, 0)

	// Failures below the wire format.
	ok := successSituation("transport")
	okID := idIf(ok.RequestID)
	transport := func(name string, m mode, timeout time.Duration, w Want) {
		cs = append(cs, tcase{name: name, req: DefaultRequest, situation: &ok, mode: m, timeout: timeout, want: w})
	}
	transport("transport/slow-headers", modeSlowHeaders, 200*time.Millisecond,
		Want{Class: llm.ClassTimeout, ErrIs: context.DeadlineExceeded})
	transport("transport/slow-body", modeSlowBody, 200*time.Millisecond,
		Want{Class: llm.ClassTimeout, HTTPStatus: http.StatusOK, RequestID: okID, ErrIs: context.DeadlineExceeded})
	transport("transport/canceled", modeCancel, 0,
		Want{Class: llm.ClassTimeout, ErrIs: context.Canceled})
	transport("transport/dropped-mid-body", modeDropMidBody, 0,
		Want{Class: llm.ClassNetwork, HTTPStatus: http.StatusOK, RequestID: okID, ErrIs: io.ErrUnexpectedEOF})
	transport("transport/dropped-chunked", modeDropChunked, 0,
		Want{Class: llm.ClassNetwork, HTTPStatus: http.StatusOK, RequestID: okID, ErrIs: io.ErrUnexpectedEOF})
	transport("transport/dropped-before-response", modeDropBeforeResponse, 0,
		Want{Class: llm.ClassNetwork})
	transport("transport/connection-refused", modeRefused, 0,
		Want{Class: llm.ClassNetwork})
	transport("transport/oversized-content-length", modeOversizedLength, 0,
		Want{Class: llm.ClassServerError, HTTPStatus: http.StatusOK, RequestID: okID, ErrIs: llm.ErrBodyTooLarge})
	transport("transport/oversized-chunked", modeOversizedChunked, 0,
		Want{Class: llm.ClassServerError, HTTPStatus: http.StatusOK, RequestID: okID, ErrIs: llm.ErrBodyTooLarge})
	transport("malformed/truncated-json", modeTruncatedJSON, 0,
		Want{Class: llm.ClassNetwork, HTTPStatus: http.StatusOK, RequestID: okID})

	raw := func(name string, r rawReply, header http.Header, w Want) {
		cs = append(cs, tcase{name: name, req: DefaultRequest, raw: &r, header: header, want: w})
	}
	raw("malformed/html-200", rawReply{200, "text/html", "<html><body>Welcome to the captive portal</body></html>"}, nil,
		Want{Class: llm.ClassServerError, HTTPStatus: 200, MessageContains: "captive portal"})
	raw("malformed/json-array", rawReply{200, "application/json", `[1, 2, 3]`}, nil,
		Want{Class: llm.ClassServerError, HTTPStatus: 200})
	raw("malformed/empty-200", rawReply{200, "application/json", ``}, nil,
		Want{Class: llm.ClassNetwork, HTTPStatus: 200})
	raw("gateway/html-502", rawReply{502, "text/html", "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"}, nil,
		Want{Class: llm.ClassServerError, HTTPStatus: 502, MessageContains: "Bad Gateway"})
	raw("gateway/empty-503", rawReply{503, "text/plain", ""}, nil,
		Want{Class: llm.ClassServerError, HTTPStatus: 503})
	raw("gateway/text-429", rawReply{429, "text/plain", "Too Many Requests"}, hdr("Retry-After", "3"),
		Want{Class: llm.ClassRateLimited, HTTPStatus: 429, RetryAfter: 3 * time.Second, MessageContains: "Too Many Requests"})
	raw("gateway/echoed-key-401", rawReply{401, "text/plain", "bad credentials: Bearer " + APIKey}, nil,
		Want{Class: llm.ClassAuth, HTTPStatus: 401, MessageContains: "bad credentials"})

	for _, e := range h.Extra {
		req := DefaultRequest
		if e.Request != nil {
			req = *e.Request
		}
		cs = append(cs, tcase{name: "extra/" + e.Name, req: req, timeout: e.Timeout, mode: modeCustom, handle: e.Handle, want: e.Want})
	}
	return cs
}

// fake is one case's server side.
type fake struct {
	t        testing.TB
	h        Harness
	c        tcase
	rec      *httptest.ResponseRecorder // the rendered reply
	requests atomic.Int32
	status   atomic.Int32 // status actually written
	arrived  chan struct{}
	done     chan struct{} // closed when the test ends; releases slow handlers
	once     sync.Once
}

func runCase(t *testing.T, h Harness, c tcase) {
	f := &fake{t: t, h: h, c: c, arrived: make(chan struct{}), done: make(chan struct{})}
	if c.situation != nil {
		f.rec = httptest.NewRecorder()
		probe := httptest.NewRequest(http.MethodPost, "http://fake.invalid/", nil)
		if !h.Respond(f.rec, probe, *c.situation) {
			t.Skipf("the provider's wire format has no structured form for %q", c.situation.Name)
		}
	}

	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	base := srv.URL
	if c.mode == modeRefused {
		srv.Close()
	}
	transport := &http.Transport{}
	env := Env{
		BaseURL:          base,
		APIKey:           APIKey,
		HTTPClient:       &http.Client{Transport: transport},
		Now:              func() time.Time { return Now },
		MaxResponseBytes: MaxResponseBytes,
	}
	p := h.New(t, env)

	timeout := c.timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	if c.mode == modeCancel {
		go func() {
			select {
			case <-f.arrived:
				cancel()
			case <-f.done:
			}
		}()
	}
	resp, err := p.Complete(ctx, c.req)
	cancel()
	close(f.done)
	if c.mode != modeRefused {
		srv.Close()
	}
	transport.CloseIdleConnections()

	if n := f.requests.Load(); c.mode != modeRefused && n != 1 {
		t.Errorf("server saw %d requests, want exactly 1 (adapters must not retry; the cascade does)", n)
	}
	want := c.want
	if want.HTTPStatus == StatusAsSent {
		want.HTTPStatus = int(f.status.Load())
	}
	check(t, resp, err, want)
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("reading request body: %v", err)
	}
	if strings.Contains(r.URL.String(), APIKey) {
		f.t.Errorf("API key sent in the URL %s", r.URL.Path)
	}
	f.h.CheckRequest(f.t, r, body, f.c.req)
	r.Body = io.NopCloser(bytes.NewReader(body))
	f.once.Do(func() { close(f.arrived) })

	switch f.c.mode {
	case modeCustom:
		sw := &statusWriter{ResponseWriter: w, status: &f.status}
		f.c.handle(sw, r)
		if f.status.Load() == 0 {
			f.status.Store(http.StatusOK)
		}
	case modeSlowHeaders, modeCancel:
		f.wait(r)
	case modeReplay:
		if f.c.raw != nil {
			f.writeRaw(w)
			return
		}
		f.writeHeader(w, f.rec.Code, len(f.rec.Body.Bytes()))
		w.Write(f.rec.Body.Bytes())
	case modeSlowBody:
		b := f.rec.Body.Bytes()
		f.writeHeader(w, f.rec.Code, len(b))
		w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		f.wait(r)
	case modeTruncatedJSON:
		b := f.rec.Body.Bytes()
		f.writeHeader(w, f.rec.Code, len(b)/2)
		w.Write(b[:len(b)/2])
	case modeOversizedLength, modeOversizedChunked:
		b := append(bytes.TrimRight(f.rec.Body.Bytes(), " \n"), bytes.Repeat([]byte(" "), 2*MaxResponseBytes)...)
		n := len(b)
		if f.c.mode == modeOversizedChunked {
			n = -1
		}
		f.writeHeader(w, f.rec.Code, n)
		for len(b) > 0 {
			k := min(len(b), 8<<10)
			if _, err := w.Write(b[:k]); err != nil {
				return // the client stopped reading, as it should
			}
			w.(http.Flusher).Flush()
			b = b[k:]
		}
	case modeDropMidBody, modeDropChunked, modeDropBeforeResponse:
		f.drop(w)
	}
}

// writeHeader copies the rendered headers plus the case's own, and sets the
// Content-Length (n < 0: chunked).
func (f *fake) writeHeader(w http.ResponseWriter, status, n int) {
	for k, vs := range f.rec.Header() {
		w.Header()[k] = vs
	}
	for k, vs := range f.c.header {
		w.Header()[k] = vs
	}
	w.Header().Del("Content-Length")
	if n >= 0 {
		w.Header().Set("Content-Length", strconv.Itoa(n))
	}
	f.status.Store(int32(status))
	w.WriteHeader(status)
}

func (f *fake) writeRaw(w http.ResponseWriter) {
	for k, vs := range f.c.header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", f.c.raw.contentType)
	f.status.Store(int32(f.c.raw.status))
	w.WriteHeader(f.c.raw.status)
	io.WriteString(w, f.c.raw.body)
}

func (f *fake) wait(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-f.done:
	case <-time.After(30 * time.Second):
	}
}

// drop hijacks the connection and closes it part-way through a response.
func (f *fake) drop(w http.ResponseWriter) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		f.t.Errorf("hijack: %v", err)
		return
	}
	defer conn.Close()
	if f.c.mode == modeDropBeforeResponse {
		return
	}
	b := f.rec.Body.Bytes()
	f.status.Store(int32(f.rec.Code))
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\n", f.rec.Code, http.StatusText(f.rec.Code))
	h := f.rec.Header().Clone()
	h.Del("Content-Length")
	if f.c.mode == modeDropMidBody {
		h.Set("Content-Length", strconv.Itoa(len(b)))
	} else {
		h.Set("Transfer-Encoding", "chunked")
	}
	h.Write(buf)
	buf.WriteString("\r\n")
	half := b[:len(b)/2]
	if f.c.mode == modeDropMidBody {
		buf.Write(half)
	} else {
		fmt.Fprintf(buf, "%x\r\n%s\r\n", len(half), half)
	}
	buf.Flush()
}

type statusWriter struct {
	http.ResponseWriter
	status *atomic.Int32
}

func (w *statusWriter) WriteHeader(code int) {
	w.status.CompareAndSwap(0, int32(code))
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.status.CompareAndSwap(0, http.StatusOK)
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if fl, ok := w.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("not a hijacker")
	}
	return hj.Hijack()
}

// check compares one Complete result with want.
func check(t testing.TB, resp llm.Response, err error, want Want) {
	t.Helper()
	noSecret(t, err)
	if want.Class == "" {
		if err != nil {
			t.Fatalf("Complete: unexpected error %v (class %q)", err, llm.ClassOf(err))
		}
		checkResponse(t, resp, want)
		return
	}
	if err == nil {
		t.Fatalf("Complete succeeded with %+v, want class %s", resp, want.Class)
	}
	var le *llm.Error
	if !errors.As(err, &le) {
		t.Fatalf("error %v (%T) is not an *llm.Error", err, err)
	}
	if le.Class != want.Class {
		t.Errorf("Class = %q, want %q (error: %v)", le.Class, want.Class, err)
	}
	if le.HTTPStatus != want.HTTPStatus {
		t.Errorf("HTTPStatus = %d, want %d", le.HTTPStatus, want.HTTPStatus)
	}
	if le.RetryAfter != want.RetryAfter {
		t.Errorf("RetryAfter = %v, want %v", le.RetryAfter, want.RetryAfter)
	}
	if le.RequestID != want.RequestID {
		t.Errorf("RequestID = %q, want %q", le.RequestID, want.RequestID)
	}
	if le.Provider == "" {
		t.Errorf("Provider is empty")
	}
	if le.Message == "" && le.Err == nil {
		t.Errorf("error has neither Message nor Err")
	}
	if want.MessageContains != "" && !strings.Contains(le.Message, want.MessageContains) {
		t.Errorf("Message = %q, want it to contain %q", le.Message, want.MessageContains)
	}
	if n := len([]rune(le.Message)); n > llm.MaxMessageLen {
		t.Errorf("Message has %d runes, want <= %d", n, llm.MaxMessageLen)
	}
	if want.ErrIs != nil && !errors.Is(err, want.ErrIs) {
		t.Errorf("errors.Is(err, %v) = false; err: %v", want.ErrIs, err)
	}
	if le.Class == llm.ClassEmptyResponse || le.Class == llm.ClassContentFilter {
		// The call was billed: the partial Response reports its usage.
		checkUsage(t, resp, want)
	}
}

func checkResponse(t testing.TB, resp llm.Response, want Want) {
	t.Helper()
	if resp.Text != want.Text {
		t.Errorf("Text = %q, want %q", resp.Text, want.Text)
	}
	if resp.FinishReason != want.FinishReason {
		t.Errorf("FinishReason = %q, want %q", resp.FinishReason, want.FinishReason)
	}
	if resp.HTTPStatus != want.HTTPStatus {
		t.Errorf("HTTPStatus = %d, want %d", resp.HTTPStatus, want.HTTPStatus)
	}
	if resp.RequestID != want.RequestID {
		t.Errorf("RequestID = %q, want %q", resp.RequestID, want.RequestID)
	}
	checkUsage(t, resp, want)
}

func checkUsage(t testing.TB, resp llm.Response, want Want) {
	t.Helper()
	got := [4]int{resp.InputTokens, resp.OutputTokens, resp.CacheReadTokens, resp.CacheWriteTokens}
	exp := [4]int{want.InputTokens, want.OutputTokens, want.CacheReadTokens, want.CacheWriteTokens}
	if got != exp {
		t.Errorf("usage [input output cache_read cache_write] = %v, want %v", got, exp)
	}
	if resp.UsageEstimated != want.UsageEstimated {
		t.Errorf("UsageEstimated = %v, want %v", resp.UsageEstimated, want.UsageEstimated)
	}
}

// noSecret fails when the API key appears anywhere in err's chain.
func noSecret(t testing.TB, err error) {
	t.Helper()
	for e := err; e != nil; e = errors.Unwrap(e) {
		for _, s := range []string{e.Error(), fmt.Sprintf("%+v", e)} {
			if strings.Contains(s, APIKey) {
				t.Errorf("API key leaked in error: %s", s)
				return
			}
		}
	}
	var le *llm.Error
	if errors.As(err, &le) && strings.Contains(le.Message, APIKey) {
		t.Errorf("API key leaked in Message: %s", le.Message)
	}
}

func runConcurrent(t *testing.T, h Harness) {
	s := successSituation("concurrent")
	rec := httptest.NewRecorder()
	if !h.Respond(rec, httptest.NewRequest(http.MethodPost, "http://fake.invalid/", nil), s) {
		t.Fatal("Respond refused the canonical success")
	}
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		body, _ := io.ReadAll(r.Body)
		h.CheckRequest(t, r, body, DefaultRequest)
		for k, vs := range rec.Header() {
			w.Header()[k] = vs
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	defer srv.Close()
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	p := h.New(t, Env{BaseURL: srv.URL, APIKey: APIKey, HTTPClient: &http.Client{Transport: transport},
		Now: func() time.Time { return Now }, MaxResponseBytes: MaxResponseBytes})

	const calls = 16
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		wg.Go(func() {
			resp, err := p.Complete(context.Background(), DefaultRequest)
			switch {
			case err != nil:
				errs <- err
			case resp.Text != Answer || resp.InputTokens != 25 || resp.OutputTokens != 8:
				errs <- fmt.Errorf("got %+v", resp)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := n.Load(); got != calls {
		t.Errorf("server saw %d requests, want %d", got, calls)
	}
}

func sanitize(name string) string {
	return strings.NewReplacer("/", "_", "-", "_").Replace(name)
}
