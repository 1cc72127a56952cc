package input

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// nextJSON returns the next JSONL or OpenAI batch record.
func (r *Reader) nextJSON() (prompt.Job, error) {
	l, err := r.nextLine()
	if err != nil {
		return prompt.Job{}, err
	}
	if r.format == FormatOpenAIBatch {
		return r.parseBatch(l)
	}
	return r.parseJSONL(l)
}

// jsonlRecord is one JSONL line. Pointers tell absent (or null) from empty.
type jsonlRecord struct {
	ID        json.RawMessage `json:"id"`
	Prompt    *string         `json:"prompt"`
	System    *string         `json:"system"`
	MaxTokens *int64          `json:"max_tokens"`
	Metadata  json.RawMessage `json:"metadata"`
}

func (r *Reader) parseJSONL(l rawLine) (prompt.Job, error) {
	rec, simple := simpleJSONL(l.b)
	if !simple {
		if err := json.Unmarshal(l.b, &rec); err != nil {
			return prompt.Job{}, r.jsonError(l, err)
		}
		if l.b[firstNonSpace(l.b)] == 'n' {
			return prompt.Job{}, r.lineError(l.n, "want a JSON object, got null")
		}
	}
	if rec.Prompt == nil {
		return prompt.Job{}, r.lineError(l.n, `missing "prompt"`)
	}
	job := prompt.Job{Prompt: *rec.Prompt}
	if reason := r.checkText(`"prompt"`, job.Prompt, true); reason != "" {
		return prompt.Job{}, r.lineError(l.n, "%s", reason)
	}
	if rec.System != nil {
		job.System = *rec.System
		if reason := r.checkText(`"system"`, job.System, false); reason != "" {
			return prompt.Job{}, r.lineError(l.n, "%s", reason)
		}
	}
	var reason string
	if job.MaxTokens, reason = checkMaxTokens(`"max_tokens"`, rec.MaxTokens); reason != "" {
		return prompt.Job{}, r.lineError(l.n, "%s", reason)
	}
	if job.Metadata, reason = checkMetadata(`"metadata"`, rec.Metadata); reason != "" {
		return prompt.Job{}, r.lineError(l.n, "%s", reason)
	}
	if !simple { // a simple line has no other fields
		if job.Metadata, reason = withExtraFields(l.b, job.Metadata); reason != "" {
			return prompt.Job{}, r.lineError(l.n, "%s", reason)
		}
	}
	if job.ID, reason = idFrom(`"id"`, rec.ID, l.n); reason != "" {
		return prompt.Job{}, r.lineError(l.n, "%s", reason)
	}
	return r.accept(l.n, job)
}

