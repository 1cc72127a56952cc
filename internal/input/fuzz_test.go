package input

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzReader(f *testing.F) {
	seeds := []string{
		`{"id":"a","prompt":"hello","system":"s","max_tokens":5,"metadata":{"k":"v"}}` + "\n" + `{"prompt":"x"}`,
		`{"custom_id":"r1","body":{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"}]}],"max_tokens":3}}`,
		"id,prompt,system,max_tokens,extra\n1,\"a,\"\"b\"\"\nc\",s,3,e\n2,plain,,,\n",
		"first prompt\n\nsecond prompt\r\n",
		"\ufeff{\"prompt\":\"bom\"}\n", "{\"prompt\":\"cut", "[1,2]\n", "prompt\n\"unterminated\n",
		"{\"prompt\":\"a\\u0000\"}\n", "\xff\xfe\n", "a\x00b\n", "", "\n\n", "id,prompt\n1,x\n1,y\n",
	}
	for i, s := range seeds {
		for sel := range 5 {
			f.Add([]byte(s), uint8(sel+i*16))
		}
	}
	names := []string{"-", "in.jsonl", "in.csv", "in.txt", "in.json", "in"}
	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		format := Formats[int(sel)%len(Formats)]
		name := names[int(sel>>4)%len(names)]
		opts := Options{}
		if sel&8 != 0 {
			opts = Options{MaxLineBytes: 48}
		}
		rd, err := NewReader(bytes.NewReader(data), name, format, opts)
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("NewReader error %T %v is not a *FileError", err, err)
			}
			return
		}
		ids := map[string]bool{}
		lastLine := 0
		for calls := 0; ; calls++ {
			if calls > bytes.Count(data, []byte("\n"))+2 {
				t.Fatalf("more records than lines")
			}
			job, err := rd.Next()
			if err == io.EOF {
				return
			}
			var le *LineError
			var fe *FileError
			switch {
			case errors.As(err, &le):
				if le.Line <= lastLine || le.Reason == "" || le.File == "" {
					t.Fatalf("line error %v after line %d", le, lastLine)
				}
				lastLine = le.Line
				continue
			case errors.As(err, &fe):
				return
			case err != nil:
				t.Fatalf("error %T %v is neither a *LineError nor a *FileError", err, err)
			}
			if rd.Line() <= lastLine {
				t.Fatalf("job on line %d after line %d", rd.Line(), lastLine)
			}
			lastLine = rd.Line()
			switch {
			case !utf8.ValidString(job.Prompt) || !utf8.ValidString(job.System) || !utf8.ValidString(job.ID):
				t.Fatalf("invalid UTF-8 in %+v", job)
			case strings.TrimSpace(job.Prompt) == "":
				t.Fatalf("empty prompt in %+v", job)
			case strings.ContainsRune(job.Prompt+job.System, 0):
				t.Fatalf("NUL in %+v", job)
			case checkID(job.ID) != "":
				t.Fatalf("bad id %q: %s", job.ID, checkID(job.ID))
			case ids[job.ID]:
				t.Fatalf("duplicate id %q", job.ID)
			case job.MaxTokens < 0:
				t.Fatalf("negative max_tokens in %+v", job)
			case job.Metadata != nil && (!json.Valid(job.Metadata) || kindOf(job.Metadata) != "object"):
				t.Fatalf("metadata %q is not a JSON object", job.Metadata)
			case bytes.Contains(job.Metadata, []byte(`\u0000`)) && hasNULEscape(job.Metadata):
				t.Fatalf("metadata %q has a NUL escape", job.Metadata)
			}
			ids[job.ID] = true
		}
	})
}

