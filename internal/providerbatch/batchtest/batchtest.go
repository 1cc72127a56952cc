// Package batchtest is the conformance suite that every batch implementation
// (openai, anthropic, gemini against their batchfake servers; sim in
// process) passes: the lifecycle from submit to results, every custom id
// answered exactly once, errored and expired requests reported as such,
// list finding a batch again (by label where the provider keeps one),
// cancel, and errors that are *llm.Error values of the right class with the
// API key never in them.
package batchtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/providerbatch"
	"github.com/promptcascade/promptcascade/internal/providerbatch/batchfake"
)

// APIKey is the key harnesses configure; the fakes echo it in errors.
const APIKey = "sk-SECRET-batch-canary-42" //nolint:gosec // a canary the tests look for, not a credential

// Env is what a harness needs to build the client under test.
type Env struct {
	BaseURL    string // "" for an in-process implementation
	APIKey     string
	HTTPClient *http.Client
}

// Harness adapts one implementation to the suite.
type Harness struct {
	// Protocol is the fake the client talks to; "" for an in-process
	// implementation (sim), which then gets an empty Env.
	Protocol batchfake.Protocol
	New      func(t testing.TB, env Env) providerbatch.Client
	Model    string
	// KeepsLabel: ListBatches reports the label given to SubmitBatch.
	KeepsLabel bool
	// Fates: the implementation lets the suite decide each request's fate
	// by its custom id prefix (ok-, err-, exp-); false for sim.
	Fates bool
	// ExpiredAs is how an expired request is reported (Gemini has no
	// expired state per request: errored).
	ExpiredAs llm.BatchItemState
	// CanceledEnds is the state of a batch cancelled before it ended.
	CanceledEnds llm.BatchState
	// FileInput: the client sends its batches as an uploaded input file
	// (Gemini with a negative BatchInlineBytes); the suite checks that the
	// Gemini fake created each from a file, and from inline requests when
	// false.
	FileInput bool
}

type bundle struct {
	c    providerbatch.Client
	fake *batchfake.Server
}

