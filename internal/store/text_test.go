package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

func TestStorePromptsFalse(t *testing.T) {
	t.Parallel()
	st := setup(t, WithStorePrompts(false))
	const secret = "my SSN is 078-05-1120 — résumé"
	r := res("b", "p", prompt.TierSimple, prompt.StatusSucceeded, 1, 0, att(1, small, prompt.OutcomeOK, 0.001, 0))
	r.Job.Prompt, r.Job.System, r.Response = secret, "system "+secret, "reply "+secret
	mustWrite(t, st, r)

	got, _, err := st.Result(t.Context(), Key{"b", "p"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Prompt != nil || got.System != nil || got.Response != nil {
		t.Errorf("text stored with StorePrompts=false: %+v", got)
	}
	sum := sha256.Sum256([]byte(secret))
	if got.PromptSHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("prompt_sha256 = %s, want sha256 of the prompt", got.PromptSHA256)
	}
	if got.PromptChars != utf8.RuneCountInString(secret) || got.ResponseChars != utf8.RuneCountInString(r.Response) {
		t.Errorf("lengths %d/%d, want %d/%d", got.PromptChars, got.ResponseChars,
			utf8.RuneCountInString(secret), utf8.RuneCountInString(r.Response))
	}
	// No trace of the text in any row of any table.
	for _, table := range []string{"results", "request_log", "batches"} {
		if n := count(t, st, `SELECT count(*) FROM `+table+` t WHERE t::text LIKE '%078-05-1120%'`); n != 0 {
			t.Errorf("%s holds the prompt text", table)
		}
	}
	var buf bytes.Buffer
	if err := st.ExportJSONL(t.Context(), "b", &buf, IncludeText()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "078-05-1120") {
		t.Error("export shows the prompt text")
	}
}

// TestHostileText stores SQL metacharacters, quotes, control characters,
// NUL bytes, invalid UTF-8 and encoded surrogates in every text field and key.
// Postgres text cannot hold NUL or invalid UTF-8: the store strips NUL and
// replaces invalid sequences with U+FFFD, hashing and counting the original.
func TestHostileText(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	hostile := "'); DROP TABLE results; -- \" \\ \\x00 $1 %s \t\r\n\x01\x1b[31m \x00 nul \xff\xfe bad \xed\xa0\x80 surrogate 😀 ,\"quoted\"\n"
	cleaned := "'); DROP TABLE results; -- \" \\ \\x00 $1 %s \t\r\n\x01\x1b[31m  nul \uFFFD bad \uFFFD surrogate 😀 ,\"quoted\"\n"
	id := "id,with \"quotes\"\x00\xff;--"
	cleanID := "id,with \"quotes\"\uFFFD;--"
	batch := "b'\x00"

	r := res(batch, id, prompt.TierComplex, prompt.StatusSucceeded, 1, 0,
		att(1, large+hostile, prompt.OutcomeOK, 0.01, 0))
	r.Attempts[0].Error = hostile
	r.Job.Prompt, r.Job.System, r.Response, r.FinishReason, r.WorkerID = hostile, hostile, hostile, hostile, hostile
	r.ModelUsed = large + hostile
	r.Job.Metadata = json.RawMessage(`{"a":"x\u0000y","b":"\ud800","c\u0000":[1e400, 12345678901234567890],"d":"\u001b"}`)
	transient := res(batch, id+"2", prompt.TierComplex, "", 1, 0, att(1, hostile, prompt.Outcome(hostile), 0, 0))
	transient.Attempts[0].Error = hostile
	huge := res(batch, "huge", prompt.TierComplex, prompt.StatusFailed, 1, 0)
	huge.Job.Prompt = strings.Repeat("ünïcode \x00", 200_000)
	badMeta := res(batch, "badmeta", prompt.TierSimple, prompt.StatusFailed, 1, 0)
	badMeta.Job.Metadata = json.RawMessage("{not json\x00")

	got := mustWrite(t, st, r, transient, huge, badMeta)
	if got[0] != true || got[1] != false || got[2] != true || got[3] != true {
		t.Fatalf("write = %v", got)
	}
	row, ok, err := st.Result(ctx, Key{batch, id})
	if err != nil || !ok {
		t.Fatalf("result: %v %v", ok, err)
	}
	if row.PromptID != cleanID || row.BatchID != "b'" {
		t.Errorf("key stored as %q/%q, want %q/%q", row.BatchID, row.PromptID, "b'", cleanID)
	}
	for name, v := range map[string]*string{"prompt": row.Prompt, "system": row.System, "response": row.Response,
		"finish_reason": row.FinishReason, "worker_id": row.WorkerID} {
		if v == nil || *v != cleaned {
			t.Errorf("%s stored as %q, want %q", name, deref2(v), cleaned)
		}
	}
	sum := sha256.Sum256([]byte(hostile))
	if row.PromptSHA256 != hex.EncodeToString(sum[:]) || row.PromptChars != utf8.RuneCountInString(hostile) {
		t.Errorf("hash/length not of the original text")
	}
	var meta map[string]any
	dec := json.NewDecoder(bytes.NewReader(row.Metadata))
	dec.UseNumber()
	if err := dec.Decode(&meta); err != nil {
		t.Fatalf("metadata %s: %v", row.Metadata, err)
	}
	if meta["a"] != "xy" || meta["b"] != "\uFFFD" || meta["d"] != "\x1b" || meta["c"] == nil {
		t.Errorf("metadata = %s", row.Metadata)
	}
	if row, _, _ := st.Result(ctx, Key{batch, "badmeta"}); string(row.Metadata) != `"{not json"` {
		t.Errorf("invalid metadata stored as %s, want a JSON string", row.Metadata)
	}
	if row, _, _ := st.Result(ctx, Key{batch, "huge"}); len(*row.Prompt) != 200_000*len("ünïcode ") {
		t.Errorf("huge prompt stored with %d bytes", len(*row.Prompt))
	}
	var model, outcome, errText string
	if err := st.Pool().QueryRow(ctx, `SELECT model, outcome, error FROM request_log WHERE prompt_id = $1`, cleanID+"2").
		Scan(&model, &outcome, &errText); err != nil {
		t.Fatal(err)
	}
	if model != cleaned || outcome != cleaned || errText != cleaned {
		t.Errorf("request_log text not stored cleaned: %q %q %q", model, outcome, errText)
	}
	// The original (uncleaned) key finds the row.
	ex, err := st.Existing(ctx, []Key{{batch, id}})
	if err != nil || !ex[Key{batch, id}] {
		t.Errorf("Existing with the hostile key = %v, %v", ex, err)
	}
	// The tables are still there and the CSV round-trips the ids.
	var buf bytes.Buffer
	if err := st.ExportCSV(ctx, batch, &buf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("exported CSV does not parse: %v", err)
	}
	if len(recs) != 4 || recs[3][1] != cleanID || recs[3][3] != large+strings.ReplaceAll(cleaned, "\r\n", "\n") { // csv.Reader reads \r\n as \n
		t.Errorf("csv = %q", recs)
	}
	buf.Reset()
	if err := st.ExportJSONL(ctx, "", &buf, IncludeText()); err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("jsonl line %d is not JSON", i)
		}
	}
}

