package e2e

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An OpenAI Batch input goes in with enqueue --format openai-batch and comes
// out of `cascadectl export --format openai-batch` as OpenAI's output lines:
// one per input line, in input order, keyed by the input's custom_id, with a
// chat completion body and usage.
func TestBatchExportOpenAIBatchRoundTrip(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, 3*time.Minute)
	var in strings.Builder
	var ids []string
	for i := range 40 {
		// custom_ids deliberately out of lexical order: export must keep
		// the input's order, not sort by id.
		id := fmt.Sprintf("req-%d", (i*17)%40)
		ids = append(ids, id)
		fmt.Fprintf(&in, `{"custom_id":%q,"method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","max_tokens":%d,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"What is %d plus %d?"}]}}`+"\n", id, 50+i, i, i)
	}
	file := writeFile(t, "requests.jsonl", in.String())
	b.runWant(t, ctx, 0, "enqueue", nil, "--batch", "oa", "--format", "openai-batch", "--quiet", file)
	b.work(t, ctx, routesEnv(t, fastRoutes))
	b.checkBatch(t, ctx, "oa", 40)

	out := filepath.Join(t.TempDir(), "out.jsonl")
	if got := b.ctl(t, ctx, 0, "export", "oa", "--format", "openai-batch", "-o", out); got != "" {
		t.Errorf("export -o wrote to stdout: %q", got)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	type outLine struct {
		ID       string `json:"id"`
		CustomID string `json:"custom_id"`
		Response *struct {
			StatusCode int `json:"status_code"`
			Body       struct {
				Object  string `json:"object"`
				Choices []struct {
					Message struct {
						Content string `json:"content"`
					} `json:"message"`
				} `json:"choices"`
				Usage struct {
					PromptTokens     int `json:"prompt_tokens"`
					CompletionTokens int `json:"completion_tokens"`
					TotalTokens      int `json:"total_tokens"`
				} `json:"usage"`
			} `json:"body"`
		} `json:"response"`
		Error *struct {
			Code, Message string
		} `json:"error"`
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != len(ids) {
		t.Fatalf("%d output lines for %d requests", len(lines), len(ids))
	}
	conn := b.pg(t, ctx)
	seen := map[string]bool{}
	for i, l := range lines {
		var o outLine
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatalf("line %d is not JSON: %v", i+1, err)
		}
		if o.CustomID != ids[i] {
			t.Fatalf("line %d: custom_id %q, want %q (input order)", i+1, o.CustomID, ids[i])
		}
		if o.ID == "" || seen[o.ID] {
			t.Errorf("line %d: id %q empty or repeated", i+1, o.ID)
		}
		seen[o.ID] = true
		var status, response string
		var in, outTok, maxTok int
		if err := conn.QueryRow(ctx, `SELECT status, coalesce(response, ''), input_tokens, output_tokens, coalesce(max_tokens, 0)
			FROM results WHERE batch_id = 'oa' AND prompt_id = $1`, o.CustomID).Scan(&status, &response, &in, &outTok, &maxTok); err != nil {
			t.Fatal(err)
		}
		if maxTok != 50+i {
			t.Errorf("%s: stored max_tokens %d, want %d", o.CustomID, maxTok, 50+i)
		}
		switch status {
		case "succeeded":
			if o.Response == nil || o.Error != nil || o.Response.StatusCode != 200 || o.Response.Body.Object != "chat.completion" ||
				len(o.Response.Body.Choices) != 1 || o.Response.Body.Choices[0].Message.Content != response || response == "" ||
				o.Response.Body.Usage.PromptTokens != in || o.Response.Body.Usage.CompletionTokens != outTok ||
				o.Response.Body.Usage.TotalTokens != in+outTok {
				t.Errorf("line %d does not carry its stored answer: %s", i+1, l)
			}
		case "failed":
			if o.Response != nil || o.Error == nil || o.Error.Code == "" {
				t.Errorf("failed line %d: %s", i+1, l)
			}
		}
	}

	// The same batch as CSV with text, and an unknown batch is an error.
	csvOut := b.ctl(t, ctx, 0, "export", "oa", "--format", "csv", "--with-text", "--status", "succeeded")
	recs, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 2 || recs[0][11] != "prompt" || !strings.HasPrefix(recs[1][11], "What is") {
		t.Errorf("csv --with-text:\n%s", csvOut)
	}
	for _, r := range recs[1:] {
		if r[7] != "succeeded" {
			t.Errorf("--status succeeded exported a %s row", r[7])
		}
	}
	if got := b.ctl(t, ctx, 2, "export", "nope", "--format", "jsonl"); !strings.Contains(got, `unknown batch "nope"`) {
		t.Errorf("unknown batch: %s", got)
	}
	missing := filepath.Join(t.TempDir(), "missing.jsonl")
	b.ctl(t, ctx, 2, "export", "nope", "--format", "openai-batch", "-o", missing)
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("export of an unknown batch created %s (%v)", missing, err)
	}
}