// simpleJSONL reads the common JSONL line without encoding/json's
// reflection (json.Unmarshal was most of enqueue's own CPU per line): an
// object of the keys of jsonlRecord, spelled so and each at most once, with
// string "prompt" and "system", a string or integer "id", an integer
// "max_tokens" and an object "metadata". It returns ok false, and no
// record, for any other line (other keys or spellings, null values, an
// empty object, anything not valid JSON), which json.Unmarshal then reads;
// for a line it takes, the record is the one json.Unmarshal gives
// (FuzzSimpleJSONL). Metadata is copied; ID may share b's memory.
func simpleJSONL(b []byte) (rec jsonlRecord, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return jsonlRecord{}, false
	}
	i = skipSpace(b, i+1)
	var seen uint32 // bit k: jsonlKeys[k] was read
	for {
		ks, ke, esc := scanString(b, i)
		if ke < 0 || esc {
			return jsonlRecord{}, false
		}
		key := -1
		for k, name := range jsonlKeys {
			if string(b[ks+1:ke-1]) == name {
				key = k
			}
		}
		if key < 0 || seen&(1<<key) != 0 {
			return jsonlRecord{}, false
		}
		seen |= 1 << key
		i = skipSpace(b, ke)
		if i >= len(b) || b[i] != ':' {
			return jsonlRecord{}, false
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return jsonlRecord{}, false
		}
		var end int
		switch jsonlKeys[key] {
		case "prompt", "system":
			var s string
			if s, end, ok = stringValue(b, i); !ok {
				return jsonlRecord{}, false
			}
			if key == 1 {
				rec.Prompt = &s
			} else {
				rec.System = &s
			}
		case "id":
			if b[i] == '"' {
				if _, end, ok = stringValue(b, i); !ok {
					return jsonlRecord{}, false
				}
			} else if end = integerEnd(b, i); end < 0 {
				return jsonlRecord{}, false
			}
			rec.ID = b[i:end]
		case "max_tokens":
			if end = integerEnd(b, i); end < 0 {
				return jsonlRecord{}, false
			}
			v, err := strconv.ParseInt(string(b[i:end]), 10, 64)
			if err != nil {
				return jsonlRecord{}, false
			}
			rec.MaxTokens = &v
		case "metadata":
			if b[i] != '{' {
				return jsonlRecord{}, false
			}
			end = skipValue(b, i)
			if end > len(b) || !json.Valid(b[i:end]) {
				return jsonlRecord{}, false
			}
			rec.Metadata = bytes.Clone(b[i:end])
		}
		i = skipSpace(b, end)
		if i >= len(b) {
			return jsonlRecord{}, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
			continue
		case '}':
			if skipSpace(b, i+1) != len(b) {
				return jsonlRecord{}, false
			}
			return rec, true
		}
		return jsonlRecord{}, false
	}
}

// scanString finds the JSON string that starts at b[i]: its start and the
// index after its closing quote (-1 if b[i] is not a quote or the string
// is not closed), and whether it holds a backslash escape.
func scanString(b []byte, i int) (start, end int, escaped bool) {
	if i >= len(b) || b[i] != '"' {
		return i, -1, false
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return i, j + 1, escaped
		}
	}
	return i, -1, escaped
}

// stringValue decodes the JSON string at b[i] and returns the index after
// it; ok is false if it is not a valid JSON string. One without escapes,
// control characters or invalid UTF-8 (the common one) is taken as it is;
// any other goes through json.Unmarshal.
func stringValue(b []byte, i int) (s string, end int, ok bool) {
	start, end, esc := scanString(b, i)
	if end < 0 {
		return "", 0, false
	}
	raw := b[start+1 : end-1]
	plain := !esc && utf8.Valid(raw)
	for _, c := range raw {
		if c < 0x20 {
			plain = false
			break
		}
	}
	if plain {
		return string(raw), end, true
	}
	if err := json.Unmarshal(b[start:end], &s); err != nil {
		return "", 0, false
	}
	return s, end, true
}

// integerEnd returns the index after the JSON integer (-?(0|[1-9][0-9]*))
// at b[i], or -1 if there is none or it goes on as a fraction or exponent.
func integerEnd(b []byte, i int) int {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
	default:
		return -1
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E' || (b[j] >= '0' && b[j] <= '9')) {
		return -1
	}
	return j
}

// jsonlKeys are the top-level keys a JSONL line is read for (matched without
// regard to case, as encoding/json matches them).
var jsonlKeys = []string{"id", "prompt", "system", "max_tokens", "metadata"}

