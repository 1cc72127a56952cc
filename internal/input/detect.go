package input

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// detect chooses the format for FormatAuto from the name's extension and,
// where that is not enough, from the first non-blank line within the first
// bufferSize bytes (peeked, not consumed).
func (r *Reader) detect(name string) (Format, error) {
	ext := strings.ToLower(filepath.Ext(name))
	if name == "stdin" {
		ext = ""
	}
	switch ext {
	case ".csv":
		return FormatCSV, nil
	case ".txt", ".text":
		return FormatText, nil
	case ".jsonl", ".ndjson", ".json", "":
	default:
		return "", &FileError{File: name, Err: fmt.Errorf(
			"%w: cannot tell it from the extension %q; name one (jsonl, openai-batch, csv or text)", ErrUnknownFormat, ext)}
	}

	first, err := r.peekFirstLine()
	if err != nil {
		return "", err
	}
	trimmed := bytes.TrimSpace(first)
	switch {
	case bytes.HasPrefix(trimmed, []byte("[")):
		return "", &FileError{File: name, Err: ErrJSONArray}
	case bytes.HasPrefix(trimmed, []byte("{")):
		if hasCustomID(trimmed) {
			return FormatOpenAIBatch, nil
		}
		return FormatJSONL, nil
	case ext != "":
		return FormatJSONL, nil // a .jsonl file whose first line is bad: report it as JSONL
	case isCSVHeader(first):
		return FormatCSV, nil
	}
	return FormatText, nil
}

// peekFirstLine returns the first non-blank line (without its line end and
// any byte order mark) found within the first bufferSize bytes, or what
// there is of it. It returns nil for an input without one there.
func (r *Reader) peekFirstLine() ([]byte, error) {
	buf, err := r.src.Peek(bufferSize)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, &FileError{File: r.name, Err: fmt.Errorf("read: %w", err)}
	}
	buf = bytes.TrimPrefix(buf, []byte("\xef\xbb\xbf"))
	for len(buf) > 0 {
		line := buf
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			line, buf = buf[:i], buf[i+1:]
		} else {
			buf = nil
		}
		if !isBlank(line) {
			return bytes.TrimSuffix(line, []byte("\r")), nil
		}
	}
	return nil, nil
}

// hasCustomID reports whether the JSON object that line starts has a
// top-level "custom_id" key. When the line is complete it is decoded; a
// line cut off by the peek window is searched for the quoted key instead
// (inside a JSON string a quote would be escaped, so only a key, or a value
// equal to "custom_id", matches).
func hasCustomID(line []byte) bool {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(line, &keys); err == nil {
		_, ok := keys["custom_id"]
		return ok
	}
	return bytes.Contains(line, []byte(`"custom_id"`))
}

// isCSVHeader reports whether line looks like a CSV header row: comma
// separated names, one of them "prompt".
func isCSVHeader(line []byte) bool {
	fields, _, err := splitCSV(line, nil, nil)
	if err != "" {
		return false
	}
	for _, f := range fields {
		if strings.EqualFold(strings.TrimSpace(string(f)), "prompt") {
			return true
		}
	}
	return false
}
