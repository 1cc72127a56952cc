// Package labels reads per-prompt correctness labels: for each prompt, which
// models answered it correctly. They are what a learned router trains on and
// what misrouting is measured against.
//
// Two file layouts are read:
//
//   - RouteLLM's evaluation CSV as it is published: a header
//     `prompt,<model>,<model>,...`, one row per prompt, True/False per model
//     column. Columns named `<model>_response` hold the answers and are
//     ignored, as is an `id` column except to name the item; an unnamed first
//     column (a pandas index) names the item too. Without either, an item's id
//     is the line its record starts on, as enqueue numbers CSV prompts.
//   - JSONL, one object per line: {"id": "q1", "prompt": "...",
//     "correct": {"<model>": true, ...}}. The id defaults to the line number.
//
// A bad row is reported with its file and line and skipped; the good rows are
// kept.
package labels

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Item is one labelled prompt.
type Item struct {
	ID      string
	Prompt  string
	Correct map[string]bool // model -> answered correctly
	Line    int             // line of the file the item starts on
}

// Set is the labels read from one file.
type Set struct {
	Name   string   // file name, for messages
	Models []string // models in the order the file first names them
	Items  []Item
	Bad    []error // one *LineError per skipped row
}

// LineError is a row of a labels file that was skipped.
type LineError struct {
	File   string
	Line   int
	Reason string
}

func (e *LineError) Error() string { return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Reason }

// Format is a labels file layout.
type Format int

// Layouts; Auto looks at the first non-blank byte: '{' is JSONL, anything
// else CSV.
const (
	Auto Format = iota
	CSV
	JSONL
)

// Read reads a whole labels file. It fails only when the file cannot be read
// at all (no header, no prompt column); bad rows land in Set.Bad.
func Read(r io.Reader, name string, f Format) (*Set, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if f == Auto {
		f = sniff(br)
	}
	s := &Set{Name: name}
	var err error
	if f == JSONL {
		err = s.readJSONL(br)
	} else {
		err = s.readCSV(br)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

func sniff(br *bufio.Reader) Format {
	for n := 1; ; n++ {
		b, err := br.Peek(n)
		if len(b) < n || err != nil {
			return CSV
		}
		c := b[n-1]
		if n <= 3 && bytes.HasPrefix([]byte("\xef\xbb\xbf"), b) { // UTF-8 byte order mark
			continue
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return JSONL
		}
		return CSV
	}
}

// ParseBool reads a CSV cell as RouteLLM writes it (True/False) and the usual
// spellings (true, false, 1, 0).
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "1.0", "yes":
		return true, true
	case "false", "0", "0.0", "no":
		return false, true
	}
	return false, false
}

func (s *Set) bad(line int, format string, args ...any) {
	s.Bad = append(s.Bad, &LineError{File: s.Name, Line: line, Reason: fmt.Sprintf(format, args...)})
}

func (s *Set) readCSV(r io.Reader) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked here, with a clearer message
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: empty labels file", s.Name)
	}
	if err != nil {
		return fmt.Errorf("%s: header: %w", s.Name, err)
	}
	header = slices.Clone(header)
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	promptCol, idCol := -1, -1
	var modelCols []int
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		switch {
		case h == "prompt":
			if promptCol >= 0 {
				return fmt.Errorf("%s:1: header names the prompt column twice", s.Name)
			}
			promptCol = i
		case h == "id" || (h == "" && i == 0):
			idCol = i
		case h == "":
			return fmt.Errorf("%s:1: column %d has no name", s.Name, i+1)
		case strings.HasSuffix(h, "_response"):
		default:
			if slices.Contains(s.Models, h) {
				return fmt.Errorf("%s:1: model column %q is named twice", s.Name, h)
			}
			s.Models = append(s.Models, h)
			modelCols = append(modelCols, i)
		}
	}
	if promptCol < 0 {
		return fmt.Errorf("%s:1: no prompt column (want the RouteLLM layout prompt,<model>,<model>,...)", s.Name)
	}
	if len(modelCols) == 0 {
		return fmt.Errorf("%s:1: no model columns beside prompt", s.Name)
	}
	seen := make(map[string]int)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		line, _ := cr.FieldPos(0)
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			if errors.Is(pe.Err, csv.ErrFieldCount) {
				s.bad(pe.StartLine, "%v", pe.Err)
				continue
			}
			// A broken quote leaves the rest of the file unparseable.
			s.bad(pe.StartLine, "%v; the rest of the file is not read", pe.Err)
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		if len(rec) != len(header) {
			s.bad(line, "%d fields, the header has %d", len(rec), len(header))
			continue
		}
		it := Item{ID: strconv.Itoa(line), Prompt: rec[promptCol], Line: line, Correct: make(map[string]bool, len(modelCols))}
		if idCol >= 0 && strings.TrimSpace(rec[idCol]) != "" {
			it.ID = strings.TrimSpace(rec[idCol])
		}
		ok := true
		for k, c := range modelCols {
			v, valid := parseBool(rec[c])
			if !valid {
				s.bad(line, "column %q: want True or False, got %q", s.Models[k], clip(rec[c]))
				ok = false
				break
			}
			it.Correct[s.Models[k]] = v
		}
		if ok && s.check(&it, seen) {
			s.Items = append(s.Items, it)
		}
	}
}

