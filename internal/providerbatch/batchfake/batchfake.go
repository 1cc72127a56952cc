// Package batchfake is an in-process fake of the three providers' batch APIs
// (OpenAI Batch with the Files API, Anthropic Message Batches, Gemini Batch
// Mode with inline requests or an input file) for tests. A Server speaks one protocol over
// HTTP (mount it on an httptest.Server) and enforces its documented shapes:
// methods and paths, the key header, required fields and their values
// (purpose=batch, completion_window 24h, endpoint, custom id rules and
// uniqueness), unknown fields rejected, and errors in the provider's own
// error format. It records how often each custom id was submitted, so a test
// can assert that no item was submitted twice.
//
// Gemini batches come with inline requests (at most 20 MB of body) or as a
// JSONL file uploaded with the Files API's resumable protocol (start, then
// upload + finalize at offset 0, the announced length checked, each line
// {key, request}); a file batch's results are a responses file downloaded
// with alt=media.
//
// A batch advances one status per poll (GET of the batch): OpenAI validating
// → in_progress → finalizing → completed; Anthropic in_progress → ended;
// Gemini PENDING → RUNNING → SUCCEEDED. Each request's fate (answered,
// errored, expired) comes from Server.Fate.
package batchfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
)

// Protocol is the wire format a Server speaks.
type Protocol string

// Protocols.
const (
	OpenAI    Protocol = "openai"
	Anthropic Protocol = "anthropic"
	Gemini    Protocol = "gemini"
)

// Fate is what happens to one request.
type Fate struct {
	Kind  FateKind
	Text  string // the answer, for Answer
	Class string // for Error: "server" (5xx api_error) or "invalid" (400 invalid_request)
}

// FateKind is the kind of a Fate.
type FateKind int

// Fate kinds.
const (
	Answer FateKind = iota
	Error
	Expire
)

// Request is a submitted request as the fake understood it.
type Request struct {
	CustomID, Model, System, Prompt string
	MaxTokens                       int
}

// Server is a fake batch API. Its exported fields may be set before use.
type Server struct {
	Protocol Protocol
	APIKey   string // required in the protocol's key header
	// Fate decides each request's outcome; nil answers every request with a
	// 24-word text.
	Fate func(r Request) Fate
	// Now is the clock for created_at; nil is time.Now.
	Now func() time.Time
	// FailSubmit, when > 0, makes that many next create calls fail with the
	// provider's 500 error (after the upload, for OpenAI).
	FailSubmit int
	// Hold keeps every batch in progress (until it is cancelled).
	Hold bool

	mu        sync.Mutex
	presented string // the key of the request being served: servers echo it in errors
	seq       int
	files     map[string][]byte // OpenAI files: id → content
	batches   map[string]*batch
	order     []string       // batch ids, oldest first
	submitted map[string]int // custom id → times submitted
	cancels   int            // cancel calls
	geUploads map[string]*geUpload
}

type batch struct {
	id, label, model string
	created          time.Time
	reqs             []Request
	step             int // index into the protocol's status sequence
	canceled         bool
	outFile, errFile string
	fromFile         bool // Gemini: the requests came in an uploaded file
}

var sequences = map[Protocol][]string{
	OpenAI:    {"validating", "in_progress", "finalizing", "completed"},
	Anthropic: {"in_progress", "ended"},
	Gemini:    {"BATCH_STATE_PENDING", "BATCH_STATE_RUNNING", "BATCH_STATE_SUCCEEDED"},
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// SetHold sets Hold while the server runs.
func (s *Server) SetHold(hold bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Hold = hold
}

// Submitted returns how many times each custom id was submitted.
func (s *Server) Submitted() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.submitted))
	for k, v := range s.submitted {
		out[k] = v
	}
	return out
}

// Cancels returns the number of cancel calls the server answered.
func (s *Server) Cancels() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancels
}

// FileBatches returns the number of Gemini batches created from an
// uploaded input file.
func (s *Server) FileBatches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, b := range s.batches {
		if b.fromFile {
			n++
		}
	}
	return n
}

// Batches returns the number of batches created.
func (s *Server) Batches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.batches)
}

// Requests returns every request of every batch, in submission order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, id := range s.order {
		out = append(out, s.batches[id].reqs...)
	}
	return out
}

