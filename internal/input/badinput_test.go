package input

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestBadInput feeds every kind of bad record and file that users send and
// checks the exact file:line and reason, and that the good records around a
// bad one still come through.
func TestBadInput(t *testing.T) {
	t.Parallel()
	type wantErr struct {
		line   int
		reason string
	}
	const good1, good2 = `{"id":"a","prompt":"first"}`, `{"id":"z","prompt":"last"}`
	jsonl := func(bad ...string) string { // bad lines between two good ones, from line 2
		return good1 + "\n" + strings.Join(bad, "\n") + "\n" + good2 + "\n"
	}
	const batchGood = `{"custom_id":"a","body":{"messages":[{"role":"user","content":"hi"}]}}`
	tests := []struct {
		name   string
		file   string
		format Format
		opts   Options
		input  string
		errs   []wantErr
		ids    []string
		fatal  error  // errors.Is target for the error that ends the file
		text   string // and its exact text
	}{
		{name: "invalid JSON", input: jsonl(`{"prompt": "x",}`),
			errs: []wantErr{{2, `invalid JSON at column 16: invalid character '}' looking for beginning of object key string`}}},
		{name: "two objects on one line", input: jsonl(`{"prompt":"x"} {"prompt":"y"}`),
			errs: []wantErr{{2, "invalid JSON at column 16: invalid character '{' after top-level value"}}},
		{name: "line ends inside a value", input: jsonl(`{"prompt": "x`),
			errs: []wantErr{{2, "invalid JSON: the line ends at column 13 inside an unfinished value"}}},
		{name: "truncated last line", input: good1 + "\n" + `{"id":"b","prompt":"cut o`,
			errs: []wantErr{{2, "truncated last line: the JSON stops at column 25 and there is no newline at the end of the file"}}, ids: []string{"a"}},
		{name: "last line without newline is fine when complete", input: good1 + "\n" + good2, ids: []string{"a", "z"}},
		{name: "not an object", input: jsonl(`["prompt"]`, `"prompt"`, `42`, `null`),
			errs: []wantErr{{2, "want a JSON object, got array"}, {3, "want a JSON object, got string"}, {4, "want a JSON object, got number"}, {5, "want a JSON object, got null"}}},
		{name: "prompt is a number", input: jsonl(`{"prompt": 7}`), errs: []wantErr{{2, `"prompt" must be a string, got number`}}},
		{name: "prompt is an object", input: jsonl(`{"prompt": {"text":"x"}}`), errs: []wantErr{{2, `"prompt" must be a string, got object`}}},
		{name: "missing prompt", input: jsonl(`{"id":"b","text":"x"}`, `{"prompt":null}`),
			errs: []wantErr{{2, `missing "prompt"`}, {3, `missing "prompt"`}}},
		{name: "empty prompt", input: jsonl(`{"prompt": ""}`), errs: []wantErr{{2, `"prompt" is empty`}}},
		{name: "whitespace-only prompt", input: jsonl(`{"prompt": " \t\n\u00a0 "}`), errs: []wantErr{{2, `"prompt" is only whitespace`}}},
		{name: "invalid UTF-8", input: jsonl("{\"prompt\": \"caf\xe9\"}"), errs: []wantErr{{2, "invalid UTF-8 at column 16"}}},
		{name: "NUL byte", input: jsonl("{\"prompt\": \"a\x00b\"}"), errs: []wantErr{{2, "NUL byte at column 14"}}},
		{name: "NUL escape in prompt", input: jsonl(`{"prompt": "a\u0000b"}`), errs: []wantErr{{2, `"prompt" contains a NUL character`}}},
		{name: "NUL escape in metadata", input: jsonl(`{"prompt": "x", "metadata": {"k": "a\u0000"}}`, `{"id":"ok","prompt": "x", "metadata": {"k": "a\\u0000"}}`),
			errs: []wantErr{{2, `"metadata" contains \u0000, which cannot be stored`}}, ids: []string{"a", "ok", "z"}},
		{name: "line longer than the limit", opts: Options{MaxLineBytes: 100},
			input: jsonl(`{"prompt": "` + strings.Repeat("x", 200) + `"}`),
			errs:  []wantErr{{2, "line is 214 bytes, over the limit of 100"}}},
		{name: "line longer than any buffer", input: jsonl(`{"prompt": "` + strings.Repeat("x", 200_000) + `"}`), opts: Options{MaxLineBytes: 150_000},
			errs: []wantErr{{2, "line is 200014 bytes, over the limit of 150000"}}},
		{name: "system is not a string", input: jsonl(`{"prompt": "x", "system": ["be brief"]}`), errs: []wantErr{{2, `"system" must be a string, got array`}}},
		{name: "max_tokens negative", input: jsonl(`{"prompt": "x", "max_tokens": -1}`), errs: []wantErr{{2, `"max_tokens" must be a non-negative integer, got -1`}}},
		{name: "max_tokens fraction", input: jsonl(`{"prompt": "x", "max_tokens": 1.5}`), errs: []wantErr{{2, `"max_tokens" must be a non-negative integer, got number 1.5`}}},
		{name: "max_tokens string", input: jsonl(`{"prompt": "x", "max_tokens": "512"}`), errs: []wantErr{{2, `"max_tokens" must be a non-negative integer, got string`}}},
		{name: "max_tokens huge", input: jsonl(`{"prompt": "x", "max_tokens": 99999999999}`), errs: []wantErr{{2, `"max_tokens" is 99999999999, over the limit of 2147483647`}}},
		{name: "metadata not an object", input: jsonl(`{"prompt": "x", "metadata": [1]}`, `{"prompt": "x", "metadata": "tag"}`),
			errs: []wantErr{{2, `"metadata" must be an object, got array`}, {3, `"metadata" must be an object, got string`}}},
		{name: "id of the wrong type", input: jsonl(`{"id": {"n": 1}, "prompt": "x"}`, `{"id": true, "prompt": "x"}`),
			errs: []wantErr{{2, `"id" must be a string or number, got object`}, {3, `"id" must be a string or number, got boolean`}}},
		{name: "id empty", input: jsonl(`{"id": "", "prompt": "x"}`), errs: []wantErr{{2, `"id" is empty`}}},
		{name: "id with a line break", input: jsonl(`{"id": "a\nb", "prompt": "x"}`), errs: []wantErr{{2, `"id" contains the control character '\n'`}}},
		{name: "id too long", input: jsonl(`{"id": "` + strings.Repeat("i", 257) + `", "prompt": "x"}`), errs: []wantErr{{2, `"id" is 257 bytes, over the limit of 256`}}},
		{name: "duplicate id", input: jsonl(`{"id": "a", "prompt": "again"}`, `{"id": "b", "prompt": "x"}`, `{"id": "b", "prompt": "x"}`),
			errs: []wantErr{{2, `duplicate id "a"`}, {4, `duplicate id "b"`}}, ids: []string{"a", "b", "z"}},
		{name: "explicit id equal to a default id", input: `{"id": "2", "prompt": "x"}` + "\n" + `{"prompt": "y"}` + "\n",
			errs: []wantErr{{2, `duplicate id "2"`}}, ids: []string{"2"}},
		{name: "numeric ids keep their spelling", input: `{"id": 7, "prompt": "x"}` + "\n" + `{"id": 7.0, "prompt": "y"}` + "\n" + `{"id": "7", "prompt": "z"}` + "\n",
			errs: []wantErr{{3, `duplicate id "7"`}}, ids: []string{"7", "7.0"}},
		{name: "blank lines are skipped", input: "\n" + good1 + "\n  \n\t\r\n" + `{"prompt":"x"}` + "\n\n", ids: []string{"a", "5"}},

		// OpenAI batch lines.
		{name: "batch: no user message", file: "b.jsonl", format: FormatOpenAIBatch,
			input: batchGood + "\n" + `{"custom_id":"b","body":{"messages":[{"role":"system","content":"be brief"},{"role":"assistant","content":"ok"}]}}` + "\n",
			errs:  []wantErr{{2, `no "user" message in "body.messages"`}}, ids: []string{"a"}},
		{name: "batch: missing custom_id", file: "b.jsonl", format: FormatOpenAIBatch,
			input: `{"body":{"messages":[{"role":"user","content":"hi"}]}}` + "\n" + batchGood + "\n",
			errs:  []wantErr{{1, `missing "custom_id"`}}, ids: []string{"a"}},
		{name: "batch: missing body", file: "b.jsonl", format: FormatOpenAIBatch, input: `{"custom_id":"x"}` + "\n" + batchGood + "\n",
			errs: []wantErr{{1, `missing "body"`}}, ids: []string{"a"}},
		{name: "batch: messages not an array", file: "b.jsonl", format: FormatOpenAIBatch, input: batchGood + "\n" + `{"custom_id":"x","body":{"messages":"hi"}}` + "\n",
			errs: []wantErr{{2, `"body.messages" must be an array, got string`}}, ids: []string{"a"}},
		{name: "batch: image part", file: "b.jsonl", format: FormatOpenAIBatch,
			input: `{"custom_id":"x","body":{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:"}}]}]}}` + "\n" + batchGood + "\n",
			errs:  []wantErr{{1, `"body.messages[0].content"[0] has type "image_url"; only text parts are supported`}}, ids: []string{"a"}},
		{name: "batch: empty user text", file: "b.jsonl", format: FormatOpenAIBatch,
			input: `{"custom_id":"x","body":{"messages":[{"role":"user","content":""}]}}` + "\n" + batchGood + "\n",
			errs:  []wantErr{{1, "the user message text is empty"}}, ids: []string{"a"}},
		{name: "batch: duplicate custom_id", file: "b.jsonl", format: FormatOpenAIBatch, input: batchGood + "\n" + batchGood + "\n",
			errs: []wantErr{{2, `duplicate id "a"`}}, ids: []string{"a"}},

		// CSV.
		{name: "csv: ragged rows", file: "p.csv", input: "id,prompt\na,first\nb,second,extra\nc\nd,fourth\n",
			errs: []wantErr{{3, "row has 3 fields, the header has 2"}, {4, "row has 1 fields, the header has 2"}}, ids: []string{"a", "d"}},
		{name: "csv: bare quote", file: "p.csv", input: "id,prompt\na,say \"hi\"\nb,ok\n",
			errs: []wantErr{{2, `bare " in an unquoted field at column 7`}}, ids: []string{"b"}},
		{name: "csv: text after a closing quote", file: "p.csv", input: "id,prompt\na,\"x\"y\nb,ok\n",
			errs: []wantErr{{2, `unexpected 'y' after a closing quote at column 6`}}, ids: []string{"b"}},
		{name: "csv: unterminated quote at the end", file: "p.csv", input: "id,prompt\nb,ok\na,\"never\nends\n",
			errs: []wantErr{{3, "unterminated quoted field (the file ends inside it)"}}, ids: []string{"b"}},
		{name: "csv: empty prompt cell", file: "p.csv", input: "id,prompt\na,\nb,ok\n",
			errs: []wantErr{{2, `"prompt" is empty`}}, ids: []string{"b"}},
		{name: "csv: bad max_tokens", file: "p.csv", input: "prompt,max_tokens\nx,many\ny,-3\nz,10\n",
			errs: []wantErr{{2, `"max_tokens" must be a non-negative integer, got "many"`}, {3, `"max_tokens" must be a non-negative integer, got -3`}}, ids: []string{"4"}},
		{name: "csv: invalid UTF-8", file: "p.csv", input: "prompt\nok\nbad \xff\n", errs: []wantErr{{3, "invalid UTF-8 at column 5"}}, ids: []string{"2"}},
		{name: "csv: record over the limit", file: "p.csv", opts: Options{MaxLineBytes: 50},
			input: "id,prompt\na,\"" + strings.Repeat("long line\n", 10) + "\"\nb,ok\n",
			errs:  []wantErr{{2, "record (lines 2-12) is 104 bytes, over the limit of 50"}}, ids: []string{"b"}},
		{name: "csv: line over the limit inside a quoted field", file: "p.csv", opts: Options{MaxLineBytes: 50},
			input: "id,prompt\na,\"x\n" + strings.Repeat("y", 60) + "\n\"\"z\"\nb,ok\n",
			errs:  []wantErr{{2, "record (lines 2-4) is 70 bytes, over the limit of 50"}}, ids: []string{"b"}},
		{name: "csv: long line", file: "p.csv", opts: Options{MaxLineBytes: 10}, input: "id,prompt\na,0123456789\nb,ok\n",
			errs: []wantErr{{2, "line is 12 bytes, over the limit of 10"}}, ids: []string{"b"}},
		{name: "csv: never-ending quote over the limit", file: "p.csv", opts: Options{MaxLineBytes: 20}, input: "id,prompt\nb,ok\na,\"" + strings.Repeat("more\n", 10),
			errs: []wantErr{{3, "record (lines 3-12) is 52 bytes, over the limit of 20"}}, ids: []string{"b"}},
		{name: "csv: duplicate id", file: "p.csv", input: "id,prompt\na,x\na,y\n", errs: []wantErr{{3, `duplicate id "a"`}}, ids: []string{"a"}},
		{name: "csv: no prompt column", file: "p.csv", input: "id,text\na,hello\n",
			fatal: ErrNoPromptColumn, text: `p.csv: no "prompt" column in the CSV header`},
		{name: "csv: repeated column", file: "p.csv", input: "prompt,Prompt\na,b\n",
			text: `p.csv: header row: column 2 "Prompt" repeats column 1`},
		{name: "csv: header row too long", file: "p.csv", opts: Options{MaxLineBytes: 10}, input: "id,prompt,system\na,x,y\n",
			text: "p.csv: header row (line 1): line is 16 bytes, over the limit of 10"},
		{name: "csv: header row with a bad quote", file: "p.csv", input: "id,\"prompt\nb,ok\n",
			text: "p.csv: header row (line 1): unterminated quoted field (the file ends inside it)"},
		{name: "csv: header row with invalid UTF-8", file: "p.csv", input: "id,pr\xffompt\nb,ok\n",
			text: "p.csv: header row: invalid UTF-8 at column 6"},
		{name: "csv: header only", file: "p.csv", input: "id,prompt\n", fatal: ErrEmpty, text: "p.csv: empty (a header row and no data)"},

		// Text.
		{name: "text: invalid UTF-8 and NUL", file: "p.txt", input: "one\n\xc3\x28\ntwo\x00\n\nthree\n",
			errs: []wantErr{{2, "invalid UTF-8 at column 1"}, {3, "NUL byte at column 4"}}, ids: []string{"1", "5"}},
		{name: "text: line over the limit", file: "p.txt", opts: Options{MaxLineBytes: 8}, input: "short\n0123456789\nok\n",
			errs: []wantErr{{2, "line is 10 bytes, over the limit of 8"}}, ids: []string{"1", "3"}},

		// Whole files.
		{name: "empty file", input: "", fatal: ErrEmpty, text: "p.jsonl: empty"},
		{name: "only blank lines", file: "p.txt", input: "\n \n\r\n", fatal: ErrEmpty, text: "p.txt: empty"},
		{name: "empty stdin", file: "-", format: FormatAuto, input: "", fatal: ErrEmpty, text: "stdin: empty"},
		{name: "unknown format", format: "xml", input: good1, fatal: ErrUnknownFormat,
			text: `p.jsonl: unknown format "xml" (want auto, jsonl, openai-batch, csv or text)`},
		{name: "unknown extension", file: "p.parquet", format: FormatAuto, input: good1, fatal: ErrUnknownFormat,
			text: `p.parquet: unknown format: cannot tell it from the extension ".parquet"; name one (jsonl, openai-batch, csv or text)`},
		{name: "JSON array file", file: "p.json", format: FormatAuto, input: "[\n" + good1 + ",\n" + good2 + "\n]\n", fatal: ErrJSONArray,
			text: "p.json: a JSON array, not JSON Lines (one object per line)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.file == "" {
				tt.file = "p.jsonl"
			}
			if tt.format == "" {
				tt.format = FormatAuto
			}
			res := readAll(t, tt.file, tt.format, tt.input, tt.opts)
			name := tt.file
			if name == "-" {
				name = "stdin"
			}
			var got []string
			for _, e := range res.errs {
				got = append(got, e.Error())
			}
			var want []string
			for _, e := range tt.errs {
				want = append(want, name+":"+strconv.Itoa(e.line)+": "+e.reason)
			}
			if len(got) != len(want) {
				t.Fatalf("line errors:\n got  %q\n want %q", got, want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], want[i]) {
					t.Errorf("line error %d:\n got  %q\n want %q...", i, got[i], want[i])
				}
			}
			switch {
			case tt.fatal == nil && tt.text == "":
				if res.fatal != nil {
					t.Fatalf("reading ended with %v", res.fatal)
				}
			default:
				if tt.fatal != nil && !errors.Is(res.fatal, tt.fatal) {
					t.Errorf("reading ended with %v, want an error wrapping %v", res.fatal, tt.fatal)
				}
				var fe *FileError
				if !errors.As(res.fatal, &fe) || fe.File != name {
					t.Errorf("reading ended with %#v, want a *FileError for %s", res.fatal, name)
				}
				if res.fatal == nil || res.fatal.Error() != tt.text {
					t.Errorf("reading ended with %q, want %q", res.fatal, tt.text)
				}
			}
			wantIDs := tt.ids
			if wantIDs == nil && tt.fatal == nil && tt.text == "" {
				wantIDs = []string{"a", "z"}
			}
			if !slices.Equal(res.ids(), wantIDs) {
				t.Errorf("ids = %q, want %q", res.ids(), wantIDs)
			}
			for _, j := range res.jobs {
				if j.Prompt == "" || j.ID == "" {
					t.Errorf("job %+v has an empty prompt or id", j)
				}
			}
		})
	}
}
