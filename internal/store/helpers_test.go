package store

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/pgtest"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

// setup returns a migrated Store on a fresh schema, closed at cleanup.
func setup(t testing.TB, opts ...Option) *Store {
	t.Helper()
	st := open(t, pgtest.Schema(t), opts...)
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st
}

func open(t testing.TB, dsn string, opts ...Option) *Store {
	t.Helper()
	st, err := Open(t.Context(), dsn, append([]Option{WithMaxConns(3)}, opts...)...)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(st.Close)
	return st
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// att builds attempt n of a delivery; StartedAt is derived from n so that
// writing the same attempt again is recognised as the same attempt.
func att(n int, model string, out prompt.Outcome, cost float64, latency time.Duration) prompt.Attempt {
	a := prompt.Attempt{
		Attempt: n, Model: model, Outcome: out, CostUSD: cost, Latency: latency,
		StartedAt: t0.Add(time.Duration(n) * time.Second), InputTokens: 10, OutputTokens: 20,
	}
	switch out {
	case prompt.OutcomeOK, prompt.OutcomeQualityFailed:
		a.HTTPStatus = 200
	case prompt.OutcomeRateLimited:
		a.HTTPStatus, a.Error = 429, "rate limited"
	case prompt.OutcomeServerError:
		a.HTTPStatus, a.Error = 500, "server error"
	}
	return a
}

// res builds the Result of one delivery. ModelUsed is the last attempt's
// model and CostUSD the sum of the attempts, as the cascade reports them.
func res(batch, id string, tier prompt.Tier, status prompt.Status, delivery int, latency time.Duration, attempts ...prompt.Attempt) prompt.Result {
	r := prompt.Result{
		Job: prompt.Job{
			BatchID: batch, ID: id, Prompt: "prompt " + id, System: "be brief",
			Metadata: []byte(`{"source":"test"}`), EnqueuedAt: t0,
		},
		Tier:     tier,
		Signals:  prompt.Signals{WordCount: 2, TokenCount: 3},
		Status:   status,
		Delivery: delivery,
		Latency:  latency,
		Attempts: attempts,
		WorkerID: "w1",
	}
	if status != "" {
		r.CompletedAt = t0.Add(time.Minute)
	}
	for _, a := range attempts {
		r.CostUSD += a.CostUSD
		r.ModelUsed = a.Model
	}
	switch status {
	case prompt.StatusSucceeded:
		r.Response, r.FinishReason, r.InputTokens, r.OutputTokens = "answer to "+id, "stop", 10, 20
	case prompt.StatusFailed:
		r.Error = "all models failed"
	}
	return r
}

func mustWrite(t testing.TB, st *Store, rs ...prompt.Result) []bool {
	t.Helper()
	got, err := st.Write(t.Context(), rs)
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	return got
}

func count(t testing.TB, st *Store, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := st.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func approx(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
