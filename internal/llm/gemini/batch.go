package gemini

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
)

// Batch Mode (https://ai.google.dev/gemini-api/docs/batch-mode), inline
// requests:
//
//	POST /v1beta/models/{model}:batchGenerateContent
//	     {batch: {displayName, inputConfig: {requests: {requests: [{request, metadata: {key}}]}}}}
//	     → Operation {name: batches/..., metadata: GenerateContentBatch {state, batchStats, ...}, done}
//	GET  /v1beta/batches/{id}      state BATCH_STATE_PENDING | RUNNING | SUCCEEDED | FAILED | CANCELLED | EXPIRED;
//	                               when done: response.inlinedResponses.inlinedResponses [{response | error, metadata}]
//	POST /v1beta/batches/{id}:cancel
//	GET  /v1beta/batches?pageSize=&pageToken=   {operations, nextPageToken}
//
// Inline requests are limited to 20 MB per batch (larger inputs go through
// the File API, which this client does not use); the label travels as the
// displayName, the custom id as each request's metadata key.

// BatchMaxBytes is Gemini's limit on a batch of inline requests.
const BatchMaxBytes = 20 << 20

type inlinedRequest struct {
	Request  generateRequest   `json:"request"`
	Metadata map[string]string `json:"metadata"`
}

type operation struct {
	Name     string         `json:"name"`
	Metadata *batchResource `json:"metadata"`
	Done     bool           `json:"done"`
	Response *batchOutput   `json:"response"`
	Error    *apiError      `json:"error"`
}

type batchResource struct {
	Name        string `json:"name"`
	Model       string `json:"model"`
	DisplayName string `json:"displayName"`
	State       string `json:"state"`
	CreateTime  string `json:"createTime"`
	BatchStats  *struct {
		RequestCount           flexInt `json:"requestCount"`
		SuccessfulRequestCount flexInt `json:"successfulRequestCount"`
		FailedRequestCount     flexInt `json:"failedRequestCount"`
		PendingRequestCount    flexInt `json:"pendingRequestCount"`
	} `json:"batchStats"`
	Output *batchOutput `json:"output"`
}

type batchOutput struct {
	InlinedResponses *struct {
		InlinedResponses []inlinedResponse `json:"inlinedResponses"`
	} `json:"inlinedResponses"`
	ResponsesFile string `json:"responsesFile"`
}

type inlinedResponse struct {
	Metadata map[string]any  `json:"metadata"`
	Response json.RawMessage `json:"response"`
	Error    *apiError       `json:"error"`
}

// flexInt reads an int64 that proto JSON sends as a string.
type flexInt int

func (n *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.Atoi(s)
	*n = flexInt(v)
	return err
}

func (o operation) batch() llm.Batch {
	out := llm.Batch{ID: o.Name, State: llm.BatchRunning}
	m := o.Metadata
	if m == nil {
		m = &batchResource{}
	}
	out.Label, out.ProviderStatus = m.DisplayName, m.State
	if t, err := time.Parse(time.RFC3339Nano, m.CreateTime); err == nil {
		out.CreatedAt = t.UTC()
	}
	if s := m.BatchStats; s != nil {
		out.Total = int(s.RequestCount)
		out.Done = int(s.SuccessfulRequestCount + s.FailedRequestCount)
	}
	switch m.State {
	case "BATCH_STATE_SUCCEEDED":
		out.State = llm.BatchEnded
	case "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED":
		out.State = llm.BatchFailed
		out.Error = m.State
		if o.Error != nil && o.Error.Message != "" {
			out.Error += ": " + o.Error.Message
		}
	}
	return out
}

// BatchBody renders the create request's body for reqs.
func (c *Client) BatchBody(label string, reqs []llm.BatchRequest) (any, error) {
	rs := make([]inlinedRequest, len(reqs))
	for i, r := range reqs {
		if !llm.ValidCustomID(r.CustomID) {
			return nil, fmt.Errorf("%s: custom id %q: want 1-64 characters of A-Z a-z 0-9 _ -", c.Name(), r.CustomID)
		}
		rs[i] = inlinedRequest{Request: c.wireRequest(r.Request), Metadata: map[string]string{"key": r.CustomID}}
	}
	return map[string]any{"batch": map[string]any{
		"displayName": label,
		"inputConfig": map[string]any{"requests": map[string]any{"requests": rs}},
	}}, nil
}

// SubmitBatch creates a batch of inline requests with the label as its
// displayName.
func (c *Client) SubmitBatch(ctx context.Context, label, model string, reqs []llm.BatchRequest) (llm.Batch, error) {
	model = strings.TrimPrefix(model, "models/")
	if model == "" {
		return llm.Batch{}, c.t.NoModelError()
	}
	body, err := c.BatchBody(label, reqs)
	if err != nil {
		return llm.Batch{}, err
	}
	var op operation
	if _, err := c.t.DoJSON(ctx, http.MethodPost, "/v1beta/models/"+url.PathEscape(model)+":batchGenerateContent", model, body, &op); err != nil {
		return llm.Batch{}, err
	}
	return op.batch(), nil
}