// withExtraFields adds the top-level fields of line (a valid JSON object)
// other than jsonlKeys to meta (an object or nil), as CSV keeps its extra
// columns: {"id": 1, "prompt": "p", "lang": "fr"} has metadata
// {"lang": "fr"}. A field that is also a key of "metadata" is an error
// rather than one of the two values silently lost. Without extra fields
// meta is returned as it is.
func withExtraFields(line []byte, meta json.RawMessage) (json.RawMessage, string) {
	var extra [][2][]byte // raw key, raw value
	eachField(line, func(rawKey, value []byte) {
		key := rawKey[1 : len(rawKey)-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			var k string
			if json.Unmarshal(rawKey, &k) != nil {
				return // cannot happen: line is valid JSON
			}
			key = []byte(k)
		}
		for _, k := range jsonlKeys {
			if bytes.EqualFold(key, []byte(k)) {
				return
			}
		}
		extra = append(extra, [2][]byte{rawKey, value})
	})
	if len(extra) == 0 {
		return meta, ""
	}
	out := []byte{'{'}
	if len(meta) > 0 {
		var own map[string]json.RawMessage
		if err := json.Unmarshal(meta, &own); err != nil {
			return nil, fmt.Sprintf(`"metadata": %v`, err) // cannot happen: checked to be an object
		}
		for _, f := range extra {
			var key string
			_ = json.Unmarshal(f[0], &key)
			if _, dup := own[key]; dup {
				return nil, fmt.Sprintf(`%s is both a top-level field and a key of "metadata"; rename one`, f[0])
			}
		}
		inner := bytes.TrimSpace(meta)
		inner = bytes.TrimSpace(inner[1 : len(inner)-1])
		out = append(out, inner...)
	}
	for _, f := range extra {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(append(append(out, f[0]...), ':'), f[1]...)
	}
	out = append(out, '}')
	if hasNULEscape(out) {
		return nil, `a top-level field contains \u0000, which cannot be stored`
	}
	return out, ""
}

// eachField calls fn with the raw key (a JSON string, quotes included) and
// the raw value of every top-level field of b, a valid JSON object, in
// order. It does not allocate.
func eachField(b []byte, fn func(rawKey, value []byte)) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return
	}
	i++
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != '"' {
			return // '}' or malformed
		}
		ks := i
		i = skipString(b, i)
		key := b[ks:i]
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return
		}
		i = skipSpace(b, i+1)
		vs := i
		i = skipValue(b, i)
		fn(key, b[vs:i])
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ',' {
			return
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipString returns the index after the JSON string that starts at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index after the JSON value that starts at b[i].
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			i = skipString(b, i)
			if depth == 0 {
				return i
			}
			continue
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 {
				return i // end of the enclosing object
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n'):
			return i // end of a number, true, false or null
		}
		i++
	}
	return i
}

// batchRecord is one OpenAI Batch API request line.
type batchRecord struct {
	CustomID json.RawMessage `json:"custom_id"`
	Body     *struct {
		Messages            *[]batchMessage `json:"messages"`
		MaxTokens           *int64          `json:"max_tokens"`
		MaxCompletionTokens *int64          `json:"max_completion_tokens"`
		Model               *string         `json:"model"`
		Metadata            json.RawMessage `json:"metadata"`
	} `json:"body"`
}

type batchMessage struct {
	Role    *string         `json:"role"`
	Content json.RawMessage `json:"content"`
}

type contentPart struct {
	Type string  `json:"type"`
	Text *string `json:"text"`
}

