package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/store"
)

func TestDLQReplaySubjectOK(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		subject string
		ok      bool
	}{
		{"prompts.b1", true},
		{"prompts.b1.extra", true},
		{"prompts", false},
		{"prompts.", false},
		{"promptsx.b1", false},
		{"other.b1", false},
		{"x.prompts.b1", false},
		{"prompts.*", false},
		{"prompts.>", false},
		{"prompts.a..b", false},
		{"prompts.a b", false},
		{"prompts.a\x00b", false},
		{"prompts.a\r\nPUB x 1", false},
	} {
		err := replaySubjectOK("prompts", tc.subject)
		if (err == nil) != tc.ok {
			t.Errorf("replaySubjectOK(%q) = %v, want ok=%v", tc.subject, err, tc.ok)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\x00\r\n") {
			t.Errorf("error for %q is not escaped: %q", tc.subject, err)
		}
	}
}

func TestDLQReplayMsgID(t *testing.T) {
	t.Parallel()
	row := store.DeadLetterRow{ID: 7}
	first := replayMsgID(row, []byte("a"))
	if first != replayMsgID(row, []byte("a")) || !strings.HasPrefix(first, "dlq/7/0/") {
		t.Fatalf("first replay id %q is not stable", first)
	}
	if replayMsgID(row, []byte("b")) == first {
		t.Error("an edited payload keeps the same message id")
	}
	row.ReplayedAt = time.UnixMicro(1_700_000_000_000_001)
	if again := replayMsgID(row, []byte("a")); again == first || !strings.HasPrefix(again, "dlq/7/1700000000000001/") {
		t.Errorf("replay after a replay: %q", again)
	}
}

func TestDLQIDList(t *testing.T) {
	t.Parallel()
	var l idList
	for _, v := range []string{"3", "1, 2", "3"} {
		if err := l.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(l, idList{3, 1, 2}) {
		t.Errorf("ids = %v", l)
	}
	for _, bad := range []string{"", "x", "0", "-1", "1,,2"} {
		if err := new(idList).Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}