// ServeHTTP implements the protocol.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files == nil {
		s.files, s.batches, s.submitted = map[string][]byte{}, map[string]*batch{}, map[string]int{}
	}
	s.presented = r.Header.Get("X-Api-Key") + r.Header.Get("X-Goog-Api-Key") + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !s.authorized(r) {
		s.fail(w, http.StatusUnauthorized, "auth", "invalid x-api-key or bearer token")
		return
	}
	switch s.Protocol {
	case OpenAI:
		s.openai(w, r)
	case Anthropic:
		s.anthropic(w, r)
	case Gemini:
		s.gemini(w, r)
	default:
		http.Error(w, "batchfake: no protocol", http.StatusInternalServerError)
	}
}

func (s *Server) authorized(r *http.Request) bool {
	switch s.Protocol {
	case OpenAI:
		return r.Header.Get("Authorization") == "Bearer "+s.APIKey
	case Anthropic:
		return r.Header.Get("X-Api-Key") == s.APIKey && r.Header.Get("Anthropic-Version") != ""
	case Gemini:
		return r.Header.Get("X-Goog-Api-Key") == s.APIKey && r.URL.Query().Get("key") == ""
	}
	return false
}

// fail writes an error in the protocol's format. kind is auth, invalid,
// notfound or server.
func (s *Server) fail(w http.ResponseWriter, status int, kind, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	var body any
	switch s.Protocol {
	case OpenAI:
		code := map[string]string{"auth": "invalid_api_key", "invalid": "invalid_request_error", "notfound": "not_found", "server": "server_error"}[kind]
		body = map[string]any{"error": map[string]any{"message": msg + " (key " + s.presented + ")", "type": code, "code": code}}
	case Anthropic:
		typ := map[string]string{"auth": "authentication_error", "invalid": "invalid_request_error", "notfound": "not_found_error", "server": "api_error"}[kind]
		body = map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg + " (key " + s.presented + ")"}, "request_id": "req_fake"}
	case Gemini:
		st := map[string]string{"auth": "UNAUTHENTICATED", "invalid": "INVALID_ARGUMENT", "notfound": "NOT_FOUND", "server": "INTERNAL"}[kind]
		body = map[string]any{"error": map[string]any{"code": status, "message": msg + " (key " + s.presented + ")", "status": st}}
	}
	_ = json.NewEncoder(w).Encode(body)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// decodeStrict decodes exactly one JSON value with no unknown fields.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

func (s *Server) newID(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%06d", prefix, s.seq)
}

// accept records a new batch, or reports why it is refused.
func (s *Server) accept(label, model string, reqs []Request) (*batch, string) {
	if len(reqs) == 0 {
		return nil, "batch has no requests"
	}
	seen := map[string]bool{}
	for _, r := range reqs {
		if !llm.ValidCustomID(r.CustomID) {
			return nil, fmt.Sprintf("custom_id %q must match ^[a-zA-Z0-9_-]{1,64}$", r.CustomID)
		}
		if seen[r.CustomID] {
			return nil, fmt.Sprintf("custom_id %q is not unique within the batch", r.CustomID)
		}
		seen[r.CustomID] = true
		if r.Prompt == "" {
			return nil, fmt.Sprintf("request %q has no user message", r.CustomID)
		}
		if r.Model == "" && model == "" {
			return nil, fmt.Sprintf("request %q has no model", r.CustomID)
		}
	}
	prefix := map[Protocol]string{OpenAI: "batch_", Anthropic: "msgbatch_", Gemini: "batches/"}[s.Protocol]
	b := &batch{id: s.newID(prefix), label: label, model: model, created: s.now().UTC(), reqs: reqs}
	s.batches[b.id] = b
	s.order = append(s.order, b.id)
	for _, r := range reqs {
		s.submitted[r.CustomID]++
	}
	return b, ""
}

func (s *Server) status(b *batch) string {
	seq := sequences[s.Protocol]
	if b.canceled {
		return map[Protocol]string{OpenAI: "cancelled", Anthropic: "ended", Gemini: "BATCH_STATE_CANCELLED"}[s.Protocol]
	}
	return seq[min(b.step, len(seq)-1)]
}

func (s *Server) ended(b *batch) bool {
	return b.canceled || b.step >= len(sequences[s.Protocol])-1
}

// poll advances a batch by one status (not past in progress while Hold:
// never to the last status, and for OpenAI not past in_progress).
func (s *Server) poll(b *batch) {
	if s.Hold && (b.step >= 1 || b.step+1 >= len(sequences[s.Protocol])-1) {
		return
	}
	if !s.ended(b) {
		b.step++
	}
}

func (s *Server) fate(r Request) Fate {
	if s.Fate != nil {
		return s.Fate(r)
	}
	return Fate{Kind: Answer, Text: DefaultAnswer(r.Prompt)}
}

