package queue

import (
	"bytes"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// scanJob reads a job message of the shape EncodeJob writes without
// encoding/json's reflection (json.Unmarshal was ~6% of the worker's CPU):
// a JSON object of prompt.Job's keys, spelled as their tags and each at
// most once, with string batch, id, prompt, system, priority and
// enqueued_at, integer max_tokens and seq, an object metadata, and a
// resume object of tier, position and attempts. Whitespace between tokens
// is allowed, and so are the escapes json.Marshal writes (\n, \", \u003c,
// ...). It returns ok false, and no job, for anything else (other keys or
// spellings, null values, numbers that are not plain integers, a
// surrogate \u escape, an escaped key or enqueued_at, metadata nested
// deeper than scanMaxDepth, anything not valid JSON), which json.Unmarshal
// then reads. For an input it takes, the job is the one json.Unmarshal
// gives (FuzzScanJob). data must be valid UTF-8 (decodeJob checks it
// first).
//
// Plain strings share one copy of data; metadata is a copy of its own.
func scanJob(data []byte) (prompt.Job, bool) {
	sc := jobScanner{b: data}
	j, ok := sc.job()
	if !ok {
		return prompt.Job{}, false
	}
	return j, true
}

// scanMaxDepth is the deepest metadata nesting scanJob reads; deeper is
// left to json.Unmarshal (whose own limit is 10,000).
const scanMaxDepth = 64

type jobScanner struct {
	b []byte
	s string // string(b), made at the first plain string value
}

// Bits of the keys seen.
const (
	keyBatch = 1 << iota
	keyID
	keyPrompt
	keySystem
	keyMaxTokens
	keyMetadata
	keyEnqueuedAt
	keySeq
	keyResume
	keyPriority
)

func (sc *jobScanner) job() (j prompt.Job, ok bool) {
	b := sc.b
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return j, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return j, skipSpace(b, i+1) == len(b)
	}
	var seen uint32
	for {
		key, next, ok := sc.key(i)
		if !ok {
			return j, false
		}
		i = next
		var bit uint32
		switch string(key) {
		case "batch":
			bit = keyBatch
			j.BatchID, i, ok = sc.str(i)
		case "id":
			bit = keyID
			j.ID, i, ok = sc.str(i)
		case "prompt":
			bit = keyPrompt
			j.Prompt, i, ok = sc.str(i)
		case "system":
			bit = keySystem
			j.System, i, ok = sc.str(i)
		case "priority":
			bit = keyPriority
			j.Priority, i, ok = sc.str(i)
		case "max_tokens":
			bit = keyMaxTokens
			var v int64
			v, i, ok = sc.integer(i)
			j.MaxTokens = int(v)
		case "seq":
			bit = keySeq
			j.Seq, i, ok = sc.integer(i)
		case "metadata":
			bit = keyMetadata
			if b[i] != '{' {
				return j, false
			}
			end := valueEnd(b, i, 0)
			if end < 0 {
				return j, false
			}
			j.Metadata = bytes.Clone(b[i:end])
			i = end
		case "enqueued_at":
			bit = keyEnqueuedAt
			end, esc := stringEnd(b, i)
			if end < 0 || esc || j.EnqueuedAt.UnmarshalJSON(b[i:end]) != nil {
				return j, false
			}
			i = end
		case "resume":
			bit = keyResume
			j.Resume, i, ok = sc.resume(i)
		default:
			return j, false
		}
		if !ok || seen&bit != 0 {
			return j, false
		}
		seen |= bit
		if i, ok = sc.more(i); !ok {
			return j, false
		}
		if i < 0 {
			return j, skipSpace(b, -i) == len(b)
		}
	}
}

// key reads `"key" :` at b[i] (an unescaped key) and returns the key and
// the index of the value that follows (never past the end).
func (sc *jobScanner) key(i int) (key []byte, next int, ok bool) {
	b := sc.b
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	e := i + 1
	for e < len(b) && b[e] != '"' && b[e] != '\\' && b[e] >= 0x20 {
		e++
	}
	if e >= len(b) || b[e] != '"' {
		return nil, 0, false
	}
	key = b[i+1 : e]
	next = skipSpace(b, e+1)
	if next >= len(b) || b[next] != ':' {
		return nil, 0, false
	}
	next = skipSpace(b, next+1)
	if next >= len(b) {
		return nil, 0, false
	}
	return key, next, true
}

// more reads what follows a member's value: `,` (it returns the index of
// the next key) or `}` (it returns minus the index after it).
func (sc *jobScanner) more(i int) (int, bool) {
	b := sc.b
	i = skipSpace(b, i)
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case ',':
		return skipSpace(b, i+1), true
	case '}':
		return -(i + 1), true
	}
	return 0, false
}

// resume reads the resume object at b[i].
func (sc *jobScanner) resume(i int) (*prompt.Resume, int, bool) {
	b := sc.b
	if b[i] != '{' {
		return nil, 0, false
	}
	r := &prompt.Resume{}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return r, i + 1, true
	}
	var seen uint32
	for {
		key, next, ok := sc.key(i)
		if !ok {
			return nil, 0, false
		}
		i = next
		var bit uint32
		var v int64
		switch string(key) {
		case "tier":
			bit = 1
			var s string
			s, i, ok = sc.str(i)
			r.Tier = prompt.Tier(s)
		case "position":
			bit = 2
			v, i, ok = sc.integer(i)
			r.Position = int(v)
		case "attempts":
			bit = 4
			v, i, ok = sc.integer(i)
			r.Attempts = int(v)
		default:
			return nil, 0, false
		}
		if !ok || seen&bit != 0 {
			return nil, 0, false
		}
		seen |= bit
		if i, ok = sc.more(i); !ok {
			return nil, 0, false
		}
		if i < 0 {
			return r, -i, true
		}
	}
}

