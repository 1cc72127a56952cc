package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// The Chat Completions wire format: only the fields this client sends or reads.

type chatRequest struct {
	Model               string    `json:"model"`
	Messages            []message `json:"messages"`
	MaxCompletionTokens int       `json:"max_completion_tokens,omitempty"`
	MaxTokens           int       `json:"max_tokens,omitempty"`
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatResponse struct {
	Choices []choice        `json:"choices"`
	Usage   *usage          `json:"usage"`
	Error   json.RawMessage `json:"error"`
}

type choice struct {
	Message      responseMessage `json:"message"`
	FinishReason string          `json:"finish_reason"`
}

type responseMessage struct {
	// Content is a string, null (refusals, tool calls, a reasoning model
	// that spent its budget), or on a few servers an array of parts.
	Content json.RawMessage `json:"content"`
	Refusal *string         `json:"refusal"`
}

// text returns the message text; null or absent content is "".
func (m responseMessage) text() (string, error) {
	raw := bytes.TrimSpace(m.Content)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	switch raw[0] {
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case '[':
		var parts []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal(raw, &parts); err != nil {
			return "", err
		}
		var b strings.Builder
		for _, p := range parts {
			if p.Type == "text" || p.Type == "" {
				b.WriteString(p.Text)
			}
		}
		return b.String(), nil
	}
	return "", fmt.Errorf("message.content: unexpected JSON %.20q", raw)
}

type usage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

// errorFields is an error body reduced to what classification needs.
type errorFields struct {
	message, typ, code string
}

// label names the structured code for the message prefix: the code when it
// is a word (not vLLM's numeric status echo), else the type.
func (f errorFields) label() string {
	if f.code != "" && !isNumber(f.code) {
		return f.code
	}
	return f.typ
}

// flexString accepts a JSON string, number or null (servers disagree on the
// type of "code").
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*s = ""
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
	default:
		*s = flexString(b)
	}
	return nil
}

type errorObject struct {
	Message flexString `json:"message"`
	Type    flexString `json:"type"`
	Code    flexString `json:"code"`
}

// parseErrorBody understands OpenAI's {"error":{"message","type","code"}},
// vLLM's flat {"object":"error","message","type","code"}, a bare
// {"error":"text"}, FastAPI's {"detail":...}, and falls back to the raw body
// (an HTML page from a gateway, say).
func parseErrorBody(body []byte) errorFields {
	var env struct {
		errorObject
		Error  json.RawMessage `json:"error"`
		Detail json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return errorFields{message: string(body)}
	}
	if f, ok := parseErrorValue(env.Error); ok {
		return f
	}
	if env.Message != "" || env.Type != "" || env.Code != "" {
		return errorFields{message: string(env.Message), typ: string(env.Type), code: string(env.Code)}
	}
	if d := bytes.TrimSpace(env.Detail); len(d) > 0 {
		var s string
		if json.Unmarshal(d, &s) == nil {
			return errorFields{message: s}
		}
		return errorFields{message: string(d)}
	}
	return errorFields{message: string(body)}
}

// parseErrorValue reads the value of an "error" key: an object or a string.
func parseErrorValue(raw json.RawMessage) (errorFields, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return errorFields{}, false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return errorFields{message: s}, true
		}
	}
	var o errorObject
	if json.Unmarshal(raw, &o) == nil {
		return errorFields{message: string(o.Message), typ: string(o.Type), code: string(o.Code)}, true
	}
	return errorFields{message: string(raw)}, true
}

func isNumber(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
