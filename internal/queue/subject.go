package queue

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// Limits on names that end up in subjects and headers.
const (
	MaxBatchNameLen = 128
	MaxJobIDLen     = 1024
)

// ErrInvalidBatchName and ErrInvalidJobID are wrapped by the validation
// errors below.
var (
	ErrInvalidBatchName = errors.New("invalid batch name")
	ErrInvalidJobID     = errors.New("invalid job id")
)

// Subject is the subject a batch's jobs are published to: prefix.batch.
func Subject(prefix, batch string) string {
	return prefix + "." + batch
}

// ValidBatchName checks that name can be one subject token: 1 to 128 ASCII
// letters, digits, '_' or '-'. Dots would split it into several tokens and
// '*', '>' and spaces are not allowed in subjects at all.
func ValidBatchName(name string) error {
	if name == "" {
		return fmt.Errorf("batch name is empty: %w", ErrInvalidBatchName)
	}
	if len(name) > MaxBatchNameLen {
		return fmt.Errorf("batch name is %d bytes long, the maximum is %d: %w", len(name), MaxBatchNameLen, ErrInvalidBatchName)
	}
	for i, r := range name {
		if r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			continue
		}
		return fmt.Errorf("batch name %q: character %q at position %d is not allowed (use letters, digits, '_' or '-'): %w",
			name, r, i+1, ErrInvalidBatchName)
	}
	return nil
}

// ValidJobID checks that id can go into the Nats-Msg-Id header: not empty,
// at most 1024 bytes, valid UTF-8 and free of control characters (a CR or
// LF would break the header).
func ValidJobID(id string) error {
	if strings.TrimSpace(id) == "" {
		return fmt.Errorf("job id is empty: %w", ErrInvalidJobID)
	}
	if len(id) > MaxJobIDLen {
		return fmt.Errorf("job id is %d bytes long, the maximum is %d: %w", len(id), MaxJobIDLen, ErrInvalidJobID)
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("job id %q is not valid UTF-8: %w", id, ErrInvalidJobID)
	}
	for i, r := range id {
		if r < ' ' || r == 0x7f {
			return fmt.Errorf("job id %q: control character %q at byte %d: %w", id, r, i+1, ErrInvalidJobID)
		}
	}
	return nil
}

// MsgID is the Nats-Msg-Id of a job: batch/id.
func MsgID(batch, id string) string {
	return batch + "/" + id
}

// ErrBadMessage is wrapped by DecodeJob when a message is not a job; the
// worker dead-letters such messages.
var ErrBadMessage = errors.New("not a promptcascade job")

// DecodeJob parses a message body published by Publisher. It rejects
// invalid JSON and jobs without batch, id or prompt.
func DecodeJob(data []byte) (prompt.Job, error) {
	var j prompt.Job
	if err := json.Unmarshal(data, &j); err != nil {
		return prompt.Job{}, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	switch {
	case j.BatchID == "":
		return j, fmt.Errorf("%w: no batch", ErrBadMessage)
	case j.ID == "":
		return j, fmt.Errorf("%w: no id", ErrBadMessage)
	case strings.TrimSpace(j.Prompt) == "":
		return j, fmt.Errorf("%w: empty prompt", ErrBadMessage)
	}
	return j, nil
}
