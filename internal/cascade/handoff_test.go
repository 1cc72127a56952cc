package cascade

import (
	"context"
	"testing"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// A Run that reaches a batch-mode model calls nothing more: it hands the
// prompt off with the attempts made so far, neither succeeded nor transient.
func TestHandoffToBatchModel(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{"a": {ok("too short")}, "b": {ok(goodText)}, "c": {ok(goodText)}}, func(s *Settings) {
		p := s.Models["fake/b"]
		p.Batch = true
		s.Models["fake/b"] = p
	})
	out := b.run(t, longPrompt)
	res := out.Result
	checkAttempts(t, res.Attempts, want{"fake/a", prompt.OutcomeQualityFailed})
	if res.Handoff == nil || *res.Handoff != (prompt.Handoff{Model: "fake/b", Position: 1}) {
		t.Fatalf("Handoff = %+v, want fake/b at position 1", res.Handoff)
	}
	if out.Transient || res.Status != "" {
		t.Errorf("handed-off run: transient %v status %q, want neither", out.Transient, res.Status)
	}
	if b.fake.count("b") != 0 || b.fake.count("c") != 0 {
		t.Errorf("models after the batch-mode one were called: b %d, c %d", b.fake.count("b"), b.fake.count("c"))
	}
	if m, batch, ok := b.c.Step(prompt.TierSimple, 1); m != "fake/b" || !batch || !ok {
		t.Errorf("Step(simple, 1) = %q %v %v", m, batch, ok)
	}
	if _, _, ok := b.c.Step(prompt.TierSimple, 3); ok {
		t.Errorf("Step past the end reports ok")
	}
}

// A resumed job starts at its position, keeps numbering attempts, and never
// calls the models before it.
func TestResumeAfterBatchRound(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string][]step{"a": {ok(goodText)}, "b": {ok(goodText)}, "c": {ok(goodText)}}, nil)
	j := job(longPrompt)
	j.Resume = &prompt.Resume{Tier: prompt.TierSimple, Position: 2, Attempts: 3}
	out := b.c.Run(context.Background(), j, prompt.TierSimple, prompt.Signals{}, 1)
	res := out.Result
	if res.Status != prompt.StatusSucceeded || res.ModelUsed != "fake/c" || len(res.Attempts) != 1 || res.Attempts[0].Attempt != 4 {
		t.Fatalf("resumed run: status %s model %s attempts %+v; want fake/c answering as attempt 4", res.Status, res.ModelUsed, res.Attempts)
	}
	if b.fake.count("a") != 0 || b.fake.count("b") != 0 {
		t.Errorf("models before the resume position were called")
	}
	j.Resume.Position = 9
	if out := b.c.Run(context.Background(), j, prompt.TierSimple, prompt.Signals{}, 1); out.Result.Status != prompt.StatusFailed {
		t.Errorf("resume past the end: status %q, want failed", out.Result.Status)
	}
}

func TestGate(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, nil)
	for _, tc := range []struct {
		prompt, resp string
		want         prompt.Outcome
	}{
		{longPrompt, goodText, prompt.OutcomeOK},
		{longPrompt, "Too short.", prompt.OutcomeQualityFailed},
		{"hi", "I cannot help with that request at all, sorry about that.", prompt.OutcomeQualityFailed},
		{"hi", "  ", prompt.OutcomeEmptyResponse},
	} {
		if got, _ := b.c.Gate(tc.prompt, tc.resp); got != tc.want {
			t.Errorf("Gate(%.20q, %.20q) = %s, want %s", tc.prompt, tc.resp, got, tc.want)
		}
	}
}
