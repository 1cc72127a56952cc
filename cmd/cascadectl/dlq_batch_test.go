package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/promptcascade/promptcascade/internal/pgtest"
	"github.com/promptcascade/promptcascade/internal/store"
)

// dlq list --batch and dlq replay --all --batch cover the batch's dead
// letters on every priority's subject (prompts.B, prompts.high.B,
// prompts.low.B), and no other batch's.
func TestDLQBatchCoversEveryPriority(t *testing.T) {
	dsn := pgtest.Schema(t)
	t.Setenv("DATABASE_URL", dsn)
	t.Setenv("NATS_SUBJECT_PREFIX", "prompts")
	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	mine := []string{"prompts.b1", "prompts.high.b1", "prompts.low.b1"}
	var dls []store.DeadLetter
	for i, subject := range append(slices.Clone(mine), "prompts.b2", "prompts.high.b2") {
		dls = append(dls, store.DeadLetter{StreamSeq: uint64(i + 1), Subject: subject, Payload: []byte("not json"), Error: "decode: not json"})
	}
	if err := st.DeadLetters(ctx, dls); err != nil {
		t.Fatal(err)
	}

	out, _ := runCtl(t, 0, "dlq", "list", "--batch", "b1", "--format", "jsonl")
	var got []string
	for l := range strings.Lines(out) {
		var r dlqLine
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("dlq list line %q: %v", l, err)
		}
		got = append(got, r.Subject)
	}
	if !slices.Equal(got, mine) {
		t.Fatalf("dlq list --batch b1: subjects %q, want %q", got, mine)
	}

	out, _ = runCtl(t, 0, "dlq", "replay", "--all", "--batch", "b1", "--dry-run")
	for _, subject := range mine {
		if !strings.Contains(out, "bytes to "+subject+" ") {
			t.Errorf("dlq replay --all --batch b1 --dry-run does not replay the dead letter on %s:\n%s", subject, out)
		}
	}
	if strings.Contains(out, "b2") || !strings.Contains(out, "would replay 3 dead letter(s)") {
		t.Errorf("dlq replay --all --batch b1 --dry-run:\n%s", out)
	}
}
