package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
)

// The Batch API (https://platform.openai.com/docs/guides/batch):
//
//	POST /v1/files            multipart: purpose=batch, file=<JSONL of {custom_id, method, url, body}>
//	POST /v1/batches          {input_file_id, endpoint: /v1/chat/completions, completion_window: 24h, metadata}
//	GET  /v1/batches/{id}     status validating → in_progress → finalizing → completed | failed | expired | cancelling → cancelled
//	GET  /v1/files/{id}/content  output_file_id: {id, custom_id, response: {status_code, request_id, body}, error}
//	                             error_file_id: the same shape, error {code: batch_expired | batch_cancelled | ...}
//	POST /v1/batches/{id}/cancel
//	GET  /v1/batches?limit=&after=   {data, has_more, last_id}, newest first
//
// Limits: 50,000 requests and 200 MB per input file.

// Batch limits of the OpenAI Batch API.
const (
	BatchMaxRequests = 50_000
	BatchMaxBytes    = 200 << 20
)

// LabelKey is the metadata key that carries the submitter's label, so that
// a batch whose id was lost (a crash right after the create call) is found
// again with ListBatches.
const LabelKey = "promptcascade_label"

const batchEndpoint = "/v1/chat/completions"

type batchLine struct {
	CustomID string      `json:"custom_id"`
	Method   string      `json:"method"`
	URL      string      `json:"url"`
	Body     chatRequest `json:"body"`
}

type fileObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Purpose string `json:"purpose"`
}

type batchObject struct {
	ID               string            `json:"id"`
	Object           string            `json:"object"`
	Endpoint         string            `json:"endpoint"`
	Status           string            `json:"status"`
	InputFileID      string            `json:"input_file_id"`
	OutputFileID     *string           `json:"output_file_id"`
	ErrorFileID      *string           `json:"error_file_id"`
	CompletionWindow string            `json:"completion_window"`
	CreatedAt        int64             `json:"created_at"`
	Metadata         map[string]string `json:"metadata"`
	RequestCounts    *struct {
		Total     int `json:"total"`
		Completed int `json:"completed"`
		Failed    int `json:"failed"`
	} `json:"request_counts"`
	Errors *struct {
		Data []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Line    *int   `json:"line"`
		} `json:"data"`
	} `json:"errors"`
}

// BatchLine renders one request as a line of a Batch API input file.
func (c *Client) BatchLine(r llm.BatchRequest) ([]byte, error) {
	if !llm.ValidCustomID(r.CustomID) {
		return nil, fmt.Errorf("%s: custom_id %q: want 1-64 characters of A-Z a-z 0-9 _ -", c.Name(), r.CustomID)
	}
	return json.Marshal(batchLine{CustomID: r.CustomID, Method: http.MethodPost, URL: batchEndpoint, Body: c.wireRequest(r.Request)})
}

// SubmitBatch uploads reqs as a JSONL file with purpose "batch" and creates
// a batch on /v1/chat/completions with a 24h completion window and the label
// in its metadata.
func (c *Client) SubmitBatch(ctx context.Context, label, model string, reqs []llm.BatchRequest) (llm.Batch, error) {
	var file bytes.Buffer
	for _, r := range reqs {
		r.Request.Model = model
		line, err := c.BatchLine(r)
		if err != nil {
			return llm.Batch{}, err
		}
		file.Write(line)
		file.WriteByte('\n')
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("purpose", "batch")
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, label+".jsonl"))
	h.Set("Content-Type", "application/jsonl")
	part, _ := mw.CreatePart(h)
	_, _ = part.Write(file.Bytes())
	_ = mw.Close()
	ex, err := c.t.Do(ctx, http.MethodPost, "/v1/files", model, mw.FormDataContentType(), body.Bytes(), 0)
	if err != nil {
		return llm.Batch{}, err
	}
	var f fileObject
	if err := json.Unmarshal(ex.Body, &f); err != nil || f.ID == "" {
		if err == nil {
			err = fmt.Errorf("file object has no id")
		}
		return llm.Batch{}, c.t.Malformed(model, ex, err)
	}
	var b batchObject
	_, err = c.t.DoJSON(ctx, http.MethodPost, "/v1/batches", model, map[string]any{
		"input_file_id":     f.ID,
		"endpoint":          batchEndpoint,
		"completion_window": "24h",
		"metadata":          map[string]string{LabelKey: label},
	}, &b)
	if err != nil {
		return llm.Batch{}, err
	}
	return b.batch(), nil
}

// GetBatch retrieves a batch.
func (c *Client) GetBatch(ctx context.Context, id string) (llm.Batch, error) {
	b, err := c.getBatch(ctx, id)
	if err != nil {
		return llm.Batch{}, err
	}
	return b.batch(), nil
}

func (c *Client) getBatch(ctx context.Context, id string) (batchObject, error) {
	var b batchObject
	_, err := c.t.DoJSON(ctx, http.MethodGet, "/v1/batches/"+url.PathEscape(id), id, nil, &b)
	return b, err
}

