package queue

import (
	"strconv"
	"unicode/utf8"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// appendJob appends the JSON of job to dst, byte for byte what json.Marshal
// makes of it, without reflection: enqueue encodes every line, and
// json.Marshal was a tenth of its CPU. It handles the jobs enqueue and the
// worker's direct publishes make (no metadata, no resume); for any other
// job, or a time json.Marshal refuses, ok is false and dst is returned as
// it was, for the caller to use json.Marshal. FuzzAppendJob pins it to
// json.Marshal.
func appendJob(dst []byte, job *prompt.Job) (_ []byte, ok bool) {
	if len(job.Metadata) > 0 || job.Resume != nil {
		return dst, false
	}
	n0 := len(dst)
	// The fields in prompt.Job's order, with its tags' names and omitempty.
	dst = append(dst, `{"batch":`...)
	dst = appendJSONString(dst, job.BatchID)
	dst = append(dst, `,"id":`...)
	dst = appendJSONString(dst, job.ID)
	dst = append(dst, `,"prompt":`...)
	dst = appendJSONString(dst, job.Prompt)
	if job.System != "" {
		dst = append(dst, `,"system":`...)
		dst = appendJSONString(dst, job.System)
	}
	if job.MaxTokens != 0 {
		dst = append(dst, `,"max_tokens":`...)
		dst = strconv.AppendInt(dst, int64(job.MaxTokens), 10)
	}
	dst = append(dst, `,"enqueued_at":"`...)
	// time.Time's MarshalJSON is this text in quotes (strict RFC 3339;
	// a year outside 0-9999 or an offset of 24 hours or more is an error).
	t, err := job.EnqueuedAt.AppendText(dst)
	if err != nil {
		return dst[:n0], false
	}
	dst = append(t, '"')
	if job.Seq != 0 {
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendInt(dst, job.Seq, 10)
	}
	if job.Priority != "" {
		dst = append(dst, `,"priority":`...)
		dst = appendJSONString(dst, job.Priority)
	}
	return append(dst, '}'), true
}

// jobSizeHint is a capacity that holds job's JSON without growing for the
// usual prompt (one that needs little escaping).
func jobSizeHint(job *prompt.Job) int {
	return len(`{"batch":"","id":"","prompt":"","system":"","max_tokens":,"enqueued_at":"","seq":,"priority":""}`) +
		len(job.BatchID) + len(job.ID) + len(job.Prompt) + len(job.System) + len(job.Priority) +
		len("2006-01-02T15:04:05.999999999-07:00") + 2*20 + 16
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as encoding/json writes a string (HTML
// escaping on, as json.Marshal has it): '"' and '\\' escaped, control
// characters as \b \f \n \r \t or \u00XX, '<' '>' '&' as \u003c \u003e
// \u0026, U+2028 and U+2029 as \u2028 \u2029, and each byte of invalid
// UTF-8 as \ufffd.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= ' ' && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
