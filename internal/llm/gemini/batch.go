package gemini

import (
	"bytes"
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

// Batch Mode (https://ai.google.dev/gemini-api/docs/batch-mode), with
// inline requests or an input file:
//
//	POST /v1beta/models/{model}:batchGenerateContent
//	     {batch: {displayName, inputConfig: {requests: {requests: [{request, metadata: {key}}]}}}}
//	     or {batch: {displayName, inputConfig: {fileName: "files/..."}}}
//	     → Operation {name: batches/..., metadata: GenerateContentBatch {state, batchStats, ...}, done}
//	GET  /v1beta/batches/{id}      state BATCH_STATE_PENDING | RUNNING | SUCCEEDED | FAILED | CANCELLED | EXPIRED;
//	                               when done: response.inlinedResponses.inlinedResponses [{response | error, metadata}]
//	                               or response.responsesFile "files/..." (also under metadata.output)
//	POST /v1beta/batches/{id}:cancel
//	GET  /v1beta/batches?pageSize=&pageToken=   {operations, nextPageToken}
//
// The input file (Files API, resumable upload protocol):
//
//	POST /upload/v1beta/files      X-Goog-Upload-Protocol: resumable, X-Goog-Upload-Command: start,
//	                               X-Goog-Upload-Header-Content-Length/-Content-Type; {file: {displayName}}
//	                               → X-Goog-Upload-URL header
//	POST {upload URL}              X-Goog-Upload-Command: upload, finalize, X-Goog-Upload-Offset: 0; the bytes
//	                               → X-Goog-Upload-Status: final, {file: {name: "files/...", ...}}
//	GET  /download/v1beta/{file}:download?alt=media   the responses file
//
// Each input line is {"key": custom id, "request": GenerateContentRequest};
// each line of the responses file is {"key", "response": GenerateContentResponse}
// or {"key", "error": google.rpc.Status}.
//
// Inline or file: a batch goes inline when its batchGenerateContent body is
// at most the client's inline limit (BatchInlineMaxBytes, the documented
// 20 MB, unless Config.BatchInlineBytes lowers it), else as a file (at most
// BatchFileMaxBytes, the documented 2 GB per file). The label travels as the
// batch's displayName (and the file's), the custom id as each request's
// metadata key or line key. The upload URL's path and query are sent to the
// client's base URL, so the API key never goes to another host.

// BatchInlineMaxBytes is Gemini's limit on a batchGenerateContent request
// with inline requests ("under 20MB").
const BatchInlineMaxBytes = 20_000_000

// BatchFileMaxBytes is the Files API's limit on one file (2 GB), the largest
// batch input file.
const BatchFileMaxBytes = 2_000_000_000

// batchInputMIME is the content type of the uploaded input file.
const batchInputMIME = "application/jsonl"

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
	// The guide names the states JOB_STATE_* (the SDKs' names); the API
	// sends BATCH_STATE_*. Either is read.
	state := strings.Replace(m.State, "JOB_STATE_", "BATCH_STATE_", 1)
	out.Label, out.ProviderStatus = m.DisplayName, m.State
	if t, err := time.Parse(time.RFC3339Nano, m.CreateTime); err == nil {
		out.CreatedAt = t.UTC()
	}
	if s := m.BatchStats; s != nil {
		out.Total = int(s.RequestCount)
		out.Done = int(s.SuccessfulRequestCount + s.FailedRequestCount)
	}
	switch state {
	case "BATCH_STATE_SUCCEEDED":
		out.State = llm.BatchEnded
	case "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED":
		out.State = llm.BatchFailed
		out.Error = state
		if o.Error != nil && o.Error.Message != "" {
			out.Error += ": " + o.Error.Message
		}
	}
	return out
}

// BatchBody renders the create request's body for reqs with inline
// requests.
func (c *Client) BatchBody(label string, reqs []llm.BatchRequest) (any, error) {
	rs := make([]inlinedRequest, len(reqs))
	for i, r := range reqs {
		if !llm.ValidCustomID(r.CustomID) {
			return nil, c.customIDError(r.CustomID)
		}
		rs[i] = inlinedRequest{Request: c.wireRequest(r.Request), Metadata: map[string]string{"key": r.CustomID}}
	}
	return map[string]any{"batch": map[string]any{
		"displayName": label,
		"inputConfig": map[string]any{"requests": map[string]any{"requests": rs}},
	}}, nil
}

func (c *Client) customIDError(id string) error {
	return fmt.Errorf("%s: custom id %q: want 1-64 characters of A-Z a-z 0-9 _ -", c.Name(), id)
}

// fileLine is one line of a batch input file.
type fileLine struct {
	Key     string          `json:"key"`
	Request generateRequest `json:"request"`
}

