package input

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// csvState is the header of a CSV input and the buffers reused per record.
type csvState struct {
	header   bool // the header row has been read
	columns  int
	prompt   int // column indexes; -1 when absent
	id       int
	system   int
	maxTok   int
	metaKeys []string // JSON key per column, "" for the named columns above

	rec     []byte   // the current record, lines joined by "\n"
	fields  [][]byte // the fields of the current record
	scratch []byte   // unquoted field text
}

// csvScan is the state of an RFC 4180 tokenizer between bytes. It is run
// over every byte of a CSV input, also over lines too long to keep, so that
// a record's end is found without holding the record: a record ends at a
// line end that is not inside a quoted field.
type csvScan uint8

const (
	csvFieldStart csvScan = iota // at the start of a field
	csvUnquoted                  // in an unquoted field (a quote here is an error, reported later)
	csvQuoted                    // in a quoted field
	csvQuoteSeen                 // a quote in a quoted field: its end, or the first of a doubled quote
)

// scan advances the tokenizer over b.
func (st csvScan) scan(b []byte) csvScan {
	for _, c := range b {
		switch st {
		case csvFieldStart, csvUnquoted:
			switch {
			case c == ',':
				st = csvFieldStart
			case c == '"' && st == csvFieldStart:
				st = csvQuoted
			default:
				st = csvUnquoted
			}
		case csvQuoted:
			if c == '"' {
				st = csvQuoteSeen
			}
		case csvQuoteSeen:
			switch c {
			case '"':
				st = csvQuoted
			case ',':
				st = csvFieldStart
			default:
				st = csvUnquoted
			}
		}
	}
	return st
}

// readRecord reads one CSV record, which spans several lines when a quoted
// field holds line ends. It returns the first line's number. A record
// longer than MaxLineBytes is read to its end, discarded and reported.
func (r *Reader) readRecord() (rec []byte, n int, err error) {
	cs := r.csv
	for {
		st := csvFieldStart
		l, err := r.readLine(&st)
		if err != nil {
			return nil, 0, err
		}
		if !l.tooLong && isBlank(l.b) {
			continue // blank lines are skipped, as in the other formats
		}
		r.records++
		n = l.n
		tooLong := l.tooLong
		size := l.length
		cs.rec = append(cs.rec[:0], l.b...)
		for st == csvQuoted {
			next, err := r.readLine(&st)
			if errors.Is(err, io.EOF) {
				if tooLong {
					break
				}
				return nil, n, r.lineError(n, "unterminated quoted field (the file ends inside it)")
			}
			if err != nil {
				return nil, n, err
			}
			size += 1 + next.length
			if !tooLong && (next.tooLong || size > r.opts.MaxLineBytes) {
				tooLong = true
				cs.rec = cs.rec[:0]
			}
			if !tooLong {
				cs.rec = append(cs.rec, '\n')
				cs.rec = append(cs.rec, next.b...)
			}
		}
		if tooLong {
			if r.line == n {
				return nil, n, r.lineError(n, "line is %d bytes, over the limit of %d", size, r.opts.MaxLineBytes)
			}
			return nil, n, r.lineError(n, "record (lines %d-%d) is %d bytes, over the limit of %d", n, r.line, size, r.opts.MaxLineBytes)
		}
		return cs.rec, n, nil
	}
}

// splitCSV splits one record into fields, reusing fields and scratch. The
// fields point into rec or scratch. It returns a reason for a malformed
// record.
func splitCSV(rec []byte, fields [][]byte, scratch []byte) ([][]byte, []byte, string) {
	fields = fields[:0]
	scratch = scratch[:0]
	// Unquoted fields are slices of rec; quoted ones are copied into scratch
	// (with "" undoubled). Collect boundaries first, since scratch may move.
	type span struct {
		inScratch  bool
		start, end int
	}
	var spansBuf [32]span
	spans := spansBuf[:0]
	i := 0
	for {
		if i < len(rec) && rec[i] == '"' {
			start := len(scratch)
			col := i + 1
			i++
			for {
				j := bytes.IndexByte(rec[i:], '"')
				if j < 0 {
					return nil, scratch, fmt.Sprintf("unterminated quoted field at column %d", col)
				}
				scratch = append(scratch, rec[i:i+j]...)
				i += j + 1
				if i < len(rec) && rec[i] == '"' {
					scratch = append(scratch, '"')
					i++
					continue
				}
				break
			}
			spans = append(spans, span{true, start, len(scratch)})
			if i == len(rec) {
				break
			}
			if rec[i] != ',' {
				return nil, scratch, fmt.Sprintf(`unexpected %q after a closing quote at column %d`, rec[i], i+1)
			}
			i++
			continue
		}
		j := bytes.IndexByte(rec[i:], ',')
		end := len(rec)
		if j >= 0 {
			end = i + j
		}
		if q := bytes.IndexByte(rec[i:end], '"'); q >= 0 {
			return nil, scratch, fmt.Sprintf(`bare " in an unquoted field at column %d (quote the field and double the quote)`, i+q+1)
		}
		spans = append(spans, span{false, i, end})
		if j < 0 {
			break
		}
		i = end + 1
	}
	for _, s := range spans {
		if s.inScratch {
			fields = append(fields, scratch[s.start:s.end])
		} else {
			fields = append(fields, rec[s.start:s.end])
		}
	}
	return fields, scratch, ""
}