// DefaultAnswer is a 24-word answer that passes the default quality gate.
func DefaultAnswer(prompt string) string {
	return "Here is a complete answer to your question, written out in full sentences so that it is long enough for every check that runs on it."
}

func words(s string) int { return len(strings.Fields(s)) }

// counts tallies a batch's requests by fate, for the status objects.
func (s *Server) counts(b *batch) (ok, errored, expired int) {
	if !s.ended(b) {
		return 0, 0, 0
	}
	for _, r := range b.reqs {
		switch s.fate(r).Kind {
		case Answer:
			ok++
		case Error:
			errored++
		case Expire:
			expired++
		}
	}
	return ok, errored, expired
}

func readBody(r *http.Request) ([]byte, error) { return io.ReadAll(io.LimitReader(r.Body, 512<<20)) }

// ---- OpenAI ----

type oaLine struct {
	CustomID string `json:"custom_id"`
	Method   string `json:"method"`
	URL      string `json:"url"`
	Body     struct {
		Model    string `json:"model"`
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
		MaxCompletionTokens int `json:"max_completion_tokens"`
		MaxTokens           int `json:"max_tokens"`
	} `json:"body"`
}

func (s *Server) openai(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && p == "/v1/files":
		s.oaUpload(w, r)
	case r.Method == http.MethodPost && p == "/v1/batches":
		s.oaCreate(w, r)
	case r.Method == http.MethodGet && p == "/v1/batches":
		s.listPage(w, r, "after", s.oaObject)
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/v1/files/") && strings.HasSuffix(p, "/content"):
		id := strings.TrimSuffix(strings.TrimPrefix(p, "/v1/files/"), "/content")
		c, ok := s.files[id]
		if !ok {
			s.fail(w, 404, "notfound", "No such File object: "+id)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(c)
	case strings.HasPrefix(p, "/v1/batches/"):
		rest := strings.TrimPrefix(p, "/v1/batches/")
		id, cancel := strings.CutSuffix(rest, "/cancel")
		b, ok := s.batches[id]
		if !ok || (cancel && r.Method != http.MethodPost) || (!cancel && r.Method != http.MethodGet) {
			s.fail(w, 404, "notfound", "No batch found with id '"+id+"'")
			return
		}
		if cancel {
			s.cancels++
			if !s.ended(b) {
				b.canceled = true
			}
		} else {
			s.poll(b)
		}
		writeJSON(w, s.oaObject(b))
	default:
		s.fail(w, 404, "notfound", "unknown path "+r.Method+" "+p)
	}
}

func (s *Server) oaUpload(w http.ResponseWriter, r *http.Request) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		s.fail(w, 400, "invalid", "upload must be multipart/form-data")
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var purpose string
	var content []byte
	var filename string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.fail(w, 400, "invalid", "bad multipart body: "+err.Error())
			return
		}
		b, _ := io.ReadAll(part)
		switch part.FormName() {
		case "purpose":
			purpose = string(b)
		case "file":
			content, filename = b, part.FileName()
		default:
			s.fail(w, 400, "invalid", "unexpected form field "+part.FormName())
			return
		}
	}
	if purpose != "batch" || content == nil || !strings.HasSuffix(filename, ".jsonl") {
		s.fail(w, 400, "invalid", fmt.Sprintf("want purpose=batch and a .jsonl file, got purpose %q file %q", purpose, filename))
		return
	}
	for i, line := range bytes.Split(bytes.TrimRight(content, "\n"), []byte("\n")) {
		var l oaLine
		if err := decodeStrict(line, &l); err != nil {
			s.fail(w, 400, "invalid", fmt.Sprintf("line %d: %v", i+1, err))
			return
		}
	}
	id := s.newID("file-")
	s.files[id] = content
	writeJSON(w, map[string]any{"id": id, "object": "file", "bytes": len(content), "created_at": s.now().Unix(),
		"filename": filename, "purpose": "batch"})
}