// simpleSeeds are lines simpleJSONL must take (the first group) or leave to
// json.Unmarshal (the second); FuzzSimpleJSONL checks both on every input.
var simpleSeeds = [][]string{{
	`{"id":"a","prompt":"hello"}`,
	` { "id" : 12 , "prompt" : "p" , "system" : "s" , "max_tokens" : 0 , "metadata" : {"k":[1,{"x":"}"}]} } `,
	`{"prompt":"tab\tand \"quotes\" \\ \u00e9 \ud83d\ude00","id":"\u0041"}`,
	`{"prompt":"x","id":-7,"max_tokens":-3}`,
	`{"prompt":""}`,
	"{\"prompt\":\"caf\xc3\xa9\"}",
	"{\"prompt\":\"bad \xff utf8\"}", // U+FFFD, as json.Unmarshal makes it
}, {
	`{"ID":"a","prompt":"p"}`, `{"id":"a","id":"b","prompt":"p"}`, `{"prompt":"p","lang":"fr"}`,
	`{"prompt":null}`, `{"prompt":"p","id":null}`, `{"prompt":"p","id":1.5}`, `{"prompt":"p","id":1e3}`,
	`{"prompt":"p","id":01}`, `{"prompt":"p","max_tokens":99999999999999999999}`, `{"prompt":"p","metadata":[1]}`,
	`{"prompt":"p","metadata":{"a":}}`, `{"prompt":"p"} x`, `{"prompt":"p",}`, `{"prompt":"p"`, `{}`, `null`,
	"{\"prompt\":\"a\x01b\"}", `{"prompt":"unterminated\"}`, `{"pr\u006fmpt":"p"}`,
	`{"prompt":"p","system":5}`, `{"prompt":"p" "id":"a"}`, `["prompt"]`, "\ufeff{\"prompt\":\"bom\"}",
}}

// simpleJSONL gives the record json.Unmarshal gives, for every line it
// takes, and takes the common lines.
func FuzzSimpleJSONL(f *testing.F) {
	for _, group := range simpleSeeds {
		for _, s := range group {
			f.Add([]byte(s))
		}
	}
	for _, s := range simpleSeeds[0] {
		if _, ok := simpleJSONL([]byte(s)); !ok {
			f.Errorf("simpleJSONL did not take %s", s)
		}
	}
	for _, s := range simpleSeeds[1] {
		if _, ok := simpleJSONL([]byte(s)); ok {
			f.Errorf("simpleJSONL took %s", s)
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		// idFrom decodes a plain string itself: the same id as json.Unmarshal.
		if kindOf(line) == "string" {
			var want string
			werr := json.Unmarshal(line, &want)
			got, reason := idFrom(`"id"`, line, 1)
			switch {
			case werr != nil && reason == "":
				t.Fatalf("idFrom(%q) took an invalid string: %q", line, got)
			case werr == nil && checkID(want) == "" && (got != want || reason != ""):
				t.Fatalf("idFrom(%q) = %q %q, json.Unmarshal %q", line, got, reason, want)
			}
		}
		got, ok := simpleJSONL(line)
		if !ok {
			return
		}
		var want jsonlRecord
		if err := json.Unmarshal(line, &want); err != nil {
			t.Fatalf("simpleJSONL took %q, which json.Unmarshal refuses: %v", line, err)
		}
		str := func(p *string) string {
			if p == nil {
				return "<nil>"
			}
			return *p
		}
		num := func(p *int64) string {
			if p == nil {
				return "<nil>"
			}
			return strconv.FormatInt(*p, 10)
		}
		if str(got.Prompt) != str(want.Prompt) || str(got.System) != str(want.System) ||
			num(got.MaxTokens) != num(want.MaxTokens) || !bytes.Equal(got.ID, want.ID) || !bytes.Equal(got.Metadata, want.Metadata) {
			t.Fatalf("line %q: simpleJSONL %q %q %s %q %q, json.Unmarshal %q %q %s %q %q", line,
				str(got.Prompt), str(got.System), num(got.MaxTokens), got.ID, got.Metadata,
				str(want.Prompt), str(want.System), num(want.MaxTokens), want.ID, want.Metadata)
		}
		if meta, _ := withExtraFields(line, nil); meta != nil {
			t.Fatalf("simpleJSONL took %q, which has other fields: %s", line, meta)
		}
	})
}