// nextCSV returns the next CSV data row, reading the header first.
func (r *Reader) nextCSV() (prompt.Job, error) {
	if r.csv == nil {
		r.csv = &csvState{}
	}
	cs := r.csv
	for {
		rec, n, err := r.readRecord()
		if err != nil {
			var le *LineError
			switch {
			case errors.Is(err, io.EOF) && cs.header && r.records == 1:
				return prompt.Job{}, &FileError{File: r.name, Err: fmt.Errorf("%w (a header row and no data)", ErrEmpty)}
			case !cs.header && errors.As(err, &le):
				// Without a header no row can be read: the file ends here.
				return prompt.Job{}, &FileError{File: r.name, Err: fmt.Errorf("header row (line %d): %s", le.Line, le.Reason)}
			}
			return prompt.Job{}, err
		}
		if reason := badBytes(rec); reason != "" {
			if !cs.header {
				return prompt.Job{}, &FileError{File: r.name, Err: fmt.Errorf("header row: %s", reason)}
			}
			return prompt.Job{}, r.lineError(n, "%s", reason)
		}
		var reason string
		cs.fields, cs.scratch, reason = splitCSV(rec, cs.fields, cs.scratch)
		if reason != "" {
			if !cs.header {
				return prompt.Job{}, &FileError{File: r.name, Err: fmt.Errorf("header row: %s", reason)}
			}
			return prompt.Job{}, r.lineError(n, "%s", reason)
		}
		if !cs.header {
			if err := r.readHeader(cs.fields); err != nil {
				return prompt.Job{}, err
			}
			continue
		}
		if len(cs.fields) != cs.columns {
			return prompt.Job{}, r.lineError(n, "row has %d fields, the header has %d", len(cs.fields), cs.columns)
		}
		return r.csvJob(n, cs.fields)
	}
}

// readHeader records the column layout.
func (r *Reader) readHeader(fields [][]byte) error {
	cs := r.csv
	cs.header = true
	cs.columns = len(fields)
	cs.prompt, cs.id, cs.system, cs.maxTok = -1, -1, -1, -1
	cs.metaKeys = make([]string, len(fields))
	seen := make(map[string]int)
	for i, f := range fields {
		name := strings.TrimSpace(string(f))
		if name == "" {
			name = "column_" + strconv.Itoa(i+1)
		}
		if j, dup := seen[strings.ToLower(name)]; dup {
			return &FileError{File: r.name, Err: fmt.Errorf("header row: column %d %q repeats column %d", i+1, name, j+1)}
		}
		seen[strings.ToLower(name)] = i
		switch strings.ToLower(name) {
		case "prompt":
			cs.prompt = i
		case "id":
			cs.id = i
		case "system":
			cs.system = i
		case "max_tokens":
			cs.maxTok = i
		default:
			cs.metaKeys[i] = name
		}
	}
	if cs.prompt < 0 {
		return &FileError{File: r.name, Err: ErrNoPromptColumn}
	}
	return nil
}

// csvJob turns a data row into a job.
func (r *Reader) csvJob(n int, fields [][]byte) (prompt.Job, error) {
	cs := r.csv
	job := prompt.Job{Prompt: string(fields[cs.prompt])}
	if reason := r.checkText(`"prompt"`, job.Prompt, true); reason != "" {
		return prompt.Job{}, r.lineError(n, "%s", reason)
	}
	if cs.system >= 0 {
		job.System = string(fields[cs.system])
		if reason := r.checkText(`"system"`, job.System, false); reason != "" {
			return prompt.Job{}, r.lineError(n, "%s", reason)
		}
	}
	if cs.maxTok >= 0 {
		if s := strings.TrimSpace(string(fields[cs.maxTok])); s != "" {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return prompt.Job{}, r.lineError(n, `"max_tokens" must be a non-negative integer, got %q`, s)
			}
			var reason string
			if job.MaxTokens, reason = checkMaxTokens(`"max_tokens"`, &v); reason != "" {
				return prompt.Job{}, r.lineError(n, "%s", reason)
			}
		}
	}
	job.ID = strconv.Itoa(n)
	if cs.id >= 0 {
		if id := strings.TrimSpace(string(fields[cs.id])); id != "" {
			if reason := checkID(id); reason != "" {
				return prompt.Job{}, r.lineError(n, "%s", reason)
			}
			job.ID = id
		}
	}
	var meta []byte
	for i, key := range cs.metaKeys {
		if key == "" {
			continue
		}
		if meta == nil {
			meta = append(meta, '{')
		} else {
			meta = append(meta, ',')
		}
		meta = appendJSONString(meta, key)
		meta = append(meta, ':')
		meta = appendJSONString(meta, string(fields[i]))
	}
	if meta != nil {
		job.Metadata = json.RawMessage(append(meta, '}'))
	}
	return r.accept(n, job)
}