// str decodes the JSON string at b[i] and returns the index after it.
func (sc *jobScanner) str(i int) (string, int, bool) {
	b := sc.b
	if b[i] != '"' {
		return "", 0, false
	}
	e := i + 1
	for e < len(b) && b[e] != '"' && b[e] != '\\' && b[e] >= 0x20 {
		e++
	}
	if e >= len(b) {
		return "", 0, false
	}
	switch b[e] {
	case '"':
		if sc.s == "" {
			sc.s = string(b)
		}
		return sc.s[i+1 : e], e + 1, true
	case '\\':
		return unescape(b, i)
	}
	return "", 0, false // a control character
}

// unescape decodes the JSON string at b[i], which has escapes. The result
// is never longer than the string's body: each escape is at least as long
// as what it stands for.
func unescape(b []byte, i int) (string, int, bool) {
	end, _ := stringEnd(b, i)
	if end < 0 {
		return "", 0, false
	}
	var sb strings.Builder
	sb.Grow(end - i - 2)
	j := i + 1
	for {
		k := j
		for k < end-1 && b[k] != '\\' {
			k++
		}
		sb.Write(b[j:k])
		if k == end-1 {
			return sb.String(), end, true
		}
		// stringEnd checked the escape's form.
		switch c := b[k+1]; c {
		case 'b':
			sb.WriteByte('\b')
		case 'f':
			sb.WriteByte('\f')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 't':
			sb.WriteByte('\t')
		case 'u':
			r := rune(hex4(b[k+2 : k+6]))
			if utf16.IsSurrogate(r) {
				return "", 0, false // pairs and lone halves: json.Unmarshal's rules
			}
			var buf [utf8.UTFMax]byte
			sb.Write(utf8.AppendRune(buf[:0], r))
			j = k + 6
			continue
		default: // '"', '\\', '/'
			sb.WriteByte(c)
		}
		j = k + 2
	}
}

// hex4 is the value of four hexadecimal digits (checked by stringEnd).
func hex4(h []byte) int {
	v := 0
	for _, c := range h {
		v <<= 4
		switch {
		case c >= '0' && c <= '9':
			v |= int(c - '0')
		case c >= 'a' && c <= 'f':
			v |= int(c - 'a' + 10)
		default:
			v |= int(c - 'A' + 10)
		}
	}
	return v
}

// integer reads the JSON integer at b[i] (-?(0|[1-9][0-9]*), at most 18
// digits, so that it cannot overflow): not one that goes on as a fraction
// or exponent.
func (sc *jobScanner) integer(i int) (int64, int, bool) {
	b := sc.b
	neg := b[i] == '-'
	j := i
	if neg {
		j++
	}
	start := j
	var v int64
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		v = v*10 + int64(b[j]-'0')
		j++
	}
	n := j - start
	switch {
	case n == 0 || n > 18 || (n > 1 && b[start] == '0'):
		return 0, 0, false
	case j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E'):
		return 0, 0, false
	}
	if neg {
		v = -v
	}
	return v, j, true
}

// stringEnd checks the JSON string at b[i] and returns the index after its
// closing quote (-1 if it is not a valid JSON string) and whether it has
// escapes.
func stringEnd(b []byte, i int) (end int, escaped bool) {
	if i >= len(b) || b[i] != '"' {
		return -1, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, escaped
		case c == '\\':
			escaped = true
			if j+1 >= len(b) {
				return -1, false
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j++
			case 'u':
				if j+6 > len(b) {
					return -1, false
				}
				for _, h := range b[j+2 : j+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return -1, false
					}
				}
				j += 5
			default:
				return -1, false
			}
		case c < 0x20:
			return -1, false
		}
	}
	return -1, false
}

// valueEnd checks the JSON value at b[i] and returns the index after it,
// or -1 if it is not valid JSON (or nests deeper than scanMaxDepth).
func valueEnd(b []byte, i, depth int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '{', '[':
		if depth >= scanMaxDepth {
			return -1
		}
		return containerEnd(b, i, depth)
	case '"':
		end, _ := stringEnd(b, i)
		return end
	case 't':
		return literalEnd(b, i, "true")
	case 'f':
		return literalEnd(b, i, "false")
	case 'n':
		return literalEnd(b, i, "null")
	}
	return numberEnd(b, i)
}

// containerEnd is valueEnd of the object or array at b[i].
func containerEnd(b []byte, i, depth int) int {
	obj := b[i] == '{'
	closing := byte(']')
	if obj {
		closing = '}'
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == closing {
		return i + 1
	}
	for {
		if obj {
			end, _ := stringEnd(b, i)
			if end < 0 {
				return -1
			}
			i = skipSpace(b, end)
			if i >= len(b) || b[i] != ':' {
				return -1
			}
			i = skipSpace(b, i+1)
		}
		if i = valueEnd(b, i, depth+1); i < 0 {
			return -1
		}
		i = skipSpace(b, i)
		switch {
		case i >= len(b):
			return -1
		case b[i] == ',':
			i = skipSpace(b, i+1)
		case b[i] == closing:
			return i + 1
		default:
			return -1
		}
	}
}

func literalEnd(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// numberEnd is valueEnd of the JSON number at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func numberEnd(b []byte, i int) int {
	digits := func(j int) int {
		k := j
		for k < len(b) && b[k] >= '0' && b[k] <= '9' {
			k++
		}
		if k == j {
			return -1
		}
		return k
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	default:
		if i = digits(i); i < 0 {
			return -1
		}
	}
	if i < len(b) && b[i] == '.' {
		if i = digits(i + 1); i < 0 {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i = digits(i); i < 0 {
			return -1
		}
	}
	return i
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}