func (r *Reader) parseBatch(l rawLine) (prompt.Job, error) {
	var rec batchRecord
	if err := json.Unmarshal(l.b, &rec); err != nil {
		return prompt.Job{}, r.jsonError(l, err)
	}
	if l.b[firstNonSpace(l.b)] == 'n' {
		return prompt.Job{}, r.lineError(l.n, "want a JSON object, got null")
	}
	if len(rec.CustomID) == 0 || string(rec.CustomID) == "null" {
		return prompt.Job{}, r.lineError(l.n, `missing "custom_id"`)
	}
	if rec.Body == nil {
		return prompt.Job{}, r.lineError(l.n, `missing "body"`)
	}
	if rec.Body.Messages == nil {
		return prompt.Job{}, r.lineError(l.n, `missing "body.messages"`)
	}
	var user, system []string
	for i, m := range *rec.Body.Messages {
		if m.Role == nil {
			return prompt.Job{}, r.lineError(l.n, `"body.messages[%d]" has no "role"`, i)
		}
		var dst *[]string
		switch *m.Role {
		case "user":
			dst = &user
		case "system", "developer":
			dst = &system
		default:
			continue // assistant, tool, function: not part of a single prompt
		}
		text, reason := contentText(fmt.Sprintf(`"body.messages[%d].content"`, i), m.Content)
		if reason != "" {
			return prompt.Job{}, r.lineError(l.n, "%s", reason)
		}
		*dst = append(*dst, text)
	}
	if len(user) == 0 {
		return prompt.Job{}, r.lineError(l.n, `no "user" message in "body.messages"`)
	}
	job := prompt.Job{Prompt: strings.Join(user, "\n\n"), System: strings.Join(system, "\n\n")}
	if reason := r.checkText("the user message text", job.Prompt, true); reason != "" {
		return prompt.Job{}, r.lineError(l.n, "%s", reason)
	}
	if reason := r.checkText("the system message text", job.System, false); reason != "" {
		return prompt.Job{}, r.lineError(l.n, "%s", reason)
	}
	var reason string
	limit, key := rec.Body.MaxCompletionTokens, `"body.max_completion_tokens"`
	if limit == nil {
		limit, key = rec.Body.MaxTokens, `"body.max_tokens"`
	}
	if job.MaxTokens, reason = checkMaxTokens(key, limit); reason != "" {
		return prompt.Job{}, r.lineError(l.n, "%s", reason)
	}
	if job.Metadata, reason = checkMetadata(`"body.metadata"`, rec.Body.Metadata); reason != "" {
		return prompt.Job{}, r.lineError(l.n, "%s", reason)
	}
	if rec.Body.Model != nil {
		job.Metadata = withModel(*rec.Body.Model, job.Metadata)
	}
	if job.ID, reason = idFrom(`"custom_id"`, rec.CustomID, l.n); reason != "" {
		return prompt.Job{}, r.lineError(l.n, "%s", reason)
	}
	return r.accept(l.n, job)
}

// contentText returns the text of a message content: a string, null, or an
// array of text parts, joined by a blank line.
func contentText(key string, raw json.RawMessage) (string, string) {
	switch kindOf(raw) {
	case "null", "":
		return "", ""
	case "string":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Sprintf("%s: %v", key, err)
		}
		return s, ""
	case "array":
		var parts []contentPart
		if err := json.Unmarshal(raw, &parts); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) && te.Field != "" {
				return "", fmt.Sprintf("%s: %q of a part must be a string, got %s", key, te.Field, te.Value)
			}
			return "", fmt.Sprintf(`%s must be a string or an array of {"type": "text", "text": ...} parts`, key)
		}
		texts := make([]string, 0, len(parts))
		for j, p := range parts {
			if p.Type != "text" {
				return "", fmt.Sprintf("%s[%d] has type %q; only text parts are supported", key, j, p.Type)
			}
			if p.Text == nil {
				return "", fmt.Sprintf(`%s[%d] has no "text"`, key, j)
			}
			texts = append(texts, *p.Text)
		}
		return strings.Join(texts, "\n\n"), ""
	default:
		return "", fmt.Sprintf("%s must be a string or an array of text parts, got %s", key, kindOf(raw))
	}
}