// BatchFile renders reqs as the JSONL input file of a batch.
func (c *Client) BatchFile(reqs []llm.BatchRequest) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range reqs {
		if !llm.ValidCustomID(r.CustomID) {
			return nil, c.customIDError(r.CustomID)
		}
		if err := enc.Encode(fileLine{Key: r.CustomID, Request: c.wireRequest(r.Request)}); err != nil {
			return nil, fmt.Errorf("%s: encode request %s: %w", c.Name(), r.CustomID, err)
		}
	}
	return buf.Bytes(), nil
}

// SubmitBatch creates a batch with the label as its displayName: inline
// when the body fits the inline limit, else from an uploaded input file.
func (c *Client) SubmitBatch(ctx context.Context, label, model string, reqs []llm.BatchRequest) (llm.Batch, error) {
	model = strings.TrimPrefix(model, "models/")
	if model == "" {
		return llm.Batch{}, c.t.NoModelError()
	}
	if len(reqs) == 0 {
		return llm.Batch{}, &llm.Error{Class: llm.ClassBadRequest, Provider: c.Name(), Model: model, Message: "a batch needs at least one request"}
	}
	var body []byte
	if c.inlineLimit >= 0 {
		inline, err := c.BatchBody(label, reqs)
		if err != nil {
			return llm.Batch{}, err
		}
		if body, err = json.Marshal(inline); err != nil {
			return llm.Batch{}, &llm.Error{Class: llm.ClassBadRequest, Provider: c.Name(), Model: model, Message: "encoding request: " + err.Error()}
		}
	}
	if body == nil || int64(len(body)) > c.inlineLimit {
		file, err := c.BatchFile(reqs)
		if err != nil {
			return llm.Batch{}, err
		}
		if int64(len(file)) > BatchFileMaxBytes {
			return llm.Batch{}, &llm.Error{Class: llm.ClassBadRequest, Provider: c.Name(), Model: model,
				Message: fmt.Sprintf("batch input file of %d bytes is over the Files API limit of %d", len(file), int64(BatchFileMaxBytes))}
		}
		name, err := c.uploadFile(ctx, label, model, file)
		if err != nil {
			return llm.Batch{}, err
		}
		if body, err = json.Marshal(map[string]any{"batch": map[string]any{
			"displayName": label,
			"inputConfig": map[string]any{"fileName": name},
		}}); err != nil {
			return llm.Batch{}, &llm.Error{Class: llm.ClassBadRequest, Provider: c.Name(), Model: model, Message: "encoding request: " + err.Error()}
		}
	}
	ex, err := c.t.Do(ctx, http.MethodPost, "/v1beta/models/"+url.PathEscape(model)+":batchGenerateContent", model, "application/json", body, 0)
	if err != nil {
		return llm.Batch{}, err
	}
	var op operation
	if err := json.Unmarshal(ex.Body, &op); err != nil {
		return llm.Batch{}, c.t.Malformed(model, ex, err)
	}
	return op.batch(), nil
}

// uploadFile uploads content with the resumable upload protocol in one
// request (start, then upload + finalize) and returns the file's name
// ("files/...").
func (c *Client) uploadFile(ctx context.Context, label, model string, content []byte) (string, error) {
	start, err := json.Marshal(map[string]any{"file": map[string]any{"displayName": label}})
	if err != nil {
		return "", &llm.Error{Class: llm.ClassBadRequest, Provider: c.Name(), Model: model, Message: "encoding upload start: " + err.Error()}
	}
	h := http.Header{}
	h.Set("X-Goog-Upload-Protocol", "resumable")
	h.Set("X-Goog-Upload-Command", "start")
	h.Set("X-Goog-Upload-Header-Content-Length", strconv.Itoa(len(content)))
	h.Set("X-Goog-Upload-Header-Content-Type", batchInputMIME)
	ex, err := c.t.DoHeader(ctx, http.MethodPost, "/upload/v1beta/files", model, h, "application/json", start, 0)
	if err != nil {
		return "", err
	}
	target, err := uploadTarget(ex.Header.Get("X-Goog-Upload-URL"))
	if err != nil {
		return "", c.t.Malformed(model, ex, err)
	}
	h = http.Header{}
	h.Set("X-Goog-Upload-Command", "upload, finalize")
	h.Set("X-Goog-Upload-Offset", "0")
	ex, err = c.t.DoHeader(ctx, http.MethodPost, target, model, h, batchInputMIME, content, 0)
	if err != nil {
		return "", err
	}
	if st := ex.Header.Get("X-Goog-Upload-Status"); st != "final" {
		return "", c.t.Malformed(model, ex, fmt.Errorf("upload status %q after finalize, want final", st))
	}
	var reply struct {
		File struct {
			Name string `json:"name"`
		} `json:"file"`
	}
	if err := json.Unmarshal(ex.Body, &reply); err != nil {
		return "", c.t.Malformed(model, ex, err)
	}
	if _, err := filePath(reply.File.Name); err != nil {
		return "", c.t.Malformed(model, ex, err)
	}
	return reply.File.Name, nil
}

