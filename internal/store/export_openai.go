package store

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// The OpenAI Batch API's output line (BatchRequestOutput in OpenAI's
// OpenAPI spec): one per request, keyed by the input's custom_id, with
// either a response (an HTTP status and a chat completion body) or an error.
type openAIBatchLine struct {
	ID       string             `json:"id"`
	CustomID string             `json:"custom_id"`
	Response *openAIBatchResp   `json:"response"`
	Error    *openAIBatchError  `json:"error"`
	Metadata json.RawMessage    `json:"metadata,omitempty"` // not OpenAI's: the input's metadata, kept
	Cascade  openAIBatchCascade `json:"promptcascade"`      // not OpenAI's: what the cascade did
}

type openAIBatchResp struct {
	StatusCode int                `json:"status_code"`
	RequestID  string             `json:"request_id"`
	Body       openAIChatResponse `json:"body"`
}

type openAIChatResponse struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []openAIChatChoice `json:"choices"`
	Usage   openAIUsage        `json:"usage"`
}

type openAIChatChoice struct {
	Index        int               `json:"index"`
	Message      openAIChatMessage `json:"message"`
	Logprobs     *struct{}         `json:"logprobs"`
	FinishReason string            `json:"finish_reason"`
}

type openAIChatMessage struct {
	Role    string  `json:"role"`
	Content *string `json:"content"`
}

type openAIUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type openAIBatchError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type openAIBatchCascade struct {
	Tier     string  `json:"tier"`
	Attempts int     `json:"attempts"`
	CostUSD  float64 `json:"cost_usd"`
	Prompt   *string `json:"prompt,omitempty"`
	System   *string `json:"system,omitempty"`
}

// ErrorCodeCascadeFailed is the error.code of an openai-batch export line
// whose prompt every model refused (results.status = 'failed').
const ErrorCodeCascadeFailed = "cascade_failed"

// ExportOpenAIBatch writes batchID's results as OpenAI Batch API output
// lines, in input order: custom_id is the prompt id (the input line's
// custom_id when the batch was enqueued with --format openai-batch), a
// succeeded prompt has response.status_code 200 and a chat completion body
// with usage, a failed one response null and error {code: "cascade_failed",
// message}. Two fields OpenAI does not write are added, which tools built
// for OpenAI batches ignore: metadata (when the input had some) and
// promptcascade (tier, attempts, cost_usd; prompt and system with text).
// Without IncludeText the answer's content is null.
func (s *Store) ExportOpenAIBatch(ctx context.Context, batchID string, w io.Writer, opts ...ExportOption) error {
	o := exportOpts(opts)
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	var line openAIBatchLine
	var resp openAIBatchResp
	var fail openAIBatchError
	choices := make([]openAIChatChoice, 1)
	err := s.eachResult(ctx, batchID, o, func(r *ResultRow) error {
		ref := r.PromptID
		if r.Seq != nil {
			ref = strconv.FormatInt(*r.Seq, 10)
		}
		line = openAIBatchLine{
			ID:       "batch_req_" + r.BatchID + "_" + ref,
			CustomID: r.PromptID,
			Metadata: r.Metadata,
			Cascade:  openAIBatchCascade{Tier: r.Tier, Attempts: r.Attempts, CostUSD: r.CostUSD, Prompt: r.Prompt, System: r.System},
		}
		if r.Status == "succeeded" {
			choices[0] = openAIChatChoice{
				Message:      openAIChatMessage{Role: "assistant", Content: r.Response},
				FinishReason: str(r.FinishReason),
			}
			if choices[0].FinishReason == "" {
				choices[0].FinishReason = "stop"
			}
			resp = openAIBatchResp{
				StatusCode: 200,
				RequestID:  "req_" + r.BatchID + "_" + ref,
				Body: openAIChatResponse{
					ID: "chatcmpl-" + r.BatchID + "-" + ref, Object: "chat.completion",
					Created: r.CompletedAt.Unix(), Model: str(r.ModelUsed), Choices: choices,
					Usage: openAIUsage{r.InputTokens, r.OutputTokens, r.InputTokens + r.OutputTokens},
				},
			}
			line.Response = &resp
		} else {
			fail = openAIBatchError{Code: ErrorCodeCascadeFailed, Message: str(r.Error)}
			line.Error = &fail
		}
		return enc.Encode(&line)
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("store: export openai-batch: %w", err)
	}
	return nil
}
