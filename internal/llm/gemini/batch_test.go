package gemini_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/gemini"
	"github.com/promptcascade/promptcascade/internal/providerbatch"
	"github.com/promptcascade/promptcascade/internal/providerbatch/batchfake"
	"github.com/promptcascade/promptcascade/internal/providerbatch/batchtest"
)

func harness(inlineBytes int64) batchtest.Harness {
	return batchtest.Harness{
		Protocol: batchfake.Gemini,
		Model:    "gemini-2.5-flash",
		New: func(t testing.TB, env batchtest.Env) providerbatch.Client {
			c, err := gemini.New(gemini.Config{BaseURL: env.BaseURL, APIKey: env.APIKey, HTTPClient: env.HTTPClient, BatchInlineBytes: inlineBytes})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		KeepsLabel: true,
		Fates:      true,
		// Gemini reports a request that ran out of time as an error
		// (DEADLINE_EXCEEDED), and a cancelled batch as a failed one.
		ExpiredAs:    llm.ItemErrored,
		CanceledEnds: llm.BatchFailed,
		FileInput:    inlineBytes < 0,
	}
}

func TestBatchConformance(t *testing.T) {
	t.Parallel()
	t.Run("inline", func(t *testing.T) {
		t.Parallel()
		batchtest.Run(t, harness(0))
	})
	// Every batch through the Files API: upload, create from the file,
	// download the responses file.
	t.Run("file", func(t *testing.T) {
		t.Parallel()
		batchtest.Run(t, harness(-1))
	})
}

func TestBatchInlineBytesAboveTheLimitIsRefused(t *testing.T) {
	t.Parallel()
	_, err := gemini.New(gemini.Config{APIKey: "k", BatchInlineBytes: gemini.BatchInlineMaxBytes + 1})
	if err == nil || !strings.Contains(err.Error(), "BatchInlineBytes") {
		t.Fatalf("New with BatchInlineBytes over the limit = %v, want an error naming it", err)
	}
}

// A batch whose inline body would exceed the documented 20 MB goes as a
// file with the default settings; the fake refuses inline bodies over it.
func TestBatchOverTheInlineLimitGoesAsAFile(t *testing.T) {
	t.Parallel()
	fake := &batchfake.Server{Protocol: batchfake.Gemini, APIKey: batchtest.APIKey}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	c, err := gemini.New(gemini.Config{BaseURL: srv.URL, APIKey: batchtest.APIKey, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("word ", 200_000) // 1 MB a prompt
	var reqs []llm.BatchRequest
	for i := range 21 {
		reqs = append(reqs, llm.BatchRequest{CustomID: "big-" + string(rune('a'+i)), Request: llm.Request{Prompt: big}})
	}
	ctx := context.Background()
	b, err := c.SubmitBatch(ctx, "pc-big", "gemini-2.5-flash", reqs)
	if err != nil {
		t.Fatalf("SubmitBatch of 21 MB: %v", err)
	}
	if fake.FileBatches() != 1 {
		t.Fatalf("a 21 MB batch was not sent as a file")
	}
	small, err := c.SubmitBatch(ctx, "pc-small", "gemini-2.5-flash", reqs[:2])
	if err != nil {
		t.Fatalf("SubmitBatch of 2 MB: %v", err)
	}
	if fake.FileBatches() != 1 {
		t.Errorf("a 2 MB batch was sent as a file, want inline")
	}
	for _, id := range []string{b.ID, small.ID} {
		for range 5 {
			if got, err := c.GetBatch(ctx, id); err != nil || got.State != llm.BatchRunning {
				break
			}
		}
		rs, err := c.BatchResults(ctx, id)
		if err != nil {
			t.Fatalf("BatchResults(%s): %v", id, err)
		}
		for _, r := range rs {
			if r.State != llm.ItemSucceeded {
				t.Errorf("%s: %s %v", r.CustomID, r.State, r.Err)
			}
		}
	}
}

// The upload URL of the start reply is followed on the client's own base
// URL: its path and query only, so the key never goes to another host.
func TestBatchUploadURLStaysOnTheBaseURL(t *testing.T) {
	t.Parallel()
	fake := &batchfake.Server{Protocol: batchfake.Gemini, APIKey: batchtest.APIKey}
	var mu sync.Mutex
	var hosts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		rec := httptest.NewRecorder()
		fake.ServeHTTP(rec, r)
		for k, vs := range rec.Header() {
			for _, v := range vs {
				if k == "X-Goog-Upload-Url" {
					v = strings.Replace(v, "http://"+r.Host, "https://elsewhere.example", 1)
				}
				w.Header().Add(k, v)
			}
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	c, err := gemini.New(gemini.Config{BaseURL: srv.URL, APIKey: batchtest.APIKey, HTTPClient: srv.Client(), BatchInlineBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SubmitBatch(context.Background(), "pc-host", "gemini-2.5-flash",
		[]llm.BatchRequest{{CustomID: "a", Request: llm.Request{Prompt: "hi"}}}); err != nil {
		t.Fatalf("SubmitBatch: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hosts) != 3 {
		t.Fatalf("%d requests reached the base URL, want 3 (start, upload, create)", len(hosts))
	}
	if fake.FileBatches() != 1 {
		t.Errorf("no batch was created from the uploaded file")
	}
}

// The guide spells the states JOB_STATE_*, the API BATCH_STATE_*: both read
// the same, and a responses file whose line has neither response nor error
// is an errored item, never an answer.
func TestBatchStateNamesAndFileLines(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1beta/batches/b1":
			_, _ = w.Write([]byte(`{"name": "batches/b1", "done": true, "metadata": {"state": "JOB_STATE_SUCCEEDED", "displayName": "pc-1"},
				"response": {"responsesFile": "files/out1"}}`))
		case "/download/v1beta/files/out1:download":
			if r.URL.Query().Get("alt") != "media" {
				http.Error(w, "want alt=media", http.StatusBadRequest)
				return
			}
			_, _ = w.Write([]byte(`{"key": "a", "response": {"candidates": [{"content": {"parts": [{"text": "an answer"}]}, "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}}}
{"key": "b", "error": {"code": 8, "message": "quota"}}
{"key": "c"}
`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := gemini.New(gemini.Config{BaseURL: srv.URL, APIKey: "k", HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.GetBatch(context.Background(), "batches/b1")
	if err != nil || b.State != llm.BatchEnded {
		t.Fatalf("GetBatch = %+v, %v; want ended", b, err)
	}
	rs, err := c.BatchResults(context.Background(), "batches/b1")
	if err != nil || len(rs) != 3 {
		t.Fatalf("BatchResults = %+v, %v; want 3 results", rs, err)
	}
	if rs[0].State != llm.ItemSucceeded || rs[0].Response.Text != "an answer" || rs[0].Response.InputTokens != 3 || rs[0].Response.OutputTokens != 2 {
		t.Errorf("a: %+v", rs[0])
	}
	if rs[1].State != llm.ItemErrored || rs[1].Err == nil || rs[1].Err.Class != llm.ClassRateLimited {
		t.Errorf("b: %+v %v, want errored rate_limited (RESOURCE_EXHAUSTED)", rs[1], rs[1].Err)
	}
	if rs[2].State != llm.ItemErrored {
		t.Errorf("c: %+v, want errored", rs[2])
	}
}
