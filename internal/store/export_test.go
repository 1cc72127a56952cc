package store

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// orderedFixture writes batch "o" whose input order (seq) differs from id
// order, with CSV-style metadata columns, a max_tokens and a failure.
func orderedFixture(t *testing.T) *Store {
	t.Helper()
	st := setup(t)
	mk := func(id string, seq int64, status prompt.Status, meta string) prompt.Result {
		r := res("o", id, prompt.TierSimple, status, 1, 10*time.Millisecond, att(1, small, prompt.OutcomeOK, 0.001, time.Millisecond))
		r.Job.Seq, r.Job.Metadata, r.Job.MaxTokens = seq, []byte(meta), int(seq)*10
		return r
	}
	mustWrite(t, st,
		mk("a", 3, prompt.StatusSucceeded, `{"lang":"en","n":1}`),
		mk("b", 1, prompt.StatusFailed, `{"lang":"fr","prompt_tier":"x"}`),
		mk("c", 2, prompt.StatusSucceeded, `{"lang":"de, \"quoted\""}`),
	)
	return st
}

func TestExportInInputOrderWithMetadataColumns(t *testing.T) {
	t.Parallel()
	st := orderedFixture(t)
	var buf bytes.Buffer
	if err := st.ExportCSV(t.Context(), "o", &buf, IncludeText()); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := strings.Join(append(append(CSVHeader[:len(CSVHeader):len(CSVHeader)], csvTextColumns...), "lang", "n", "metadata.prompt_tier"), ",")
	if got := strings.Join(recs[0], ","); got != wantHeader {
		t.Fatalf("header = %s\nwant     %s", got, wantHeader)
	}
	var ids, langs, ns, tiers []string
	for _, r := range recs[1:] {
		ids, langs, ns, tiers = append(ids, r[1]), append(langs, r[14]), append(ns, r[15]), append(tiers, r[16])
	}
	if strings.Join(ids, " ") != "b c a" {
		t.Errorf("rows in order %v, want input order b c a", ids)
	}
	if langs[0] != "fr" || langs[1] != `de, "quoted"` || ns[2] != "1" || ns[0] != "" || tiers[0] != "x" {
		t.Errorf("metadata columns: lang %q n %q prompt_tier %q", langs, ns, tiers)
	}
	if recs[1][7] != "failed" || recs[1][10] != "all models failed" || recs[2][11] != "prompt c" || recs[2][13] != "answer to c" {
		t.Errorf("rows = %q", recs[1:])
	}

	buf.Reset()
	if err := st.ExportCSV(t.Context(), "o", &buf, OnlyStatus("failed")); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(buf.String(), "\n"); got != 2 || !strings.Contains(buf.String(), "o,b,") || strings.Contains(buf.String(), ",n,") {
		t.Errorf("--status failed (only its own metadata keys):\n%s", buf.String())
	}

	buf.Reset()
	if err := st.ExportJSONL(t.Context(), "o", &buf, OnlyStatus("succeeded")); err != nil {
		t.Fatal(err)
	}
	var rows []ResultRow
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var r ResultRow
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	if len(rows) != 2 || rows[0].PromptID != "c" || *rows[0].Seq != 2 || *rows[0].MaxTokens != 20 || rows[1].PromptID != "a" {
		t.Errorf("jsonl succeeded = %+v", rows)
	}
}

func TestExportOpenAIBatch(t *testing.T) {
	t.Parallel()
	st := orderedFixture(t)
	var buf bytes.Buffer
	if err := st.ExportOpenAIBatch(t.Context(), "o", &buf, IncludeText()); err != nil {
		t.Fatal(err)
	}
	type line struct {
		ID       string `json:"id"`
		CustomID string `json:"custom_id"`
		Response *struct {
			StatusCode int `json:"status_code"`
			Body       struct {
				Object  string `json:"object"`
				Model   string `json:"model"`
				Choices []struct {
					Message struct {
						Role    string  `json:"role"`
						Content *string `json:"content"`
					} `json:"message"`
					FinishReason string `json:"finish_reason"`
				} `json:"choices"`
				Usage struct {
					PromptTokens, CompletionTokens, TotalTokens int
				} `json:"usage"`
			} `json:"body"`
		} `json:"response"`
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Metadata map[string]any `json:"metadata"`
	}
	var got []line
	raw := strings.Split(strings.TrimSpace(buf.String()), "\n")
	for _, l := range raw {
		var x line
		dec := json.NewDecoder(strings.NewReader(l))
		if err := dec.Decode(&x); err != nil {
			t.Fatal(err)
		}
		got = append(got, x)
	}
	if len(got) != 3 || got[0].CustomID != "b" || got[1].CustomID != "c" || got[2].CustomID != "a" {
		t.Fatalf("lines = %s", buf.String())
	}
	if f := got[0]; f.Response != nil || f.Error == nil || f.Error.Code != ErrorCodeCascadeFailed || f.Error.Message != "all models failed" {
		t.Errorf("failed line = %s", raw[0])
	}
	ok := got[1]
	if ok.Response == nil || ok.Error != nil || ok.Response.StatusCode != 200 || ok.Response.Body.Object != "chat.completion" ||
		ok.Response.Body.Model != small || len(ok.Response.Body.Choices) != 1 ||
		*ok.Response.Body.Choices[0].Message.Content != "answer to c" || ok.Response.Body.Choices[0].Message.Role != "assistant" ||
		ok.Response.Body.Choices[0].FinishReason != "stop" || ok.Metadata["lang"] == nil {
		t.Errorf("succeeded line = %s", raw[1])
	}
	// usage keys are OpenAI's snake_case names.
	if !strings.Contains(raw[1], `"usage":{"prompt_tokens":10,"completion_tokens":20,"total_tokens":30}`) ||
		!strings.Contains(raw[1], `"error":null`) || !strings.Contains(raw[0], `"response":null`) || got[0].ID == got[1].ID {
		t.Errorf("wire shape: %s", raw[1])
	}

	buf.Reset()
	if err := st.ExportOpenAIBatch(t.Context(), "o", &buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "answer to") || strings.Contains(buf.String(), "prompt c") ||
		!strings.Contains(buf.String(), `"content":null`) {
		t.Errorf("without text:\n%s", buf.String())
	}
}

func TestBatchExists(t *testing.T) {
	t.Parallel()
	st := orderedFixture(t)
	for b, want := range map[string]bool{"o": true, "nope": false} {
		if got, err := st.BatchExists(t.Context(), b); err != nil || got != want {
			t.Errorf("BatchExists(%q) = %v, %v", b, got, err)
		}
	}
}