func (s *Server) oaCreate(w http.ResponseWriter, r *http.Request) {
	body, _ := readBody(r)
	var req struct {
		InputFileID      string            `json:"input_file_id"`
		Endpoint         string            `json:"endpoint"`
		CompletionWindow string            `json:"completion_window"`
		Metadata         map[string]string `json:"metadata"`
	}
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, 400, "invalid", "create batch: "+err.Error())
		return
	}
	content, ok := s.files[req.InputFileID]
	switch {
	case !ok:
		s.fail(w, 400, "invalid", "input_file_id "+req.InputFileID+" not found")
		return
	case req.Endpoint != "/v1/chat/completions" || req.CompletionWindow != "24h":
		s.fail(w, 400, "invalid", "endpoint must be /v1/chat/completions and completion_window 24h")
		return
	case len(req.Metadata) > 16:
		s.fail(w, 400, "invalid", "metadata: at most 16 keys")
		return
	}
	if s.FailSubmit > 0 {
		s.FailSubmit--
		s.fail(w, 500, "server", "The server had an error while processing your request")
		return
	}
	var reqs []Request
	for _, line := range bytes.Split(bytes.TrimRight(content, "\n"), []byte("\n")) {
		var l oaLine
		_ = json.Unmarshal(line, &l)
		if l.Method != "POST" || l.URL != "/v1/chat/completions" {
			s.fail(w, 400, "invalid", "each line needs method POST and url /v1/chat/completions")
			return
		}
		q := Request{CustomID: l.CustomID, Model: l.Body.Model, MaxTokens: max(l.Body.MaxCompletionTokens, l.Body.MaxTokens)}
		for _, m := range l.Body.Messages {
			switch m.Role {
			case "system", "developer":
				q.System = m.Content
			case "user":
				q.Prompt = m.Content
			}
		}
		reqs = append(reqs, q)
	}
	b, why := s.accept(req.Metadata["promptcascade_label"], "", reqs)
	if b == nil {
		s.fail(w, 400, "invalid", why)
		return
	}
	writeJSON(w, s.oaObject(b))
}

func (s *Server) oaObject(b *batch) map[string]any {
	st := s.status(b)
	o := map[string]any{"id": b.id, "object": "batch", "endpoint": "/v1/chat/completions", "errors": nil,
		"input_file_id": "file-in", "completion_window": "24h", "status": st, "output_file_id": nil, "error_file_id": nil,
		"created_at": b.created.Unix(), "metadata": map[string]string{"promptcascade_label": b.label}}
	ok, errored, expired := s.counts(b)
	o["request_counts"] = map[string]int{"total": len(b.reqs), "completed": ok, "failed": errored + expired}
	if s.ended(b) {
		s.oaFiles(b)
		if b.outFile != "" {
			o["output_file_id"] = b.outFile
		}
		if b.errFile != "" {
			o["error_file_id"] = b.errFile
		}
	}
	return o
}

// oaFiles writes an ended batch's output and error files once.
func (s *Server) oaFiles(b *batch) {
	if b.outFile != "" || b.errFile != "" {
		return
	}
	var out, errs bytes.Buffer
	for i, r := range b.reqs {
		f := s.fate(r)
		line := map[string]any{"id": fmt.Sprintf("batch_req_%d", i), "custom_id": r.CustomID}
		switch {
		case b.canceled:
			line["response"], line["error"] = nil, map[string]any{"code": "batch_cancelled", "message": "This request was cancelled."}
			_ = json.NewEncoder(&errs).Encode(line)
		case f.Kind == Expire:
			line["response"], line["error"] = nil, map[string]any{"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}
			_ = json.NewEncoder(&errs).Encode(line)
		case f.Kind == Error:
			status, code := 500, "server_error"
			if f.Class == "invalid" {
				status, code = 400, "invalid_request_error"
			}
			line["response"] = map[string]any{"status_code": status, "request_id": "req_" + r.CustomID,
				"body": map[string]any{"error": map[string]any{"message": "request failed", "type": code, "code": code}}}
			line["error"] = nil
			_ = json.NewEncoder(&errs).Encode(line)
		default:
			line["response"] = map[string]any{"status_code": 200, "request_id": "req_" + r.CustomID, "body": map[string]any{
				"id": "chatcmpl-" + r.CustomID, "object": "chat.completion", "model": r.Model,
				"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
					"message": map[string]any{"role": "assistant", "content": f.Text, "refusal": nil}}},
				"usage": map[string]int{"prompt_tokens": words(r.System) + words(r.Prompt), "completion_tokens": words(f.Text),
					"total_tokens": words(r.System) + words(r.Prompt) + words(f.Text)}}}
			line["error"] = nil
			_ = json.NewEncoder(&out).Encode(line)
		}
	}
	if out.Len() > 0 {
		b.outFile = s.newID("file-out-")
		s.files[b.outFile] = out.Bytes()
	}
	if errs.Len() > 0 {
		b.errFile = s.newID("file-err-")
		s.files[b.errFile] = errs.Bytes()
	}
}

