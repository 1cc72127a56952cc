package input

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// rawLine is one physical line of input.
type rawLine struct {
	b            []byte // content without the line end; valid until the next read
	n            int    // line number, from 1
	length       int    // length of the content, also when it was too long to keep
	tooLong      bool   // longer than MaxLineBytes; b is nil
	unterminated bool   // the last line, with no newline after it
}

// readLine reads the next physical line. It never holds more than
// MaxLineBytes (plus the line end) of one line: the rest of a longer line is
// read and discarded. When track is not nil, the CSV tokenizer state it
// points to is advanced over every byte, kept or not. It returns io.EOF at
// the end and a *FileError when the input cannot be read.
func (r *Reader) readLine(track *csvScan) (rawLine, error) {
	var l rawLine
	r.buf = r.buf[:0]
	total := 0
	max := r.opts.MaxLineBytes + 2 // room for "\r\n"
	for {
		frag, err := r.src.ReadSlice('\n')
		r.bytes += int64(len(frag))
		total += len(frag)
		if track != nil {
			*track = track.scan(frag)
		}
		switch {
		case l.tooLong:
		case err == nil && len(r.buf) == 0:
			l.b = frag // the whole line in one piece: no copy
		case len(r.buf)+len(frag) > max:
			l.tooLong, l.b, r.buf = true, nil, r.buf[:0]
		default:
			r.buf = append(r.buf, frag...)
			l.b = r.buf
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF {
			if total == 0 {
				return rawLine{}, io.EOF
			}
			l.unterminated = true
			break
		}
		return rawLine{}, &FileError{File: r.name, Err: fmt.Errorf("read: %w", err)}
	}
	r.line++
	l.n = r.line
	end := 0
	if !l.unterminated {
		end = 1 // "\n"
	}
	if l.tooLong {
		l.length = total - end
		return l, nil
	}
	l.b = l.b[:len(l.b)-end]
	if len(l.b) > 0 && l.b[len(l.b)-1] == '\r' {
		l.b = l.b[:len(l.b)-1]
	}
	if l.n == 1 {
		l.b = bytes.TrimPrefix(l.b, []byte("\xef\xbb\xbf"))
	}
	l.length = len(l.b)
	if l.length > r.opts.MaxLineBytes {
		l.tooLong, l.b = true, nil
	}
	return l, nil
}

// tooLongError is the error for a line over MaxLineBytes.
func (r *Reader) tooLongError(l rawLine) error {
	return r.lineError(l.n, "line is %d bytes, over the limit of %d", l.length, r.opts.MaxLineBytes)
}

// isBlank reports whether b holds only white space.
func isBlank(b []byte) bool { return len(bytes.TrimSpace(b)) == 0 }

// badBytes returns why b cannot be text (a NUL byte or invalid UTF-8, with
// the 1-based column), or "".
func badBytes(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return fmt.Sprintf("NUL byte at column %d", i+1)
	}
	if utf8.Valid(b) {
		return ""
	}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Sprintf("invalid UTF-8 at column %d", i+1)
		}
		i += size
	}
	return "invalid UTF-8"
}

// nextLine returns the next non-blank line of a line-based format (JSONL,
// OpenAI batch, text), counted as a record. A line over the size limit, or
// one with invalid UTF-8 or NUL bytes, is returned as a *LineError.
func (r *Reader) nextLine() (rawLine, error) {
	for {
		l, err := r.readLine(nil)
		if err != nil {
			return l, err
		}
		if l.tooLong {
			r.records++
			return l, r.tooLongError(l)
		}
		if isBlank(l.b) {
			continue
		}
		r.records++
		if reason := badBytes(l.b); reason != "" {
			return l, r.lineError(l.n, "%s", reason)
		}
		return l, nil
	}
}
