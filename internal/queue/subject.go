package queue

import (
	"bytes"
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

// DecodeJob parses a message body published by Publisher. Every error wraps
// ErrBadMessage and means the message can never be processed (the worker
// dead-letters it): invalid UTF-8 or JSON, trailing data, no batch or id, an
// empty prompt, a message over limit (the prompt-size rule, see
// MessageSize; 0: DefaultMaxMessageBytes), negative max_tokens, NUL
// characters (Postgres text cannot hold them), or metadata that is not a
// JSON object.
func DecodeJob(data []byte, limit int) (prompt.Job, error) {
	j, err := decodeJob(data, limit)
	if err != nil {
		return j, badMessage{err}
	}
	return j, nil
}

// badMessage is a decoding failure: it reads as its reason alone (that is
// what dead_letters.error shows) and matches ErrBadMessage with errors.Is.
type badMessage struct{ err error }

func (b badMessage) Error() string        { return b.err.Error() }
func (b badMessage) Unwrap() error        { return b.err }
func (b badMessage) Is(target error) bool { return target == ErrBadMessage }

func decodeJob(data []byte, limit int) (prompt.Job, error) {
	if len(data) == 0 {
		return prompt.Job{}, errors.New("empty message body")
	}
	if !utf8.Valid(data) {
		return prompt.Job{}, errors.New("message body is not valid UTF-8")
	}
	j, ok := scanJob(data)
	if !ok {
		var err error
		if j, err = unmarshalJob(data); err != nil {
			return j, err
		}
	}
	return decodeJobChecks(j, data, limit)
}

// decodeJobChecks is decodeJob after the reading: j is what data holds.
func decodeJobChecks(j prompt.Job, data []byte, limit int) (prompt.Job, error) {
	switch {
	case j.BatchID == "":
		return j, errors.New("job has no batch")
	case j.ID == "":
		return j, errors.New("job has no id")
	case strings.TrimSpace(j.Prompt) == "":
		return j, fmt.Errorf("job %s/%s has an empty prompt", j.BatchID, j.ID)
	}
	if err := checkJobSize(j, data, limit); err != nil {
		return j, fmt.Errorf("job %s/%s: %w", j.BatchID, j.ID, err)
	}
	switch {
	case j.MaxTokens < 0:
		return j, fmt.Errorf("job %s/%s: max_tokens %d is negative", j.BatchID, j.ID, j.MaxTokens)
	case strings.ContainsRune(j.Prompt, 0) || strings.ContainsRune(j.System, 0) || strings.ContainsRune(j.ID, 0):
		return j, fmt.Errorf("job %s/%s contains a NUL character, which Postgres text cannot store", j.BatchID, j.ID)
	}
	switch {
	case bytes.Equal(j.Metadata, []byte("null")):
		j.Metadata = nil
	case len(j.Metadata) > 0 && j.Metadata[0] != '{':
		return j, fmt.Errorf("job %s/%s: metadata must be a JSON object", j.BatchID, j.ID)
	case bytes.Contains(j.Metadata, []byte(`\u0000`)):
		return j, fmt.Errorf("job %s/%s: metadata contains \\u0000, which Postgres jsonb cannot store", j.BatchID, j.ID)
	}
	return j, nil
}

// unmarshalJob is decodeJob's reading of a body that scanJob does not take.
func unmarshalJob(data []byte) (prompt.Job, error) {
	var j prompt.Job
	if err := json.Unmarshal(data, &j); err != nil {
		// Unmarshal copies nothing and reads the body once; only a bad
		// body is read again, for the reason a Decoder gives.
		j = prompt.Job{}
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&j); err != nil {
			return j, fmt.Errorf("message body is not a job: %w", err)
		}
		if dec.More() {
			return j, errors.New("message body has data after the JSON object")
		}
		return j, fmt.Errorf("message body is not a job: %w", err)
	}
	return j, nil
}

// Priorities of a batch, highest first. A batch's priority chooses its
// subject and so the consumer that delivers it: workers fetch from the high
// consumer first, then normal, then low.
const (
	PriorityHigh   = "high"
	PriorityNormal = "normal"
	PriorityLow    = "low"
)

// Priorities lists the priorities in fetch order, highest first.
var Priorities = []string{PriorityHigh, PriorityNormal, PriorityLow}

// ErrInvalidPriority is wrapped by ValidPriority's error.
var ErrInvalidPriority = errors.New("invalid priority")

// ValidPriority checks that p is high, normal or low ("" means normal).
func ValidPriority(p string) error {
	switch p {
	case "", PriorityHigh, PriorityNormal, PriorityLow:
		return nil
	}
	return fmt.Errorf("priority %q: want high, normal or low: %w", p, ErrInvalidPriority)
}

// PrioritySubject is the subject of a batch of priority p: prefix.batch
// for normal (or ""), as before priorities existed, and prefix.p.batch for
// high and low. The normal consumer filters prefix.* (one token) and the
// others prefix.high.* and prefix.low.*, so the filters never overlap, as a
// work-queue stream requires, even for a batch named "high".
func PrioritySubject(prefix, p, batch string) string {
	if p == "" || p == PriorityNormal {
		return Subject(prefix, batch)
	}
	return prefix + "." + p + "." + batch
}

// BatchSubjects are the subjects a batch's messages can be on, one per
// priority: purging, counting and verifying a batch look at all of them,
// since a retry may republish it under another priority.
func BatchSubjects(prefix, batch string) []string {
	out := make([]string, len(Priorities))
	for i, p := range Priorities {
		out[i] = PrioritySubject(prefix, p, batch)
	}
	return out
}

// priorityFilter is the filter subject of priority p's consumer.
func priorityFilter(prefix, p string) string {
	return PrioritySubject(prefix, p, "*")
}

// priorityConsumer is the durable name of priority p's consumer: the
// configured name for normal, name-high and name-low for the others.
func priorityConsumer(name, p string) string {
	if p == PriorityNormal {
		return name
	}
	return name + "-" + p
}