// listPage writes one page of the OpenAI/Anthropic list shape
// {data, has_more, last_id}, newest first, 100 per page, after the id in
// the cursor query parameter.
func (s *Server) listPage(w http.ResponseWriter, r *http.Request, cursor string, object func(*batch) map[string]any) {
	ids := s.newestFirst()
	if after := r.URL.Query().Get(cursor); after != "" {
		for i, id := range ids {
			if id == after {
				ids = ids[i+1:]
				break
			}
		}
	}
	more := len(ids) > 100
	if more {
		ids = ids[:100]
	}
	data := []any{}
	for _, id := range ids {
		data = append(data, object(s.batches[id]))
	}
	last := ""
	if len(ids) > 0 {
		last = ids[len(ids)-1]
	}
	page := map[string]any{"data": data, "has_more": more, "last_id": last}
	if s.Protocol == OpenAI {
		page["object"] = "list"
	} else {
		page["first_id"] = nil
	}
	writeJSON(w, page)
}

func (s *Server) newestFirst() []string {
	ids := append([]string(nil), s.order...)
	for i, j := 0, len(ids)-1; i < j; i, j = i+1, j-1 {
		ids[i], ids[j] = ids[j], ids[i]
	}
	return ids
}

// ---- Anthropic ----

type anParams struct {
	Model     string `json:"model"`
	MaxTokens int    `json:"max_tokens"`
	System    string `json:"system"`
	Messages  []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
}

func (s *Server) anthropic(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && p == "/v1/messages/batches":
		body, _ := readBody(r)
		var req struct {
			Requests []struct {
				CustomID string   `json:"custom_id"`
				Params   anParams `json:"params"`
			} `json:"requests"`
		}
		if err := decodeStrict(body, &req); err != nil {
			s.fail(w, 400, "invalid", "create batch: "+err.Error())
			return
		}
		var reqs []Request
		for _, q := range req.Requests {
			if q.Params.MaxTokens <= 0 || q.Params.Model == "" {
				s.fail(w, 400, "invalid", "requests."+q.CustomID+".params: model and max_tokens are required")
				return
			}
			rq := Request{CustomID: q.CustomID, Model: q.Params.Model, System: q.Params.System, MaxTokens: q.Params.MaxTokens}
			for _, m := range q.Params.Messages {
				if m.Role == "user" {
					rq.Prompt = m.Content
				}
			}
			reqs = append(reqs, rq)
		}
		if s.FailSubmit > 0 {
			s.FailSubmit--
			s.fail(w, 500, "server", "Internal server error")
			return
		}
		b, why := s.accept("", "", reqs)
		if b == nil {
			s.fail(w, 400, "invalid", why)
			return
		}
		writeJSON(w, s.anObject(b))
	case r.Method == http.MethodGet && p == "/v1/messages/batches":
		s.listPage(w, r, "after_id", s.anObject)
	case strings.HasPrefix(p, "/v1/messages/batches/"):
		rest := strings.TrimPrefix(p, "/v1/messages/batches/")
		id, sub, _ := strings.Cut(rest, "/")
		b, ok := s.batches[id]
		if !ok {
			s.fail(w, 404, "notfound", "batch "+id+" not found")
			return
		}
		switch {
		case sub == "" && r.Method == http.MethodGet:
			s.poll(b)
			writeJSON(w, s.anObject(b))
		case sub == "cancel" && r.Method == http.MethodPost:
			s.cancels++
			if !s.ended(b) {
				b.canceled = true
			}
			writeJSON(w, s.anObject(b))
		case sub == "results" && r.Method == http.MethodGet:
			if !s.ended(b) {
				s.fail(w, 400, "invalid", "batch "+id+" is still processing")
				return
			}
			w.Header().Set("Content-Type", "application/binary")
			enc := json.NewEncoder(w)
			for _, q := range b.reqs {
				_ = enc.Encode(map[string]any{"custom_id": q.CustomID, "result": s.anResult(b, q)})
			}
		default:
			s.fail(w, 404, "notfound", "unknown path "+r.Method+" "+p)
		}
	default:
		s.fail(w, 404, "notfound", "unknown path "+r.Method+" "+p)
	}
}

