package gemini

import (
	"bytes"
	"encoding/json"
	"strings"
)

// The generateContent wire format: only the fields this client sends or reads.

type generateRequest struct {
	SystemInstruction *content          `json:"systemInstruction,omitempty"`
	Contents          []content         `json:"contents"`
	GenerationConfig  *generationConfig `json:"generationConfig,omitempty"`
}

type content struct {
	Role  string `json:"role,omitempty"`
	Parts []part `json:"parts"`
}

type part struct {
	Text    string `json:"text"`
	Thought bool   `json:"thought,omitempty"`
}

type generationConfig struct {
	MaxOutputTokens int `json:"maxOutputTokens,omitempty"`
}

type generateResponse struct {
	Candidates     []candidate `json:"candidates"`
	PromptFeedback *struct {
		BlockReason        string `json:"blockReason"`
		BlockReasonMessage string `json:"blockReasonMessage"`
	} `json:"promptFeedback"`
	UsageMetadata *usageMetadata `json:"usageMetadata"`
	ResponseID    string         `json:"responseId"`
	Error         *apiError      `json:"error"`
}

type candidate struct {
	Content      *content `json:"content"`
	FinishReason string   `json:"finishReason"`
}

type usageMetadata struct {
	PromptTokenCount        int `json:"promptTokenCount"`
	CandidatesTokenCount    int `json:"candidatesTokenCount"`
	ThoughtsTokenCount      int `json:"thoughtsTokenCount"`
	CachedContentTokenCount int `json:"cachedContentTokenCount"`
	ToolUsePromptTokenCount int `json:"toolUsePromptTokenCount"`
}

// apiError is google.rpc.Status as JSON.
type apiError struct {
	Code    int               `json:"code"`
	Message string            `json:"message"`
	Status  string            `json:"status"`
	Details []json.RawMessage `json:"details"`
}

// errorFields is an error body reduced to what classification needs.
type errorFields struct {
	message, status string
	reason          string // ErrorInfo.reason, e.g. API_KEY_INVALID
	retryDelay      string // RetryInfo.retryDelay, e.g. "13s"
	// exhaustedForTheDay: a QuotaFailure violation is a per-day quota, or
	// one whose limit is 0 (the tier has no quota for the model at all).
	// Waiting minutes will not help either.
	exhaustedForTheDay bool
}

func (e *apiError) fields() errorFields {
	f := errorFields{message: e.Message, status: e.Status}
	for _, raw := range e.Details {
		var d struct {
			Type       string `json:"@type"`
			Reason     string `json:"reason"`
			RetryDelay string `json:"retryDelay"`
			Violations []struct {
				QuotaID    string          `json:"quotaId"`
				QuotaValue json.RawMessage `json:"quotaValue"` // int64: a string in proto JSON
			} `json:"violations"`
		}
		if json.Unmarshal(raw, &d) != nil {
			continue
		}
		switch d.Type {
		case "type.googleapis.com/google.rpc.ErrorInfo":
			f.reason = d.Reason
		case "type.googleapis.com/google.rpc.RetryInfo":
			f.retryDelay = d.RetryDelay
		case "type.googleapis.com/google.rpc.QuotaFailure":
			for _, v := range d.Violations {
				value := strings.Trim(string(bytes.TrimSpace(v.QuotaValue)), `"`)
				if strings.Contains(v.QuotaID, "PerDay") || value == "0" {
					f.exhaustedForTheDay = true
				}
			}
		}
	}
	return f
}

// parseErrorBody reads {"error":{code,message,status,details}}, also wrapped
// in an array as some Google front ends send it; anything else (a gateway
// page) becomes the message.
func parseErrorBody(body []byte) errorFields {
	trimmed := bytes.TrimSpace(body)
	var env struct {
		Error *apiError `json:"error"`
	}
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var list []json.RawMessage
		if json.Unmarshal(trimmed, &list) == nil && len(list) > 0 {
			trimmed = list[0]
		}
	}
	if json.Unmarshal(trimmed, &env) != nil || env.Error == nil {
		return errorFields{message: string(body)}
	}
	return env.Error.fields()
}
