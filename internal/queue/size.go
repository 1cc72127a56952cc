package queue

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// The prompt-size rule, in one place: a job fits when its message, as the
// server counts it against max_payload (the JSON body, escaping included,
// plus the Nats-Msg-Id header), is at most the limit. The limit is
// Config.MaxMessageBytes (MAX_PROMPT_BYTES; default: the server's
// max_payload), and Connect refuses a limit above max_payload. enqueue
// rejects a line over it before recording anything; the worker dead-letters
// a delivered message over it.

// DefaultMaxMessageBytes is the limit where no connection says otherwise
// (nats-server's default max_payload, 1 MiB).
const DefaultMaxMessageBytes = 1 << 20

// headerOverhead is what a message with one Nats-Msg-Id header adds to its
// body on the wire, apart from the id: "NATS/1.0\r\n", "Nats-Msg-Id: ",
// "\r\n" and the blank line that ends the headers.
const headerOverhead = len("NATS/1.0\r\n") + len("Nats-Msg-Id: ") + len("\r\n") + len("\r\n")

// MessageSize is the size of the message with this Nats-Msg-Id and body as
// max_payload counts it.
func MessageSize(msgID string, body []byte) int {
	return messageSize(len(msgID), body)
}

func messageSize(msgIDLen int, body []byte) int {
	return len(body) + headerOverhead + msgIDLen
}

// TooLargeError is a job whose message is over the limit. It matches
// ErrMessageTooLarge with errors.Is.
type TooLargeError struct {
	MsgID       string
	Size        int // MessageSize of the encoded job
	Limit       int
	PromptBytes int // prompt + system, before encoding
}

func (e *TooLargeError) Error() string {
	if e.PromptBytes == 0 {
		return fmt.Sprintf("a %d-byte message, over the %d-byte limit (MAX_PROMPT_BYTES)", e.Size, e.Limit)
	}
	return fmt.Sprintf("prompt and system are %d bytes, a %d-byte message once encoded (JSON escaping included), over the %d-byte limit (MAX_PROMPT_BYTES)",
		e.PromptBytes, e.Size, e.Limit)
}

// Is makes errors.Is(err, ErrMessageTooLarge) true.
func (e *TooLargeError) Is(target error) bool { return target == ErrMessageTooLarge }

// ErrMessageTooLarge is matched by a *TooLargeError.
var ErrMessageTooLarge = errors.New("job too large for one message")

// Message is a job encoded for the queue.
type Message struct {
	Batch    string // the subject's last token
	Priority string // high, normal or low ("": normal); chooses the subject
	MsgID    string // Nats-Msg-Id: batch/id
	Body     []byte // the JSON that DecodeJob reads
}

// Size is the message's size as max_payload counts it.
func (m Message) Size() int { return MessageSize(m.MsgID, m.Body) }

// EncodeJob validates job's batch and id and encodes it, with JobMsgID as
// its Nats-Msg-Id. A message over limit (0: DefaultMaxMessageBytes) is a
// *TooLargeError.
func EncodeJob(job prompt.Job, limit int) (Message, error) {
	if err := ValidBatchName(job.BatchID); err != nil {
		return Message{}, fmt.Errorf("queue: %w", err)
	}
	if err := ValidJobID(job.ID); err != nil {
		return Message{}, fmt.Errorf("queue: batch %s: %w", job.BatchID, err)
	}
	if err := ValidPriority(job.Priority); err != nil {
		return Message{}, fmt.Errorf("queue: batch %s: %w", job.BatchID, err)
	}
	id := JobMsgID(job)
	body, ok := appendJob(make([]byte, 0, jobSizeHint(&job)), &job)
	if !ok {
		var err error
		if body, err = json.Marshal(job); err != nil {
			return Message{}, fmt.Errorf("queue: encode job %s: %w", id, err)
		}
	}
	m := Message{Batch: job.BatchID, Priority: job.Priority, MsgID: id, Body: body}
	if err := checkJobSize(job, m.Body, limit); err != nil {
		return Message{}, err
	}
	return m, nil
}

func checkSize(msgID string, body []byte, promptBytes, limit int) error {
	limit = limitOrDefault(limit)
	if size := MessageSize(msgID, body); size > limit {
		return &TooLargeError{MsgID: msgID, Size: size, Limit: limit, PromptBytes: promptBytes}
	}
	return nil
}

// checkJobSize is checkSize of job's message with body: it makes the
// message's id (JobMsgID) only for the error (DecodeJob runs it for every
// delivery).
func checkJobSize(job prompt.Job, body []byte, limit int) error {
	if messageSize(jobMsgIDLen(job), body) <= limitOrDefault(limit) {
		return nil
	}
	return checkSize(JobMsgID(job), body, len(job.Prompt)+len(job.System), limit)
}

func limitOrDefault(limit int) int {
	if limit <= 0 {
		return DefaultMaxMessageBytes
	}
	return limit
}

// LimitError is Connect's refusal of a MaxMessageBytes above the server's
// max_payload.
type LimitError struct {
	Limit      int
	MaxPayload int64
	Server     string // redacted URL
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("queue: MAX_PROMPT_BYTES is %d, over the max_payload of %d of nats-server at %s: lower MAX_PROMPT_BYTES or raise max_payload in the server's configuration",
		e.Limit, e.MaxPayload, e.Server)
}
