// Package input reads prompt files: JSON Lines, OpenAI Batch API lines, CSV
// and plain text. enqueue and `cascadectl classify` use it.
//
// A Reader streams its input: memory stays bounded by Options.MaxLineBytes
// however large the file, apart from the set of ids already seen, which
// costs 8 bytes (a hash) per record (nothing with Options.RepeatsElsewhere).
// A bad record does not stop the reader: Next returns a *LineError naming
// the file, the line and the reason, and the following call goes on with the
// next record. Errors that end the file are *FileError (empty file, CSV
// without a prompt column, read failure) and are returned again by every
// later call.
//
// Formats:
//
//   - jsonl: one object per line, {"id", "prompt", "system", "max_tokens",
//     "metadata"}. Only prompt is required. id is a string or a number (a
//     number keeps its literal spelling) and defaults to the line number;
//     max_tokens is a non-negative integer; metadata is an object. Every
//     other top-level key goes into the metadata with its JSON value, as CSV
//     keeps its other columns ({"prompt": "p", "lang": "fr"} has metadata
//     {"lang": "fr"}); a key that is also in "metadata" rejects the line.
//     Blank lines are skipped.
//   - openai-batch: OpenAI Batch API request lines. custom_id is the id; the
//     text of the "user" messages of body.messages, joined by a blank line,
//     is the prompt; "system" and "developer" messages likewise make the
//     system prompt; other roles (assistant, tool) are ignored. content is a
//     string or an array of {"type": "text", "text": ...} parts (other part
//     types are rejected). body.max_completion_tokens, or else
//     body.max_tokens, is MaxTokens. body.model and body.metadata go into
//     the metadata.
//   - csv: RFC 4180 with a header row that has a "prompt" column and may have
//     "id", "system" and "max_tokens" columns (names are matched without
//     regard to case or surrounding spaces). Every other column goes into
//     the metadata as a string. Quoted fields may span lines; a record's line
//     is the line it starts on, and an empty id cell means the line number.
//   - text: one prompt per line; the id is the line number. Blank lines are
//     skipped.
//
// Ids must be unique within a file. The reader remembers a 64-bit hash of
// each id rather than the id, so a hash collision (odds of about 3 in 10^8
// for a million ids) would reject a line as a duplicate. A caller that finds
// repeated ids itself sets Options.RepeatsElsewhere (enqueue does, in
// Postgres), and the reader keeps no ids.
//
// Line numbers count every physical line from 1, blank ones included, so a
// default id stays the same however the file is filtered. A UTF-8 byte order
// mark at the start is ignored, and so is a "\r" before a "\n".
package input

import (
	"bufio"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// Format names an input format.
type Format string

// The input formats. FormatAuto detects one from the file name and content.
const (
	FormatAuto        Format = "auto"
	FormatJSONL       Format = "jsonl"
	FormatOpenAIBatch Format = "openai-batch"
	FormatCSV         Format = "csv"
	FormatText        Format = "text"
)

// Formats lists every format name that ParseFormat accepts.
var Formats = []Format{FormatAuto, FormatJSONL, FormatOpenAIBatch, FormatCSV, FormatText}

// ParseFormat returns the Format named s; "" means FormatAuto. The error for
// an unknown name wraps ErrUnknownFormat.
func ParseFormat(s string) (Format, error) {
	if s == "" {
		return FormatAuto, nil
	}
	for _, f := range Formats {
		if Format(s) == f {
			return f, nil
		}
	}
	return "", fmt.Errorf("%w %q (want auto, jsonl, openai-batch, csv or text)", ErrUnknownFormat, s)
}

// Limits applied when Options leaves them zero.
const (
	// DefaultMaxLineBytes bounds the memory a line may take. It is not the
	// prompt-size rule: that one is the queue's (queue.EncodeJob), which
	// enqueue applies to each good line.
	DefaultMaxLineBytes = 8 << 20 // 8 MiB
	// MaxIDBytes is the longest id accepted. Ids become part of a NATS
	// message id header and a Postgres key.
	MaxIDBytes = 256
	// maxMaxTokens keeps max_tokens within a Postgres integer.
	maxMaxTokens = 1<<31 - 1
)

// Options limit what a Reader accepts. Zero (or negative) values mean the
// defaults.
type Options struct {
	// MaxLineBytes is the longest line (for CSV, the longest record) in
	// bytes, not counting the line end. A longer one is rejected as one bad
	// line without being held in memory. Default 8 MiB.
	MaxLineBytes int
	// RepeatsElsewhere says that the caller finds repeated ids itself: the
	// Reader keeps no set of ids (its memory no longer grows with the
	// input) and returns a repeated id like any other.
	RepeatsElsewhere bool
}

func (o Options) withDefaults() Options {
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	return o
}

// Errors that FileError wraps, for errors.Is.
var (
	ErrEmpty          = errors.New("empty")
	ErrUnknownFormat  = errors.New("unknown format")
	ErrNoPromptColumn = errors.New(`no "prompt" column in the CSV header`)
	ErrJSONArray      = errors.New("a JSON array, not JSON Lines (one object per line)")
)

// LineError is one bad record. Reading goes on after it.
type LineError struct {
	File   string
	Line   int
	Reason string
}

func (e *LineError) Error() string {
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Reason
}

// FileError ends the reading of a file.
type FileError struct {
	File string
	Err  error
}

func (e *FileError) Error() string { return e.File + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// bufferSize is the bufio buffer; it also bounds format sniffing.
const bufferSize = 64 << 10

// Reader reads jobs from one input. It is not safe for concurrent use.
type Reader struct {
	name   string
	format Format
	opts   Options
	src    *bufio.Reader
	closer io.Closer

	line    int   // physical lines consumed so far
	jobLine int   // line of the record Next last returned
	bytes   int64 // bytes consumed so far
	buf     []byte
	records int // non-blank records seen, good or bad
	err     error

	seed maphash.Seed
	ids  map[uint64]struct{} // hashes of ids seen; nil with RepeatsElsewhere

	csv *csvState
}

// NewReader returns a Reader of r in format f. name is used in errors ("-"
// or "" reads as "stdin") and, for FormatAuto, to detect the format from the
// extension: .jsonl, .ndjson and .json are JSON Lines or OpenAI batch lines
// (told apart by a "custom_id" key in the first record), .csv is CSV, .txt
// is text. Input named "-" or with no extension is detected from its first
// non-blank line. Any other extension is an error wrapping ErrUnknownFormat.
func NewReader(r io.Reader, name string, f Format, opts Options) (*Reader, error) {
	if name == "" || name == "-" {
		name = "stdin"
	}
	if _, err := ParseFormat(string(f)); err != nil {
		return nil, &FileError{File: name, Err: err}
	}
	rd := &Reader{
		name:   name,
		format: f,
		opts:   opts.withDefaults(),
		src:    bufio.NewReaderSize(r, bufferSize),
	}
	if !rd.opts.RepeatsElsewhere {
		rd.seed, rd.ids = maphash.MakeSeed(), make(map[uint64]struct{})
	}
	if f == FormatAuto || f == "" {
		detected, err := rd.detect(name)
		if err != nil {
			return nil, err
		}
		rd.format = detected
	}
	return rd, nil
}

// Open opens the file at path ("-" for standard input) and returns a Reader
// of it. Close closes the file.
func Open(path string, f Format, opts Options) (*Reader, error) {
	if path == "-" {
		return NewReader(os.Stdin, "-", f, opts)
	}
	file, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &FileError{File: path, Err: err}
	}
	if st, err := file.Stat(); err == nil && st.IsDir() {
		file.Close()
		return nil, &FileError{File: path, Err: errors.New("is a directory")}
	}
	r, err := NewReader(file, path, f, opts)
	if err != nil {
		file.Close()
		return nil, err
	}
	r.closer = file
	return r, nil
}

// Close closes the file that Open opened; it does nothing for a Reader from
// NewReader.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	err := r.closer.Close()
	r.closer = nil
	return err
}