// uploadTarget is the path and query of the upload URL the start request
// returned, to be sent to the client's own base URL.
func uploadTarget(raw string) (string, error) {
	if raw == "" {
		return "", fmt.Errorf("no X-Goog-Upload-URL header in the reply to the upload start")
	}
	u, err := url.Parse(raw)
	if err != nil || !strings.HasPrefix(u.Path, "/upload/") {
		return "", fmt.Errorf("upload URL %q: want a path under /upload/", raw)
	}
	if u.RawQuery == "" {
		return u.EscapedPath(), nil
	}
	return u.EscapedPath() + "?" + u.RawQuery, nil
}

// filePath checks a file name ("files/abc") and returns its escaped id.
func filePath(name string) (string, error) {
	id, ok := strings.CutPrefix(name, "files/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", fmt.Errorf("file name %q: want files/<id>", name)
	}
	return url.PathEscape(id), nil
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

// BatchResults reads the results of a succeeded batch: its inlined
// responses, or its responses file.
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
	if outp == nil || (outp.InlinedResponses == nil && outp.ResponsesFile == "") {
		if op.Metadata != nil {
			outp = op.Metadata.Output
		}
	}
	switch {
	case outp != nil && outp.InlinedResponses != nil:
		var out []llm.BatchResult
		for i, ir := range outp.InlinedResponses.InlinedResponses {
			key, _ := ir.Metadata["key"].(string)
			if key == "" {
				return nil, &llm.Error{Class: llm.ClassServerError, Provider: c.Name(), Model: id, Message: fmt.Sprintf("inlined response %d has no metadata key", i)}
			}
			out = append(out, c.itemResult(key, ir.Response, ir.Error))
		}
		return out, nil
	case outp != nil && outp.ResponsesFile != "":
		return c.fileResults(ctx, id, outp.ResponsesFile)
	}
	return nil, &llm.Error{Class: llm.ClassServerError, Provider: c.Name(), Model: id, Message: "succeeded batch has neither inlinedResponses nor a responsesFile"}
}

// fileResults downloads and parses a responses file.
func (c *Client) fileResults(ctx context.Context, id, file string) ([]llm.BatchResult, error) {
	p, err := filePath(file)
	if err != nil {
		return nil, &llm.Error{Class: llm.ClassServerError, Provider: c.Name(), Model: id, Message: "responsesFile: " + err.Error()}
	}
	ex, err := c.t.Do(ctx, http.MethodGet, "/download/v1beta/files/"+p+":download?alt=media", id, "", nil, llm.MaxBatchResultBytes)
	if err != nil {
		return nil, err
	}
	var out []llm.BatchResult
	err = llm.EachLine(c.t, id, ex, func(_ int, line []byte) error {
		var l struct {
			Key      string          `json:"key"`
			Response json.RawMessage `json:"response"`
			Error    *apiError       `json:"error"`
		}
		if err := json.Unmarshal(line, &l); err != nil {
			return err
		}
		if l.Key == "" {
			return fmt.Errorf("no key")
		}
		out = append(out, c.itemResult(l.Key, l.Response, l.Error))
		return nil
	})
	return out, err
}

// itemResult is the result of one request: its GenerateContentResponse,
// or its google.rpc.Status error.
func (c *Client) itemResult(key string, response json.RawMessage, apiErr *apiError) llm.BatchResult {
	r := llm.BatchResult{CustomID: key}
	switch {
	case apiErr != nil:
		r.State = llm.ItemErrored
		f := apiErr.fields()
		if f.status == "" {
			f.status = grpcCodes[apiErr.Code]
		}
		r.Err = c.t.ReplyError("", llm.Exchange{}, f.reply(0))
	case len(response) > 0 && string(response) != "null":
		r.State = llm.ItemSucceeded
		resp, err := c.parse(llm.Request{}, llm.Exchange{Status: http.StatusOK, Header: http.Header{}, Body: response})
		r.Response = resp
		if err != nil {
			r.Err = llm.AsError(err)
			if resp.HTTPStatus == 0 {
				r.State = llm.ItemErrored
			}
		}
	default:
		r.State = llm.ItemErrored
		r.Err = &llm.Error{Class: llm.ClassServerError, Provider: c.Name(), Message: "response has neither response nor error"}
	}
	return r
}

// grpcCodes names google.rpc.Code values, which a Status inside a batch
// carries as a number only.
var grpcCodes = map[int]string{
	1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
	7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION", 10: "ABORTED",
	11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE", 15: "DATA_LOSS", 16: "UNAUTHENTICATED",
}