// batchPath is the path of a batch resource ("batches/abc").
func batchPath(id string) (string, error) {
	name, ok := strings.CutPrefix(id, "batches/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("batch id %q: want batches/<id>", id)
	}
	return "/v1beta/batches/" + url.PathEscape(name), nil
}

func (c *Client) getOperation(ctx context.Context, id string) (operation, error) {
	p, err := batchPath(id)
	if err != nil {
		return operation{}, &llm.Error{Class: llm.ClassBadRequest, Provider: c.Name(), Model: id, Message: err.Error()}
	}
	var op operation
	_, err = c.t.DoJSON(ctx, http.MethodGet, p, id, nil, &op)
	return op, err
}

// GetBatch retrieves a batch.
func (c *Client) GetBatch(ctx context.Context, id string) (llm.Batch, error) {
	op, err := c.getOperation(ctx, id)
	if err != nil {
		return llm.Batch{}, err
	}
	return op.batch(), nil
}

// CancelBatch asks the provider to cancel a batch.
func (c *Client) CancelBatch(ctx context.Context, id string) error {
	p, err := batchPath(id)
	if err != nil {
		return &llm.Error{Class: llm.ClassBadRequest, Provider: c.Name(), Model: id, Message: err.Error()}
	}
	_, err = c.t.DoJSON(ctx, http.MethodPost, p+":cancel", id, nil, nil)
	return err
}

// ListBatches lists the batches created at or after since.
func (c *Client) ListBatches(ctx context.Context, since time.Time) ([]llm.Batch, error) {
	var out []llm.Batch
	token := ""
	for {
		q := url.Values{"pageSize": {"100"}}
		if token != "" {
			q.Set("pageToken", token)
		}
		var page struct {
			Operations    []operation `json:"operations"`
			NextPageToken string      `json:"nextPageToken"`
		}
		if _, err := c.t.DoJSON(ctx, http.MethodGet, "/v1beta/batches?"+q.Encode(), "batches", nil, &page); err != nil {
			return nil, err
		}
		for _, op := range page.Operations {
			if b := op.batch(); !b.CreatedAt.Before(since) {
				out = append(out, b)
			}
		}
		if page.NextPageToken == "" {
			return out, nil
		}
		token = page.NextPageToken
	}
}

// BatchResults reads the inlined responses of a succeeded batch.
func (c *Client) BatchResults(ctx context.Context, id string) ([]llm.BatchResult, error) {
	op, err := c.getOperation(ctx, id)
	if err != nil {
		return nil, err
	}
	b := op.batch()
	if b.State != llm.BatchEnded {
		return nil, &llm.Error{Class: llm.ClassBadRequest, Provider: c.Name(), Model: id, Message: "batch has no results in state " + b.ProviderStatus}
	}
	outp := op.Response
	if outp == nil || outp.InlinedResponses == nil {
		if op.Metadata != nil {
			outp = op.Metadata.Output
		}
	}
	if outp == nil || outp.InlinedResponses == nil {
		return nil, &llm.Error{Class: llm.ClassServerError, Provider: c.Name(), Model: id, Message: "succeeded batch has no inlinedResponses"}
	}
	var out []llm.BatchResult
	for i, ir := range outp.InlinedResponses.InlinedResponses {
		key, _ := ir.Metadata["key"].(string)
		if key == "" {
			return nil, &llm.Error{Class: llm.ClassServerError, Provider: c.Name(), Model: id, Message: fmt.Sprintf("inlined response %d has no metadata key", i)}
		}
		r := llm.BatchResult{CustomID: key}
		switch {
		case ir.Error != nil:
			r.State = llm.ItemErrored
			f := ir.Error.fields()
			if f.status == "" {
				f.status = grpcCodes[ir.Error.Code]
			}
			r.Err = c.t.ReplyError("", llm.Exchange{}, f.reply(0))
		case len(ir.Response) > 0:
			r.State = llm.ItemSucceeded
			resp, err := c.parse(llm.Request{}, llm.Exchange{Status: http.StatusOK, Header: http.Header{}, Body: ir.Response})
			r.Response = resp
			if err != nil {
				r.Err = llm.AsError(err)
				if resp.HTTPStatus == 0 {
					r.State = llm.ItemErrored
				}
			}
		default:
			r.State = llm.ItemErrored
			r.Err = &llm.Error{Class: llm.ClassServerError, Provider: c.Name(), Message: "inlined response has neither response nor error"}
		}
		out = append(out, r)
	}
	return out, nil
}

// grpcCodes names google.rpc.Code values, which a Status inside a batch
// carries as a number only.
var grpcCodes = map[int]string{
	1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
	7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION", 10: "ABORTED",
	11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE", 15: "DATA_LOSS", 16: "UNAUTHENTICATED",
}