// Format returns the format being read (the detected one for FormatAuto).
func (r *Reader) Format() Format { return r.format }

// Name returns the file name used in errors.
func (r *Reader) Name() string { return r.name }

// Line returns the line number of the record that Next last returned, good
// or bad.
func (r *Reader) Line() int { return r.jobLine }

// BytesRead returns how many bytes of the input have been consumed, for
// progress reports.
func (r *Reader) BytesRead() int64 { return r.bytes }

// Next returns the next job. At the end of the input it returns io.EOF. A
// bad record gives a *LineError and the next call continues after it. Any
// other error (a *FileError) ends the input and is returned again by every
// later call.
func (r *Reader) Next() (prompt.Job, error) {
	if r.err != nil {
		return prompt.Job{}, r.err
	}
	var (
		job prompt.Job
		err error
	)
	switch r.format {
	case FormatJSONL, FormatOpenAIBatch:
		job, err = r.nextJSON()
	case FormatCSV:
		job, err = r.nextCSV()
	default:
		job, err = r.nextText()
	}
	if errors.Is(err, io.EOF) && r.records == 0 {
		err = &FileError{File: r.name, Err: ErrEmpty}
	}
	if err != nil {
		var le *LineError
		if !errors.As(err, &le) {
			r.err = err
		}
	}
	return job, err
}

// lineError returns a *LineError for line n.
func (r *Reader) lineError(n int, format string, args ...any) error {
	r.jobLine = n
	return &LineError{File: r.name, Line: n, Reason: fmt.Sprintf(format, args...)}
}

// accept records a good job's id and line; it rejects an id seen before
// (unless the ids are not kept).
func (r *Reader) accept(n int, job prompt.Job) (prompt.Job, error) {
	if r.ids != nil {
		h := maphash.String(r.seed, job.ID)
		if _, dup := r.ids[h]; dup {
			return prompt.Job{}, r.lineError(n, "%s", RepeatReason(job.ID))
		}
		r.ids[h] = struct{}{}
	}
	r.jobLine = n
	return job, nil
}

// RepeatReason is the reason a line whose id came earlier in the same file
// is rejected with (file:line: reason), for callers that find repeats
// themselves.
func RepeatReason(id string) string { return fmt.Sprintf("duplicate id %q", id) }

// checkText returns why s cannot be a prompt (what names it in the
// message), or "". Text from a valid UTF-8 line or from JSON strings is
// valid UTF-8 already.
func (r *Reader) checkText(what, s string, required bool) string {
	switch {
	case s == "" && required:
		return what + " is empty"
	case required && strings.TrimSpace(s) == "":
		return what + " is only whitespace"
	case strings.IndexByte(s, 0) >= 0:
		return what + " contains a NUL character"
	}
	return ""
}

// checkID returns why id cannot be an id, or "".
func checkID(id string) string {
	switch {
	case id == "":
		return `"id" is empty`
	case len(id) > MaxIDBytes:
		return fmt.Sprintf(`"id" is %d bytes, over the limit of %d`, len(id), MaxIDBytes)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c == 0x7f {
			return fmt.Sprintf(`"id" contains the control character %q`, rune(c))
		}
	}
	return ""
}