func (s *Server) anResult(b *batch, q Request) map[string]any {
	f := s.fate(q)
	switch {
	case b.canceled:
		return map[string]any{"type": "canceled"}
	case f.Kind == Expire:
		return map[string]any{"type": "expired"}
	case f.Kind == Error:
		typ := "api_error"
		if f.Class == "invalid" {
			typ = "invalid_request_error"
		}
		return map[string]any{"type": "errored", "error": map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": "request failed"}}}
	}
	return map[string]any{"type": "succeeded", "message": map[string]any{
		"id": "msg_" + q.CustomID, "type": "message", "role": "assistant", "model": q.Model,
		"content": []any{map[string]any{"type": "text", "text": f.Text}}, "stop_reason": "end_turn", "stop_sequence": nil,
		"usage": map[string]int{"input_tokens": words(q.System) + words(q.Prompt), "output_tokens": words(f.Text)}}}
}

func (s *Server) anObject(b *batch) map[string]any {
	ok, errored, expired := s.counts(b)
	processing := 0
	if !s.ended(b) {
		processing = len(b.reqs)
	}
	canceled := 0
	if b.canceled {
		canceled, ok, errored, expired = len(b.reqs), 0, 0, 0
	}
	o := map[string]any{"id": b.id, "type": "message_batch", "processing_status": s.status(b),
		"request_counts": map[string]int{"processing": processing, "succeeded": ok, "errored": errored, "canceled": canceled, "expired": expired},
		"ended_at":       nil, "created_at": b.created.Format(time.RFC3339Nano), "expires_at": b.created.Add(24 * time.Hour).Format(time.RFC3339Nano),
		"archived_at": nil, "cancel_initiated_at": nil, "results_url": nil}
	if s.ended(b) {
		o["results_url"] = "https://api.anthropic.com/v1/messages/batches/" + b.id + "/results"
	}
	return o
}

// ---- Gemini ----

// geInlineLimit is the documented limit on a batchGenerateContent request
// with inline requests ("under 20MB").
const geInlineLimit = 20_000_000

type geParts struct {
	Parts []struct {
		Text string `json:"text"`
	} `json:"parts"`
}

// geRequest is a GenerateContentRequest, as much of it as the client sends.
type geRequest struct {
	SystemInstruction *geParts `json:"systemInstruction"`
	Contents          []struct {
		Role string `json:"role"`
		geParts
	} `json:"contents"`
	GenerationConfig *struct {
		MaxOutputTokens int `json:"maxOutputTokens"`
	} `json:"generationConfig"`
}

func (q geRequest) request(key, model string) Request {
	rq := Request{CustomID: key, Model: model}
	if si := q.SystemInstruction; si != nil && len(si.Parts) > 0 {
		rq.System = si.Parts[0].Text
	}
	for _, c := range q.Contents {
		if c.Role == "user" && len(c.Parts) > 0 {
			rq.Prompt = c.Parts[0].Text
		}
	}
	if gc := q.GenerationConfig; gc != nil {
		rq.MaxTokens = gc.MaxOutputTokens
	}
	return rq
}

// geUpload is a resumable upload that was started and not yet finalized.
type geUpload struct {
	displayName string
	length      int
	mime        string
}

func (s *Server) gemini(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && p == "/upload/v1beta/files":
		if r.URL.Query().Get("upload_id") == "" {
			s.geUploadStart(w, r)
		} else {
			s.geUploadFinalize(w, r)
		}
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/download/v1beta/files/") && strings.HasSuffix(p, ":download"):
		name := strings.TrimSuffix(strings.TrimPrefix(p, "/download/v1beta/"), ":download")
		c, ok := s.files[name]
		switch {
		case r.URL.Query().Get("alt") != "media":
			s.fail(w, 400, "invalid", "download needs alt=media")
		case !ok:
			s.fail(w, 404, "notfound", "File "+name+" not found.")
		default:
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(c)
		}
	case r.Method == http.MethodPost && strings.HasPrefix(p, "/v1beta/models/") && strings.HasSuffix(p, ":batchGenerateContent"):
		s.geCreate(w, r, strings.TrimSuffix(strings.TrimPrefix(p, "/v1beta/models/"), ":batchGenerateContent"))
	case r.Method == http.MethodGet && p == "/v1beta/batches":
		ops := []any{}
		for _, id := range s.newestFirst() {
			ops = append(ops, s.geOperation(s.batches[id]))
		}
		writeJSON(w, map[string]any{"operations": ops})
	case strings.HasPrefix(p, "/v1beta/batches/"):
		name, cancel := strings.CutSuffix(strings.TrimPrefix(p, "/v1beta/"), ":cancel")
		b, ok := s.batches[name]
		if !ok || (cancel && r.Method != http.MethodPost) || (!cancel && r.Method != http.MethodGet) {
			s.fail(w, 404, "notfound", "Requested entity was not found.")
			return
		}
		if cancel {
			s.cancels++
			if !s.ended(b) {
				b.canceled = true
			}
			writeJSON(w, map[string]any{})
			return
		}
		s.poll(b)
		writeJSON(w, s.geOperation(b))
	default:
		s.fail(w, 404, "notfound", "unknown path "+r.Method+" "+p)
	}
}

