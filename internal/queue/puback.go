package queue

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// pubAckJSON is the stream's answer to a publish, as JetStream sends it:
// {"stream":"PROMPTS","seq":7} with "duplicate":true when the Nats-Msg-Id
// was in the duplicate window, or {"error":{...}} when the message was
// refused.
type pubAckJSON struct {
	Error     *jetstream.APIError `json:"error"`
	Stream    string              `json:"stream"`
	Seq       uint64              `json:"seq"`
	Duplicate bool                `json:"duplicate"`
}

// parsePubAck reads the stream's answer to a publish: whether it was a
// duplicate, or the refusal (*jetstream.APIError) or jetstream.ErrInvalidJSAck
// when it is no ack. The acks JetStream writes (compact JSON, a stream name
// and no "error") are read without decoding; anything else goes through
// encoding/json, so the answer is the same as a full decode's
// (FuzzParsePubAck holds them to it).
func parsePubAck(data []byte) (duplicate bool, err error) {
	if ok, dup := fastPubAck(data); ok {
		return dup, nil
	}
	return decodePubAck(data)
}

// decodePubAck is parsePubAck by encoding/json alone, as nats.go reads an
// ack.
func decodePubAck(data []byte) (duplicate bool, err error) {
	var a pubAckJSON
	if err := json.Unmarshal(data, &a); err != nil {
		return false, jetstream.ErrInvalidJSAck
	}
	if a.Error != nil {
		return false, a.Error
	}
	if a.Stream == "" {
		return false, jetstream.ErrInvalidJSAck
	}
	return a.Duplicate, nil
}

// fastPubAck recognizes the usual ack: one flat JSON object without
// whitespace whose values are strings without escapes, unsigned integers,
// true or false, with a non-empty string "stream", a number "seq" if any,
// a boolean "duplicate" if any, and no "error". ok is false for anything
// else, which parsePubAck decodes in full.
func fastPubAck(data []byte) (ok, duplicate bool) {
	if len(data) < 2 || data[0] != '{' || data[len(data)-1] != '}' {
		return false, false
	}
	rest := data[1 : len(data)-1]
	stream := false
	for len(rest) > 0 {
		key, after, ok := plainString(rest)
		if !ok || len(after) == 0 || after[0] != ':' {
			return false, false
		}
		after = after[1:]
		var value []byte
		quoted := len(after) > 0 && after[0] == '"'
		if quoted {
			if value, after, ok = plainString(after); !ok {
				return false, false
			}
		} else {
			i := bytes.IndexByte(after, ',')
			if i < 0 {
				i = len(after)
			}
			value, after = after[:i], after[i:]
			if !isPlainLiteral(value) {
				return false, false
			}
		}
		boolean := string(value) == "true" || string(value) == "false"
		switch k := string(key); {
		case k == "stream" && quoted:
			stream = len(value) > 0
		case k == "seq" && !quoted && !boolean && len(value) <= 19: // fits a uint64
		case k == "duplicate" && !quoted && boolean:
			duplicate = string(value) == "true"
		case strings.EqualFold(k, "stream"), strings.EqualFold(k, "seq"),
			strings.EqualFold(k, "duplicate"), strings.EqualFold(k, "error"):
			// "error", a known key with a value of another type, or
			// one in other letter case (encoding/json matches keys
			// without regard to case): the full decode says.
			return false, false
		}
		if len(after) == 0 {
			break
		}
		if after[0] != ',' || len(after) == 1 {
			return false, false // not a comma, or a trailing one
		}
		rest = after[1:]
	}
	return stream, duplicate
}

// plainString reads a JSON string without escapes at the start of b: its
// contents and what follows it.
func plainString(b []byte) (s, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, nil, false
	}
	end := bytes.IndexByte(b[1:], '"')
	if end < 0 {
		return nil, nil, false
	}
	s = b[1 : 1+end]
	for _, c := range s {
		if c == '\\' || c < ' ' || c >= 0x80 {
			return nil, nil, false
		}
	}
	return s, b[2+end:], true
}

// isPlainLiteral is true for true, false and unsigned integers.
func isPlainLiteral(v []byte) bool {
	switch string(v) {
	case "true", "false":
		return true
	case "":
		return false
	}
	if len(v) > 1 && v[0] == '0' {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
