package anthropic

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
)

// The Message Batches API
// (https://docs.anthropic.com/en/docs/build-with-claude/batch-processing):
//
//	POST /v1/messages/batches                {requests: [{custom_id, params}]}
//	GET  /v1/messages/batches/{id}           processing_status in_progress | canceling | ended; request_counts; results_url
//	GET  /v1/messages/batches/{id}/results   JSONL {custom_id, result: {type: succeeded | errored | canceled | expired, message | error}}
//	POST /v1/messages/batches/{id}/cancel
//	GET  /v1/messages/batches?limit=&after_id=   {data, has_more, last_id}, newest first
//
// Limits: 100,000 requests or 256 MB per batch. A batch has no metadata, so
// the label is not sent; a lost batch is recognised by its creation time,
// its request count and, at ingest, its custom ids.

// Batch limits of the Message Batches API.
const (
	BatchMaxRequests = 100_000
	BatchMaxBytes    = 256 << 20
)

type batchRequest struct {
	CustomID string          `json:"custom_id"`
	Params   messagesRequest `json:"params"`
}

type batchObject struct {
	ID               string `json:"id"`
	Type             string `json:"type"`
	ProcessingStatus string `json:"processing_status"`
	RequestCounts    struct {
		Processing int `json:"processing"`
		Succeeded  int `json:"succeeded"`
		Errored    int `json:"errored"`
		Canceled   int `json:"canceled"`
		Expired    int `json:"expired"`
	} `json:"request_counts"`
	CreatedAt  time.Time `json:"created_at"`
	ResultsURL *string   `json:"results_url"`
}

func (b batchObject) batch() llm.Batch {
	rc := b.RequestCounts
	done := rc.Succeeded + rc.Errored + rc.Canceled + rc.Expired
	out := llm.Batch{ID: b.ID, ProviderStatus: b.ProcessingStatus, CreatedAt: b.CreatedAt.UTC(), Total: rc.Processing + done, Done: done}
	out.State = llm.BatchRunning
	if b.ProcessingStatus == "ended" {
		out.State = llm.BatchEnded
	}
	return out
}

// BatchBody renders the create request's body for reqs.
func (c *Client) BatchBody(model string, reqs []llm.BatchRequest) (any, error) {
	out := make([]batchRequest, len(reqs))
	for i, r := range reqs {
		if !llm.ValidCustomID(r.CustomID) {
			return nil, fmt.Errorf("%s: custom_id %q: want 1-64 characters of A-Z a-z 0-9 _ -", c.Name(), r.CustomID)
		}
		r.Request.Model = model
		out[i] = batchRequest{CustomID: r.CustomID, Params: c.wireRequest(r.Request)}
	}
	return map[string]any{"requests": out}, nil
}

// SubmitBatch creates a Message Batch of reqs. The label is not sent (the API
// has no field for it).
func (c *Client) SubmitBatch(ctx context.Context, label, model string, reqs []llm.BatchRequest) (llm.Batch, error) {
	body, err := c.BatchBody(model, reqs)
	if err != nil {
		return llm.Batch{}, err
	}
	var b batchObject
	if _, err := c.t.DoJSON(ctx, http.MethodPost, "/v1/messages/batches", model, body, &b); err != nil {
		return llm.Batch{}, err
	}
	return b.batch(), nil
}

// GetBatch retrieves a batch.
func (c *Client) GetBatch(ctx context.Context, id string) (llm.Batch, error) {
	var b batchObject
	if _, err := c.t.DoJSON(ctx, http.MethodGet, "/v1/messages/batches/"+url.PathEscape(id), id, nil, &b); err != nil {
		return llm.Batch{}, err
	}
	return b.batch(), nil
}

// CancelBatch asks the provider to cancel a batch (processing_status
// canceling, then ended with canceled results).
func (c *Client) CancelBatch(ctx context.Context, id string) error {
	_, err := c.t.DoJSON(ctx, http.MethodPost, "/v1/messages/batches/"+url.PathEscape(id)+"/cancel", id, nil, nil)
	return err
}

// ListBatches lists the batches created at or after since, newest first.
func (c *Client) ListBatches(ctx context.Context, since time.Time) ([]llm.Batch, error) {
	return llm.ListNewestFirst(ctx, c.t, "/v1/messages/batches", "after_id", since, batchObject.batch)
}

type resultLine struct {
	CustomID string `json:"custom_id"`
	Result   struct {
		Type    string          `json:"type"`
		Message json.RawMessage `json:"message"`
		Error   json.RawMessage `json:"error"`
	} `json:"result"`
}

// BatchResults reads an ended batch's results file.
func (c *Client) BatchResults(ctx context.Context, id string) ([]llm.BatchResult, error) {
	ex, err := c.t.Do(ctx, http.MethodGet, "/v1/messages/batches/"+url.PathEscape(id)+"/results", id, "", nil, llm.MaxBatchResultBytes)
	if err != nil {
		return nil, err
	}
	var out []llm.BatchResult
	err = llm.EachLine(c.t, id, ex, func(_ int, line []byte) error {
		var l resultLine
		if err := json.Unmarshal(line, &l); err != nil {
			return err
		}
		if l.CustomID == "" {
			return fmt.Errorf("no custom_id")
		}
		r, err := c.result(l)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

func (c *Client) result(l resultLine) (llm.BatchResult, error) {
	r := llm.BatchResult{CustomID: l.CustomID}
	switch l.Result.Type {
	case "succeeded":
		r.State = llm.ItemSucceeded
		resp, err := c.parse(llm.Request{}, llm.Exchange{Status: http.StatusOK, Header: http.Header{}, Body: l.Result.Message})
		r.Response = resp
		if err != nil {
			r.Err = llm.AsError(err)
			if resp.HTTPStatus == 0 {
				r.State = llm.ItemErrored
			}
		}
	case "errored":
		r.State = llm.ItemErrored
		r.Err = c.t.ReplyError("", llm.Exchange{}, parseErrorBody(l.Result.Error).reply(0))
	case "canceled":
		r.State = llm.ItemCanceled
	case "expired":
		r.State = llm.ItemExpired
	default:
		return r, fmt.Errorf("unknown result type %q", l.Result.Type)
	}
	return r, nil
}
