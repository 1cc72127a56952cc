package anthropic

import "encoding/json"

// The Messages API wire format: only the fields this client sends or reads.

type messagesRequest struct {
	Model     string    `json:"model"`
	MaxTokens int       `json:"max_tokens"`
	System    string    `json:"system,omitempty"`
	Messages  []message `json:"messages"`
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type messagesResponse struct {
	Type       string         `json:"type"` // "message", or "error"
	Content    []contentBlock `json:"content"`
	StopReason string         `json:"stop_reason"`
	Usage      *usage         `json:"usage"`
}

type contentBlock struct {
	Type string `json:"type"` // "text", "thinking", "tool_use", ...
	Text string `json:"text"`
}

type usage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
}

// errorFields is an error body reduced to what classification needs.
type errorFields struct {
	typ, message, errorCode, requestID string
}

// parseErrorBody reads {"type":"error","error":{"type","message",
// "details":{"error_code"}},"request_id"}; anything else (a gateway page)
// becomes the message.
func parseErrorBody(body []byte) errorFields {
	var env struct {
		Error *struct {
			Type    string `json:"type"`
			Message string `json:"message"`
			Details *struct {
				ErrorCode string `json:"error_code"`
			} `json:"details"`
		} `json:"error"`
		RequestID string `json:"request_id"`
	}
	if json.Unmarshal(body, &env) != nil || env.Error == nil {
		return errorFields{message: string(body)}
	}
	f := errorFields{typ: env.Error.Type, message: env.Error.Message, requestID: env.RequestID}
	if env.Error.Details != nil {
		f.errorCode = env.Error.Details.ErrorCode
	}
	return f
}
