package worker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// decode turns a message body into a Job. An error means the message is
// poison: it can never be processed and goes to dead_letters.
func decode(data []byte, maxPromptBytes int) (prompt.Job, error) {
	var j prompt.Job
	if len(data) == 0 {
		return j, fmt.Errorf("empty message body")
	}
	if !utf8.Valid(data) {
		return j, fmt.Errorf("message body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&j); err != nil {
		return j, fmt.Errorf("message body is not a job: %w", err)
	}
	if dec.More() {
		return j, fmt.Errorf("message body has data after the JSON object")
	}
	switch {
	case j.BatchID == "":
		return j, fmt.Errorf("job has no batch")
	case j.ID == "":
		return j, fmt.Errorf("job has no id")
	case strings.TrimSpace(j.Prompt) == "":
		return j, fmt.Errorf("job %s/%s has an empty prompt", j.BatchID, j.ID)
	case maxPromptBytes > 0 && len(j.Prompt)+len(j.System) > maxPromptBytes:
		return j, fmt.Errorf("job %s/%s: prompt and system are %d bytes, over the %d-byte limit", j.BatchID, j.ID, len(j.Prompt)+len(j.System), maxPromptBytes)
	case j.MaxTokens < 0:
		return j, fmt.Errorf("job %s/%s: max_tokens %d is negative", j.BatchID, j.ID, j.MaxTokens)
	case strings.ContainsRune(j.Prompt, 0) || strings.ContainsRune(j.System, 0) || strings.ContainsRune(j.ID, 0):
		return j, fmt.Errorf("job %s/%s contains a NUL character, which Postgres text cannot store", j.BatchID, j.ID)
	}
	if len(j.Metadata) > 0 && j.Metadata[0] != '{' && !bytes.Equal(j.Metadata, []byte("null")) {
		return j, fmt.Errorf("job %s/%s: metadata must be a JSON object", j.BatchID, j.ID)
	}
	if bytes.Contains(j.Metadata, []byte(`\u0000`)) {
		return j, fmt.Errorf("job %s/%s: metadata contains \\u0000, which Postgres jsonb cannot store", j.BatchID, j.ID)
	}
	if bytes.Equal(j.Metadata, []byte("null")) {
		j.Metadata = nil
	}
	return j, nil
}