// jsonError explains a json.Unmarshal error for line l.
func (r *Reader) jsonError(l rawLine, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		// A decoder tells "the input stopped early" apart by its type.
		if derr := json.NewDecoder(bytes.NewReader(l.b)).Decode(new(json.RawMessage)); errors.Is(derr, io.ErrUnexpectedEOF) {
			if l.unterminated {
				return r.lineError(l.n, "truncated last line: the JSON stops at column %d and there is no newline at the end of the file", len(l.b))
			}
			return r.lineError(l.n, "invalid JSON: the line ends at column %d inside an unfinished value", len(l.b))
		}
		return r.lineError(l.n, "invalid JSON at column %d: %v", se.Offset, se)
	case errors.As(err, &te):
		if te.Field == "" {
			return r.lineError(l.n, "want a JSON object, got %s", te.Value)
		}
		want := map[string]string{
			"prompt": "a string", "system": "a string",
			"max_tokens": "a non-negative integer", "body.max_tokens": "a non-negative integer",
			"body.max_completion_tokens": "a non-negative integer",
			"body.messages.role":         "a string", "body.model": "a string",
			"body": "an object", "body.messages": "an array",
		}[te.Field]
		if want == "" {
			want = "a " + te.Type.String()
		}
		return r.lineError(l.n, "%q must be %s, got %s", te.Field, want, te.Value)
	}
	return r.lineError(l.n, "invalid JSON: %v", err)
}

// idFrom returns the id: a JSON string, a JSON number (its literal text),
// or the line number when raw is absent or null.
func idFrom(key string, raw json.RawMessage, line int) (string, string) {
	var id string
	switch k := kindOf(raw); k {
	case "", "null":
		return strconv.Itoa(line), ""
	case "string":
		if s, end, ok := stringValue(raw, 0); ok && end == len(raw) {
			id = s
		} else if err := json.Unmarshal(raw, &id); err != nil {
			return "", fmt.Sprintf("%s: %v", key, err)
		}
	case "number":
		id = string(bytes.TrimSpace(raw))
	default:
		return "", fmt.Sprintf("%s must be a string or number, got %s", key, k)
	}
	if reason := checkID(id); reason != "" {
		return "", strings.Replace(reason, `"id"`, key, 1)
	}
	return id, ""
}

// checkMaxTokens validates an optional token limit.
func checkMaxTokens(key string, v *int64) (int, string) {
	switch {
	case v == nil:
		return 0, ""
	case *v < 0:
		return 0, fmt.Sprintf("%s must be a non-negative integer, got %d", key, *v)
	case *v > maxMaxTokens:
		return 0, fmt.Sprintf("%s is %d, over the limit of %d", key, *v, maxMaxTokens)
	}
	return int(*v), ""
}

// checkMetadata validates optional metadata: a JSON object without the
// \u0000 escape (Postgres jsonb cannot store it). null means none.
func checkMetadata(key string, raw json.RawMessage) (json.RawMessage, string) {
	switch k := kindOf(raw); k {
	case "", "null":
		return nil, ""
	case "object":
	default:
		return nil, fmt.Sprintf("%s must be an object, got %s", key, k)
	}
	if hasNULEscape(raw) {
		return nil, fmt.Sprintf(`%s contains \u0000, which cannot be stored`, key)
	}
	return raw, ""
}

// hasNULEscape reports whether JSON text b has a \u0000 escape (one not
// itself preceded by an escaping backslash).
func hasNULEscape(b []byte) bool {
	for {
		i := bytes.Index(b, []byte(`\u0000`))
		if i < 0 {
			return false
		}
		n := 0
		for j := i - 1; j >= 0 && b[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return true
		}
		b = b[i+1:]
	}
}

// withModel adds {"model": model} to the front of metadata (an object or nil).
func withModel(model string, meta json.RawMessage) json.RawMessage {
	out := appendJSONString([]byte(`{"model":`), model)
	inner := bytes.TrimSpace(meta)
	if len(inner) > 1 {
		rest := bytes.TrimSpace(inner[1:])
		if len(rest) > 0 && rest[0] != '}' {
			out = append(out, ',')
		}
		return append(out, rest...)
	}
	return append(out, '}')
}

// kindOf names the JSON type of raw by its first byte; "" when raw is empty.
func kindOf(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func firstNonSpace(b []byte) int {
	for i, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return i
		}
	}
	return 0
}

// appendJSONString appends s as a JSON string. s is valid UTF-8.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