// geUploadStart starts a resumable upload: the protocol and command
// headers, the announced length and type, and a {file: {displayName}} body.
func (s *Server) geUploadStart(w http.ResponseWriter, r *http.Request) {
	h := r.Header
	n, err := strconv.Atoi(h.Get("X-Goog-Upload-Header-Content-Length"))
	switch {
	case h.Get("X-Goog-Upload-Protocol") != "resumable" || h.Get("X-Goog-Upload-Command") != "start":
		s.fail(w, 400, "invalid", "want X-Goog-Upload-Protocol: resumable and X-Goog-Upload-Command: start")
		return
	case err != nil || n <= 0:
		s.fail(w, 400, "invalid", "X-Goog-Upload-Header-Content-Length must be a positive byte count")
		return
	case h.Get("X-Goog-Upload-Header-Content-Type") == "":
		s.fail(w, 400, "invalid", "X-Goog-Upload-Header-Content-Type is required")
		return
	}
	body, _ := readBody(r)
	var meta struct {
		File struct {
			DisplayName  string `json:"displayName"`
			DisplayName2 string `json:"display_name"`
		} `json:"file"`
	}
	if err := decodeStrict(body, &meta); err != nil {
		s.fail(w, 400, "invalid", "upload start: "+err.Error())
		return
	}
	if s.geUploads == nil {
		s.geUploads = map[string]*geUpload{}
	}
	id := s.newID("upload-")
	s.geUploads[id] = &geUpload{displayName: meta.File.DisplayName + meta.File.DisplayName2, length: n, mime: h.Get("X-Goog-Upload-Header-Content-Type")}
	w.Header().Set("X-Goog-Upload-URL", "http://"+r.Host+"/upload/v1beta/files?upload_id="+id+"&upload_protocol=resumable")
	w.Header().Set("X-Goog-Upload-Status", "active")
	w.WriteHeader(http.StatusOK)
}

// geUploadFinalize takes the bytes of a started upload in one request
// (upload, finalize at offset 0), checks them against the announced length
// and as batch input lines {key, request}, and stores the file.
func (s *Server) geUploadFinalize(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("upload_id")
	u, ok := s.geUploads[id]
	if !ok {
		s.fail(w, 404, "notfound", "upload "+id+" not found")
		return
	}
	if r.Header.Get("X-Goog-Upload-Command") != "upload, finalize" || r.Header.Get("X-Goog-Upload-Offset") != "0" {
		s.fail(w, 400, "invalid", "want X-Goog-Upload-Command: upload, finalize at X-Goog-Upload-Offset: 0")
		return
	}
	content, _ := readBody(r)
	if len(content) != u.length {
		s.fail(w, 400, "invalid", fmt.Sprintf("upload of %d bytes, %d announced", len(content), u.length))
		return
	}
	if len(content) > 2_000_000_000 {
		s.fail(w, 400, "invalid", "file is larger than 2 GB")
		return
	}
	for i, line := range bytes.Split(bytes.TrimRight(content, "\n"), []byte("\n")) {
		var l struct {
			Key     string    `json:"key"`
			Request geRequest `json:"request"`
		}
		if err := decodeStrict(line, &l); err != nil {
			s.fail(w, 400, "invalid", fmt.Sprintf("line %d: %v", i+1, err))
			return
		}
	}
	delete(s.geUploads, id)
	name := "files/" + s.newID("in")
	s.files[name] = content
	w.Header().Set("X-Goog-Upload-Status", "final")
	now := s.now().UTC().Format(time.RFC3339Nano)
	writeJSON(w, map[string]any{"file": map[string]any{"name": name, "displayName": u.displayName, "mimeType": u.mime,
		"sizeBytes": fmt.Sprint(len(content)), "createTime": now, "updateTime": now, "state": "ACTIVE",
		"uri": "https://generativelanguage.googleapis.com/v1beta/" + name, "source": "UPLOADED"}})
}