// CancelBatch asks the provider to cancel a batch; it ends as cancelled with
// the results finished so far.
func (c *Client) CancelBatch(ctx context.Context, id string) error {
	_, err := c.t.DoJSON(ctx, http.MethodPost, "/v1/batches/"+url.PathEscape(id)+"/cancel", id, nil, nil)
	return err
}

// ListBatches lists the batches created at or after since, newest first.
func (c *Client) ListBatches(ctx context.Context, since time.Time) ([]llm.Batch, error) {
	return llm.ListNewestFirst(ctx, c.t, "/v1/batches", "after", since, batchObject.batch)
}

// BatchResults reads an ended batch's output and error files.
func (c *Client) BatchResults(ctx context.Context, id string) ([]llm.BatchResult, error) {
	b, err := c.getBatch(ctx, id)
	if err != nil {
		return nil, err
	}
	if st := b.batch().State; st != llm.BatchEnded {
		return nil, &llm.Error{Class: llm.ClassBadRequest, Provider: c.Name(), Model: id, Message: "batch has no results in status " + b.Status}
	}
	var out []llm.BatchResult
	for _, fid := range []*string{b.OutputFileID, b.ErrorFileID} {
		if fid == nil || *fid == "" {
			continue
		}
		ex, err := c.t.Do(ctx, http.MethodGet, "/v1/files/"+url.PathEscape(*fid)+"/content", id, "", nil, llm.MaxBatchResultBytes)
		if err != nil {
			return nil, err
		}
		rs, err := c.parseResults(id, ex)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

type resultLine struct {
	CustomID string `json:"custom_id"`
	Response *struct {
		StatusCode int             `json:"status_code"`
		RequestID  string          `json:"request_id"`
		Body       json.RawMessage `json:"body"`
	} `json:"response"`
	Error *struct {
		Code    flexString `json:"code"`
		Message flexString `json:"message"`
	} `json:"error"`
}

func (c *Client) parseResults(id string, ex llm.Exchange) ([]llm.BatchResult, error) {
	var out []llm.BatchResult
	err := llm.EachLine(c.t, id, ex, func(_ int, line []byte) error {
		var l resultLine
		if err := json.Unmarshal(line, &l); err != nil {
			return err
		}
		if l.CustomID == "" {
			return fmt.Errorf("no custom_id")
		}
		out = append(out, c.result(l))
		return nil
	})
	return out, err
}

func (c *Client) result(l resultLine) llm.BatchResult {
	r := llm.BatchResult{CustomID: l.CustomID}
	if l.Error != nil && (l.Response == nil || l.Response.StatusCode == 0) {
		switch string(l.Error.Code) {
		case "batch_expired":
			r.State = llm.ItemExpired
		case "batch_cancelled":
			r.State = llm.ItemCanceled
		default:
			r.State = llm.ItemErrored
			f := errorFields{message: string(l.Error.Message), code: string(l.Error.Code)}
			r.Err = c.t.ReplyError("", llm.Exchange{}, llm.ErrorReply{Class: classify(http.StatusBadRequest, f), Label: f.label(), Message: f.message})
		}
		return r
	}
	if l.Response == nil {
		r.State = llm.ItemErrored
		r.Err = &llm.Error{Class: llm.ClassServerError, Provider: c.Name(), Message: "result line has neither response nor error"}
		return r
	}
	ex := llm.Exchange{Status: l.Response.StatusCode, Header: http.Header{}, Body: l.Response.Body}
	if l.Response.RequestID != "" {
		ex.Header.Set("X-Request-Id", l.Response.RequestID)
	}
	if ex.Status < 200 || ex.Status > 299 {
		r.State = llm.ItemErrored
		r.Err = c.t.ReplyError("", ex, parseErrorBody(ex.Body).reply(ex.Status))
		return r
	}
	resp, err := c.parse(llm.Request{}, ex)
	r.State, r.Response = llm.ItemSucceeded, resp
	if err != nil {
		r.Err = llm.AsError(err)
		if resp.HTTPStatus == 0 { // malformed: nothing billed that we can read
			r.State = llm.ItemErrored
		}
	}
	return r
}

func (b batchObject) batch() llm.Batch {
	out := llm.Batch{ID: b.ID, Label: b.Metadata[LabelKey], ProviderStatus: b.Status, CreatedAt: time.Unix(b.CreatedAt, 0).UTC()}
	if b.RequestCounts != nil {
		out.Total = b.RequestCounts.Total
		out.Done = b.RequestCounts.Completed + b.RequestCounts.Failed
	}
	switch b.Status {
	case "completed", "expired", "cancelled":
		out.State = llm.BatchEnded
	case "failed":
		out.State = llm.BatchFailed
		if b.Errors != nil {
			var msgs []string
			for _, e := range b.Errors.Data {
				msgs = append(msgs, e.Code+": "+e.Message)
			}
			out.Error = strings.Join(msgs, "; ")
		}
	default: // validating, in_progress, finalizing, cancelling
		out.State = llm.BatchRunning
	}
	return out
}
