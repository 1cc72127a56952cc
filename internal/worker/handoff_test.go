package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/cascade"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
)

// A prompt whose next model is batch-mode is recorded for that model's
// provider batch (in the transaction of its attempts) and acked, with no
// call and no results row; a job resumed after a batch round starts at its
// position, keeps its tier, and numbers its attempts on.
func TestWorkerHandsOffToBatchModelAndResumes(t *testing.T) {
	b := setup(t, queue.Config{})
	reg := llm.NewRegistry()
	reg.Register("fake", b.provider)
	price := pricing.Price{InputPerMTok: 1, OutputPerMTok: 2}
	cs, err := cascade.New(cascade.Settings{
		Tiers: map[prompt.Tier][]string{
			prompt.TierSimple: {"fake/batch", "fake/a"}, prompt.TierModerate: {"fake/a"}, prompt.TierComplex: {"fake/a"},
		},
		Models: map[string]cascade.ModelPolicy{
			"fake/batch": {Model: "fake/batch", Batch: true, Price: price},
			"fake/a":     {Model: "fake/a", Timeout: 5 * time.Second, Price: price},
		},
	}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.cascade = cs
	jobs := b.publish("b1", 40)
	pub := queue.NewPublisher(b.qc, 16)
	for i := range 10 {
		// Long enough to be "moderate" for the classifier: the resume keeps "simple".
		j := prompt.Job{BatchID: "b2", ID: fmt.Sprint(i), EnqueuedAt: time.Now(),
			Prompt: fmt.Sprintf("Question %d: explain why the sky is blue in a few plain sentences for a curious child", i),
			Resume: &prompt.Resume{Tier: prompt.TierSimple, Position: 1, Attempts: 1}}
		if err := pub.Publish(t.Context(), j); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pub.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := b.run(ctx)

	if s := w.Stats(); s.HandedOff != int64(len(jobs)) || s.Succeeded != 10 || s.Failed != 0 {
		t.Fatalf("stats %+v: want %d handed off, 10 answered", s, len(jobs))
	}
	if n := b.count(`SELECT count(*) FROM provider_batch_items WHERE batch_id = 'b1' AND model = 'fake/batch'
		AND state = 'queued' AND position = 0 AND tier = 'simple' AND job->>'prompt' <> ''`); n != len(jobs) {
		t.Errorf("%d queued items for fake/batch, want %d", n, len(jobs))
	}
	if n := b.count(`SELECT count(*) FROM results WHERE batch_id = 'b1'`); n != 0 {
		t.Errorf("%d results for handed-off prompts, want 0", n)
	}
	if n := b.count(`SELECT count(*) FROM results r JOIN request_log l USING (batch_id, prompt_id)
		WHERE r.batch_id = 'b2' AND r.tier = 'simple' AND r.model_used = 'fake/a' AND l.attempt = 2`); n != 10 {
		t.Errorf("%d resumed prompts answered by fake/a as attempt 2 in tier simple, want 10", n)
	}
	for _, j := range jobs {
		if n := b.provider.callsFor(j.Prompt); n != 0 {
			t.Errorf("handed-off prompt %s called a model %d times", j.ID, n)
		}
	}
	if n := b.consumerAckPending(); n != 0 {
		t.Errorf("%d deliveries left unacked", n)
	}
}