// check refuses empty prompts and repeated ids.
func (s *Set) check(it *Item, seen map[string]int) bool {
	if strings.TrimSpace(it.Prompt) == "" {
		s.bad(it.Line, "empty prompt")
		return false
	}
	if first, dup := seen[it.ID]; dup {
		s.bad(it.Line, "id %q is already used on line %d", it.ID, first)
		return false
	}
	seen[it.ID] = it.Line
	return true
}

type jsonItem struct {
	ID      json.RawMessage `json:"id"`
	Prompt  *string         `json:"prompt"`
	Correct json.RawMessage `json:"correct"`
}

func (s *Set) readJSONL(r *bufio.Reader) error {
	seen := make(map[string]int)
	models := make(map[string]bool)
	for line := 1; ; line++ {
		b, err := r.ReadBytes('\n')
		if len(b) == 0 && errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%s:%d: %w", s.Name, line, err)
		}
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
		}
		if t := bytes.TrimSpace(b); len(t) == 0 {
			continue
		}
		var ji jsonItem
		if err := json.Unmarshal(b, &ji); err != nil {
			s.bad(line, "not a JSON object: %v", err)
			continue
		}
		it := Item{ID: strconv.Itoa(line), Line: line}
		if id, ok := jsonID(ji.ID); !ok {
			s.bad(line, "id: want a string or a number, got %s", clip(string(ji.ID)))
			continue
		} else if id != "" {
			it.ID = id
		}
		if ji.Prompt == nil {
			s.bad(line, "missing \"prompt\"")
			continue
		}
		it.Prompt = *ji.Prompt
		keys, vals, err := orderedBools(ji.Correct)
		if err != nil {
			s.bad(line, "correct: %v", err)
			continue
		}
		it.Correct = make(map[string]bool, len(keys))
		for i, m := range keys {
			it.Correct[m] = vals[i]
		}
		if !s.check(&it, seen) {
			continue
		}
		for _, m := range keys {
			if !models[m] {
				models[m] = true
				s.Models = append(s.Models, m)
			}
		}
		s.Items = append(s.Items, it)
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

func jsonID(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", true
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return "", false
	}
	return n.String(), true
}

// orderedBools decodes a JSON object of model -> bool, keeping the key
// order (the first two models of a file are the default cheap and strong).
func orderedBools(raw json.RawMessage) ([]string, []bool, error) {
	const want = "want an object of model -> true/false with at least one model"
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, nil, errors.New(want)
	}
	var keys []string
	var vals []bool
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, errors.New(want)
		}
		k, _ := t.(string)
		v, err := dec.Token()
		b, isBool := v.(bool)
		switch {
		case err != nil:
			return nil, nil, errors.New(want)
		case strings.TrimSpace(k) == "":
			return nil, nil, errors.New("empty model name")
		case !isBool:
			return nil, nil, fmt.Errorf("%s: want true or false", k)
		case slices.Contains(keys, k):
			return nil, nil, fmt.Errorf("%s: named twice", k)
		}
		keys = append(keys, k)
		vals = append(vals, b)
	}
	if len(keys) == 0 {
		return nil, nil, errors.New(want)
	}
	return keys, vals, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
