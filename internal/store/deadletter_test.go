package store

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

func TestDeadLetterListFilterAndMarkReplayed(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	long := []byte(`{"batch":"b","id":"x","prompt":"` + strings.Repeat("a", 31) + `é and more"}`) // é is bytes 64 and 65
	dls := []DeadLetter{
		{StreamSeq: 1, Subject: "prompts.b", Payload: []byte("not json\n"), Error: "message body is not a job"},
		{StreamSeq: 2, Subject: "prompts.b", Payload: []byte{0xff, 'a', 0x1b, '[', '2', 'J'}, Error: "message body is not valid UTF-8"},
		{StreamSeq: 3, Subject: "prompts.c", Payload: long, Error: "job b/x has an empty prompt"},
		{StreamSeq: 4, Subject: "prompts.c", Payload: nil, Error: "empty message body"},
	}
	if err := st.DeadLetters(ctx, dls); err != nil {
		t.Fatal(err)
	}

	rows, err := st.ListDeadLetters(ctx, DeadLetterFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("got %d rows, want 4", len(rows))
	}
	for i, r := range rows {
		d := dls[i]
		if r.StreamSeq != d.StreamSeq || r.Subject != d.Subject || r.Error != d.Error || r.PayloadSize != len(d.Payload) ||
			r.Replayed() || r.ReceivedAt.IsZero() || r.Payload != nil || (i > 0 && r.ID <= rows[i-1].ID) {
			t.Errorf("row %d = %+v", i, r)
		}
	}
	wantPreview := []string{
		`not json\n`,
		`\xffa\u001b[2J`,
		`{"batch":"b","id":"x","prompt":"` + strings.Repeat("a", 31) + `é…`,
		``,
	}
	for i, r := range rows {
		if r.Preview != wantPreview[i] {
			t.Errorf("row %d preview = %q, want %q", i, r.Preview, wantPreview[i])
		}
	}

	// Payloads come back byte for byte when asked for.
	full, err := st.ListDeadLetters(ctx, DeadLetterFilter{WithPayload: true, Subject: "prompts.c"})
	if err != nil {
		t.Fatal(err)
	}
	if len(full) != 2 || !bytes.Equal(full[0].Payload, long) || len(full[1].Payload) != 0 || full[0].Preview != wantPreview[2] {
		t.Fatalf("with payload, subject prompts.c: %+v", full)
	}

	// Paging by id.
	page, err := st.ListDeadLetters(ctx, DeadLetterFilter{Limit: 2, AfterID: rows[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	if ids(page) == nil || !slices.Equal(ids(page), ids(rows[1:3])) {
		t.Errorf("page after %d, limit 2 = %v", rows[0].ID, ids(page))
	}
	if _, err := st.ListDeadLetters(ctx, DeadLetterFilter{Limit: -1}); err == nil {
		t.Error("negative limit accepted")
	}

	// Marked rows leave the default listing and come back with IncludeReplayed.
	before := time.Now().Add(-time.Minute)
	if err := st.MarkReplayed(ctx, []int64{rows[0].ID, rows[2].ID, rows[2].ID}); err != nil {
		t.Fatal(err)
	}
	left, err := st.ListDeadLetters(ctx, DeadLetterFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(left), []int64{rows[1].ID, rows[3].ID}) {
		t.Errorf("not replayed = %v", ids(left))
	}
	byID, err := st.ListDeadLetters(ctx, DeadLetterFilter{IDs: []int64{rows[2].ID, rows[3].ID}, IncludeReplayed: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(byID) != 2 || !byID[0].Replayed() || byID[0].ReplayedAt.Before(before) || byID[1].Replayed() {
		t.Errorf("by id = %+v", byID)
	}

	// Unknown ids are named; the known ones are still marked.
	err = st.MarkReplayed(ctx, []int64{rows[1].ID, 999999, 999998})
	if !IsDeadLetterNotFound(err) || !strings.Contains(err.Error(), "999998, 999999") {
		t.Fatalf("unknown ids: %v", err)
	}
	if n := count(t, st, `SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL`); n != 1 {
		t.Errorf("%d rows not replayed, want 1", n)
	}
	if err := st.MarkReplayed(ctx, nil); err != nil {
		t.Errorf("no ids: %v", err)
	}
}

func ids(rows []DeadLetterRow) []int64 {
	var out []int64
	for _, r := range rows {
		out = append(out, r.ID)
	}
	return out
}

func TestDeadLetterPreviewEscapes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"plain text", 64, "plain text"},
		{`back\slash "quotes"`, 64, `back\\slash "quotes"`},
		{"tab\tcr\rlf\n", 64, `tab\tcr\rlf\n`},
		{"nul\x00del\x7f", 64, `nul\u0000del\u007f`},
		{"bidi \u202egnp.exe", 64, `bidi \u202egnp.exe`},
		{"zero\u200bwidth nbsp\u00a0", 64, `zero\u200bwidth nbsp\u00a0`},
		{"emoji 🙂 ok", 64, "emoji 🙂 ok"},
		{"tag \U000E0041", 64, `tag \U000e0041`},
		{"bad \xc3\x28 and \xed\xa0\x80", 64, `bad \xc3( and \xed\xa0\x80`},
		{"truncated at a rune: ééé", 22, "truncated at a rune: é…"},
		{"cut", 2, "cu…"},
		{"", 8, ""},
		{"ends in a broken rune \xe2\x82", 64, `ends in a broken rune \xe2\x82`},
	} {
		if got := Preview([]byte(tc.in), tc.max); got != tc.want {
			t.Errorf("Preview(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestAccountMissingSeparatesQueuedDeadLetteredAndLost(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	if _, err := st.RecordEnqueued(ctx, "b", enq("p1", "p2", "p3", "p4", "p5", "p6")); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, st, res("b", "p1", prompt.TierSimple, prompt.StatusSucceeded, 1, 0, att(1, small, prompt.OutcomeOK, 0.001, 0)))
	// p2 queued (also in the dead list: queued wins), p3 dead-lettered,
	// p1 answered (its message not acked yet), x never recorded; p4-p6 lost.
	a, err := st.AccountMissing(ctx, "b", []string{"p1", "p2", "x", "p2"}, []string{"p2", "p3", "y"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Missing != 5 || a.Queued != 1 || a.DeadLettered != 1 || a.Lost != 3 || !slices.Equal(a.LostSample, []string{"p4", "p5", "p6"}) {
		t.Errorf("account = %+v", a)
	}
	a, err = st.AccountMissing(ctx, "b", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Missing != 5 || a.Lost != 5 || a.Queued != 0 || a.DeadLettered != 0 {
		t.Errorf("no lists: %+v", a)
	}
	a, err = st.AccountMissing(ctx, "unknown", []string{"p1"}, nil)
	if err != nil || a.Missing != 0 || a.Lost != 0 || a.LostSample == nil {
		t.Errorf("unknown batch: %+v %v", a, err)
	}
}