func deref2(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// FuzzRuneCount: runeCount is utf8.RuneCountInString, invalid UTF-8 included.
func FuzzRuneCount(f *testing.F) {
	for _, s := range []string{"", "a", "12345678", "123456789", "ünïcødé 日本語 🙂", "\xff", "abcdefg\xe6\x97", "\xe6\x97\xa5abcdefgh",
		"\xed\xa0\x80 surrogate", "\xf4\x90\x80\x80", strings.Repeat("ascii text ", 20) + "é" + strings.Repeat("x", 9)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := runeCount(s), utf8.RuneCountInString(s); got != want {
			t.Errorf("runeCount(%q) = %d, want %d", s, got, want)
		}
	})
}

// TestRuneCountMixed: runeCount is utf8.RuneCountInString on strings of
// ASCII runs, multi-byte characters and invalid bytes at every offset.
func TestRuneCountMixed(t *testing.T) {
	t.Parallel()
	pieces := []string{"a", "abcdefgh", "0123456789abcdef", "é", "日", "🙂", "\xff", "\xe6\x97", "\xed\xa0\x80", "\x80", "\x00"}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		s := b.String()
		if got, want := runeCount(s), utf8.RuneCountInString(s); got != want {
			t.Fatalf("runeCount(%q) = %d, want %d", s, got, want)
		}
	}
}
