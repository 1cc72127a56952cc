package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/redact"
)

func TestStatusClass(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]llm.Class{
		400: llm.ClassBadRequest, 401: llm.ClassAuth, 402: llm.ClassQuotaExhausted, 403: llm.ClassPermission,
		404: llm.ClassNotFound, 408: llm.ClassTimeout, 413: llm.ClassContextWindow, 418: llm.ClassBadRequest,
		422: llm.ClassBadRequest, 429: llm.ClassRateLimited, 498: llm.ClassOverloaded, 500: llm.ClassServerError,
		502: llm.ClassServerError, 503: llm.ClassServerError, 504: llm.ClassServerError, 529: llm.ClassOverloaded,
	} {
		if got := llm.StatusClass(status); got != want {
			t.Errorf("StatusClass(%d) = %s, want %s", status, got, want)
		}
	}
}

func TestNormalizeBaseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, def, version, want string }{
		{"", "https://api.openai.com", "/v1", "https://api.openai.com"},
		{"https://api.groq.com/openai/v1/", "", "/v1", "https://api.groq.com/openai"},
		{"http://localhost:11434", "", "/v1", "http://localhost:11434"},
		{"https://x/v10", "", "/v1", "https://x/v10"},
		{"https://generativelanguage.googleapis.com/v1beta", "", "/v1beta", "https://generativelanguage.googleapis.com"},
	} {
		got, err := llm.NormalizeBaseURL(tc.raw, tc.def, tc.version)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeBaseURL(%q) = %q, %v; want %q", tc.raw, got, err, tc.want)
		}
	}
	_, err := llm.NormalizeBaseURL("ftp://user:s3cretpw@host", "", "")
	if err == nil || strings.Contains(err.Error(), "s3cretpw") {
		t.Errorf("bad scheme: err = %v (must fail without the password)", err)
	}
}

func TestCleanMessage(t *testing.T) {
	t.Parallel()
	r := redact.New("secret-key-1")
	got := llm.CleanMessage(r, "  line one\n\tline   two secret-key-1 ")
	if got != "line one line two [REDACTED]" {
		t.Errorf("CleanMessage = %q", got)
	}
	// A key straddling the cut is removed before cutting.
	long := strings.Repeat("x", llm.MaxMessageLen-5) + " secret-key-1"
	if got := llm.CleanMessage(r, long); strings.Contains(got, "secret") {
		t.Errorf("fragment survived: %q", got)
	}
}

func TestMalformedBody(t *testing.T) {
	t.Parallel()
	var v map[string]any
	for body, want := range map[string]llm.Class{
		`{"choices": [`:     llm.ClassNetwork,     // cut short
		``:                  llm.ClassNetwork,     // nothing at all
		`<html>oops</html>`: llm.ClassServerError, // not JSON
	} {
		err := json.Unmarshal([]byte(body), &v)
		e := llm.MalformedBody("p", "m", llm.Exchange{Status: 200, Body: []byte(body)}, err, redact.Redactor{})
		if e.Class != want {
			t.Errorf("MalformedBody(%q) = %s, want %s", body, e.Class, want)
		}
	}
}

func TestSendLimitAndTransportError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("a", 100))
	}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	ex, err := llm.Send(srv.Client(), req, 10)
	if !errors.Is(err, llm.ErrBodyTooLarge) || ex.Status != 200 {
		t.Fatalf("Send over limit: %v, status %d", err, ex.Status)
	}
	e := llm.TransportError(context.Background(), "p", "m", ex.Status, err, redact.Redactor{})
	if e.Class != llm.ClassServerError || e.HTTPStatus != 200 {
		t.Errorf("TransportError = %+v", e)
	}
	req, _ = http.NewRequest(http.MethodGet, srv.URL, nil)
	ex, err = llm.Send(srv.Client(), req, 100)
	if err != nil || len(ex.Body) != 100 {
		t.Errorf("Send at limit: %v, %d bytes", err, len(ex.Body))
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("worker stopping")
	cancel(cause)
	e = llm.TransportError(ctx, "p", "m", 0, ctx.Err(), redact.Redactor{})
	if e.Class != llm.ClassTimeout || !errors.Is(e, context.Canceled) || !errors.Is(e, cause) {
		t.Errorf("canceled ctx: %+v", e)
	}
}

func TestEstimateUsage(t *testing.T) {
	t.Parallel()
	resp := llm.Response{Text: "a b c"}
	llm.EstimateUsage(&resp, llm.Request{System: "s t", Prompt: "p"}, func(s string) int { return len(strings.Fields(s)) })
	if !resp.UsageEstimated || resp.InputTokens != 3 || resp.OutputTokens != 3 {
		t.Errorf("EstimateUsage = %+v", resp)
	}
	resp = llm.Response{Text: "a"}
	llm.EstimateUsage(&resp, llm.Request{Prompt: "p"}, nil)
	if !resp.UsageEstimated || resp.InputTokens != 0 {
		t.Errorf("EstimateUsage without counter = %+v", resp)
	}
}