func setup(t *testing.T, h Harness, key string) bundle {
	t.Helper()
	if h.Protocol == "" {
		return bundle{c: h.New(t, Env{})}
	}
	fake := &batchfake.Server{Protocol: h.Protocol, APIKey: APIKey, Fate: func(r batchfake.Request) batchfake.Fate {
		switch {
		case strings.HasPrefix(r.CustomID, "err-"):
			return batchfake.Fate{Kind: batchfake.Error, Class: "server"}
		case strings.HasPrefix(r.CustomID, "bad-"):
			return batchfake.Fate{Kind: batchfake.Error, Class: "invalid"}
		case strings.HasPrefix(r.CustomID, "exp-"):
			return batchfake.Fate{Kind: batchfake.Expire}
		}
		return batchfake.Fate{Kind: batchfake.Answer, Text: "answer to " + r.Prompt + " with enough words to be useful"}
	}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return bundle{c: h.New(t, Env{BaseURL: srv.URL, APIKey: key, HTTPClient: srv.Client()}), fake: fake}
}

func requests(ids ...string) []llm.BatchRequest {
	out := make([]llm.BatchRequest, len(ids))
	for i, id := range ids {
		out[i] = llm.BatchRequest{CustomID: id, Request: llm.Request{System: "Be brief.", Prompt: "question " + id, MaxTokens: 64, Seed: uint64(i + 1)}}
	}
	return out
}

// waitEnded polls until the batch is no longer running.
func waitEnded(t *testing.T, c providerbatch.Client, id string) llm.Batch {
	t.Helper()
	for range 20 {
		b, err := c.GetBatch(context.Background(), id)
		if err != nil {
			t.Fatalf("GetBatch(%s): %v", id, err)
		}
		if b.ID != id {
			t.Fatalf("GetBatch(%s) returned id %q", id, b.ID)
		}
		if b.State != llm.BatchRunning {
			return b
		}
	}
	t.Fatalf("batch %s still running after 20 polls", id)
	return llm.Batch{}
}

func noKey(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), APIKey) {
		t.Errorf("error leaks the API key: %v", err)
	}
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	ctx := context.Background()

	t.Run("lifecycle", func(t *testing.T) {
		t.Parallel()
		b := setup(t, h, APIKey)
		ids := []string{"ok-1", "ok-2", "ok-3"}
		if h.Fates {
			ids = append(ids, "err-1", "bad-1", "exp-1")
		}
		before := time.Now().Add(-time.Second)
		sub, err := b.c.SubmitBatch(ctx, "pc-test-1", h.Model, requests(ids...))
		if err != nil {
			t.Fatalf("SubmitBatch: %v", err)
		}
		if sub.ID == "" || sub.State != llm.BatchRunning {
			t.Fatalf("submitted batch = %+v, want an id and state running", sub)
		}
		if sub.CreatedAt.Before(before) {
			t.Errorf("CreatedAt %v is before the submit (%v)", sub.CreatedAt, before)
		}
		if h.Protocol == batchfake.Gemini {
			want := 0
			if h.FileInput {
				want = 1
			}
			if got := b.fake.FileBatches(); got != want {
				t.Errorf("%d batches created from an input file, want %d", got, want)
			}
		}
		end := waitEnded(t, b.c, sub.ID)
		if end.State != llm.BatchEnded {
			t.Fatalf("batch ended in state %s (%s), want ended", end.State, end.ProviderStatus)
		}
		if end.Total != 0 && end.Total != len(ids) {
			t.Errorf("Total = %d, want %d", end.Total, len(ids))
		}
		rs, err := b.c.BatchResults(ctx, sub.ID)
		if err != nil {
			t.Fatalf("BatchResults: %v", err)
		}
		seen := map[string]llm.BatchResult{}
		for _, r := range rs {
			if _, dup := seen[r.CustomID]; dup {
				t.Errorf("custom id %s has two results", r.CustomID)
			}
			seen[r.CustomID] = r
		}
		for _, id := range ids {
			r, ok := seen[id]
			if !ok {
				t.Errorf("custom id %s has no result", id)
				continue
			}
			want := llm.ItemSucceeded
			switch {
			case strings.HasPrefix(id, "err-"), strings.HasPrefix(id, "bad-"):
				want = llm.ItemErrored
			case strings.HasPrefix(id, "exp-"):
				want = h.ExpiredAs
			}
			if h.Fates && r.State != want {
				t.Errorf("%s: state %s, want %s", id, r.State, want)
			}
			switch r.State {
			case llm.ItemSucceeded:
				if r.Err != nil || strings.TrimSpace(r.Response.Text) == "" || r.Response.InputTokens <= 0 || r.Response.OutputTokens <= 0 {
					t.Errorf("%s: succeeded result %+v (err %v): want text and usage", id, r.Response, r.Err)
				}
			case llm.ItemErrored:
				if r.Err == nil || r.Err.Class == "" {
					t.Errorf("%s: errored result without a classified error", id)
					continue
				}
				noKey(t, r.Err)
				if h.Fates && strings.HasPrefix(id, "err-") && !r.Err.Class.Retryable() {
					t.Errorf("%s: server-side failure classified %s, want a retryable class", id, r.Err.Class)
				}
				if h.Fates && strings.HasPrefix(id, "bad-") && r.Err.Class != llm.ClassBadRequest {
					t.Errorf("%s: invalid request classified %s, want bad_request", id, r.Err.Class)
				}
			case llm.ItemExpired, llm.ItemCanceled:
			default:
				t.Errorf("%s: unknown state %q", id, r.State)
			}
		}
		if b.fake != nil {
			for _, id := range ids {
				if n := b.fake.Submitted()[id]; n != 1 {
					t.Errorf("%s submitted %d times, want 1", id, n)
				}
			}
		}
	})

	t.Run("list", func(t *testing.T) {
		t.Parallel()
		b := setup(t, h, APIKey)
		since := time.Now().Add(-time.Second)
		sub, err := b.c.SubmitBatch(ctx, "pc-list-7", h.Model, requests("ok-a", "ok-b"))
		if err != nil {
			t.Fatalf("SubmitBatch: %v", err)
		}
		list, err := b.c.ListBatches(ctx, since)
		if err != nil {
			t.Fatalf("ListBatches: %v", err)
		}
		var found *llm.Batch
		for i := range list {
			if list[i].ID == sub.ID {
				found = &list[i]
			}
		}
		if found == nil {
			t.Fatalf("ListBatches does not list %s (got %d batches)", sub.ID, len(list))
		}
		if h.KeepsLabel && found.Label != "pc-list-7" {
			t.Errorf("listed label = %q, want pc-list-7", found.Label)
		}
		later, err := b.c.ListBatches(ctx, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatalf("ListBatches(future): %v", err)
		}
		if len(later) != 0 {
			t.Errorf("ListBatches(an hour from now) = %d batches, want none", len(later))
		}
	})

	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		b := setup(t, h, APIKey)
		sub, err := b.c.SubmitBatch(ctx, "pc-cancel-1", h.Model, requests("ok-x", "ok-y"))
		if err != nil {
			t.Fatalf("SubmitBatch: %v", err)
		}
		if err := b.c.CancelBatch(ctx, sub.ID); err != nil {
			t.Fatalf("CancelBatch: %v", err)
		}
		if b.fake != nil && b.fake.Cancels() != 1 {
			t.Errorf("the server answered %d cancel calls, want 1", b.fake.Cancels())
		}
		end := waitEnded(t, b.c, sub.ID)
		if end.State != h.CanceledEnds {
			t.Fatalf("cancelled batch ended %s (%s), want %s", end.State, end.ProviderStatus, h.CanceledEnds)
		}
		if end.State != llm.BatchEnded {
			return
		}
		rs, err := b.c.BatchResults(ctx, sub.ID)
		if err != nil {
			t.Fatalf("BatchResults: %v", err)
		}
		if len(rs) != 2 {
			t.Fatalf("%d results, want 2", len(rs))
		}
		for _, r := range rs {
			if r.State != llm.ItemCanceled {
				t.Errorf("%s: state %s, want canceled", r.CustomID, r.State)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		b := setup(t, h, APIKey)
		_, err := b.c.GetBatch(ctx, unknownID(h.Protocol))
		if llm.ClassOf(err) != llm.ClassNotFound {
			t.Errorf("GetBatch(unknown) = %v, want class not_found", err)
		}
		noKey(t, err)
		if _, err := b.c.SubmitBatch(ctx, "pc-bad", h.Model, requests("has space")); err == nil {
			t.Errorf("SubmitBatch with custom id %q succeeded, want an error", "has space")
		}
		if b.fake != nil && b.fake.Batches() != 0 {
			t.Errorf("a batch with an invalid custom id reached the server")
		}
		if h.Protocol == "" {
			return
		}
		b.fake.FailSubmit = 1
		_, err = b.c.SubmitBatch(ctx, "pc-500", h.Model, requests("ok-1"))
		var le *llm.Error
		if !errors.As(err, &le) || !le.Retryable() {
			t.Errorf("SubmitBatch against a 500 = %v, want a retryable *llm.Error", err)
		}
		noKey(t, err)
		wrong := setup(t, h, "sk-wrong-key-000000")
		_, err = wrong.c.SubmitBatch(ctx, "pc-auth", h.Model, requests("ok-1"))
		if llm.ClassOf(err) != llm.ClassAuth {
			t.Errorf("SubmitBatch with a wrong key = %v, want class auth_error", err)
		}
		noKey(t, err)
		if wrong.fake.Batches() != 0 {
			t.Errorf("an unauthorised submit created a batch")
		}
	})
}

func unknownID(p batchfake.Protocol) string {
	switch p {
	case batchfake.Gemini:
		return "batches/nope"
	case batchfake.Anthropic:
		return "msgbatch_nope"
	}
	return fmt.Sprintf("batch_nope_%d", 1)
}