func (s *Server) geCreate(w http.ResponseWriter, r *http.Request, model string) {
	body, _ := readBody(r)
	var req struct {
		Batch struct {
			DisplayName string `json:"displayName"`
			InputConfig struct {
				Requests *struct {
					Requests []struct {
						Request  geRequest         `json:"request"`
						Metadata map[string]string `json:"metadata"`
					} `json:"requests"`
				} `json:"requests"`
				FileName  string `json:"fileName"`
				FileName2 string `json:"file_name"`
			} `json:"inputConfig"`
		} `json:"batch"`
	}
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, 400, "invalid", "batchGenerateContent: "+err.Error())
		return
	}
	in := req.Batch.InputConfig
	file := in.FileName + in.FileName2
	switch {
	case req.Batch.DisplayName == "":
		s.fail(w, 400, "invalid", "batch.displayName is required")
		return
	case (in.Requests == nil) == (file == ""):
		s.fail(w, 400, "invalid", "batch.inputConfig needs exactly one of requests and fileName")
		return
	case in.Requests != nil && len(body) > geInlineLimit:
		s.fail(w, 400, "invalid", fmt.Sprintf("Request payload size exceeds the limit: %d bytes.", geInlineLimit))
		return
	}
	var reqs []Request
	if in.Requests != nil {
		for _, q := range in.Requests.Requests {
			reqs = append(reqs, q.Request.request(q.Metadata["key"], model))
		}
	} else {
		content, ok := s.files[file]
		if !ok || !strings.HasPrefix(file, "files/") {
			s.fail(w, 400, "invalid", "input file "+file+" not found")
			return
		}
		for _, line := range bytes.Split(bytes.TrimRight(content, "\n"), []byte("\n")) {
			var l struct {
				Key     string    `json:"key"`
				Request geRequest `json:"request"`
			}
			_ = json.Unmarshal(line, &l) // checked at upload
			reqs = append(reqs, l.Request.request(l.Key, model))
		}
	}
	if s.FailSubmit > 0 {
		s.FailSubmit--
		s.fail(w, 500, "server", "Internal error encountered.")
		return
	}
	b, why := s.accept(req.Batch.DisplayName, model, reqs)
	if b == nil {
		s.fail(w, 400, "invalid", why)
		return
	}
	b.fromFile = file != ""
	writeJSON(w, s.geOperation(b))
}

// geResult is one request's result: a GenerateContentResponse or a
// google.rpc.Status.
func (s *Server) geResult(q Request) map[string]any {
	f := s.fate(q)
	if f.Kind == Answer {
		return map[string]any{"response": map[string]any{
			"candidates": []any{map[string]any{"content": map[string]any{"role": "model", "parts": []any{map[string]string{"text": f.Text}}},
				"finishReason": "STOP"}},
			"usageMetadata": map[string]int{"promptTokenCount": words(q.System) + words(q.Prompt), "candidatesTokenCount": words(f.Text)},
			"responseId":    "resp_" + q.CustomID}}
	}
	code, msg := 13, "Internal error"
	if f.Kind == Expire {
		code, msg = 4, "Deadline expired before operation could complete."
	} else if f.Class == "invalid" {
		code, msg = 3, "Invalid argument"
	}
	return map[string]any{"error": map[string]any{"code": code, "message": msg}}
}

func (s *Server) geOperation(b *batch) map[string]any {
	ok, errored, expired := s.counts(b)
	pending := 0
	if !s.ended(b) {
		pending = len(b.reqs)
	}
	meta := map[string]any{"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch",
		"model": "models/" + b.model, "name": b.id, "displayName": b.label, "state": s.status(b),
		"createTime": b.created.Format(time.RFC3339Nano), "updateTime": s.now().UTC().Format(time.RFC3339Nano),
		"batchStats": map[string]string{"requestCount": fmt.Sprint(len(b.reqs)), "successfulRequestCount": fmt.Sprint(ok),
			"failedRequestCount": fmt.Sprint(errored + expired), "pendingRequestCount": fmt.Sprint(pending)}}
	op := map[string]any{"name": b.id, "metadata": meta, "done": s.ended(b)}
	if s.ended(b) && !b.canceled {
		out := map[string]any{"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatchOutput"}
		if b.fromFile {
			if b.outFile == "" {
				var buf bytes.Buffer
				enc := json.NewEncoder(&buf)
				for _, q := range b.reqs {
					line := s.geResult(q)
					line["key"] = q.CustomID
					_ = enc.Encode(line)
				}
				b.outFile = "files/batch-" + strings.TrimPrefix(b.id, "batches/") + "-responses"
				s.files[b.outFile] = buf.Bytes()
			}
			out["responsesFile"] = b.outFile
		} else {
			var rs []any
			for _, q := range b.reqs {
				res := s.geResult(q)
				res["metadata"] = map[string]string{"key": q.CustomID}
				rs = append(rs, res)
			}
			out["inlinedResponses"] = map[string]any{"inlinedResponses": rs}
		}
		op["response"] = out
		meta["output"] = out
	}
	return op
}
