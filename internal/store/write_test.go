package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promptcascade/promptcascade/internal/pgtest"
	"github.com/promptcascade/promptcascade/internal/prompt"
)

const (
	small  = "sim/small"
	medium = "sim/medium"
	large  = "sim/large"
)

func TestWriteMixAndRewrite(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	batch := []prompt.Result{
		res("b", "ok", prompt.TierSimple, prompt.StatusSucceeded, 1, 120*time.Millisecond,
			att(1, small, prompt.OutcomeQualityFailed, 0.0001, 100*time.Millisecond),
			att(2, medium, prompt.OutcomeOK, 0.0004, 120*time.Millisecond)),
		res("b", "bad", prompt.TierComplex, prompt.StatusFailed, 1, 0,
			att(1, large, prompt.OutcomeBadRequest, 0, time.Millisecond),
			att(2, large, prompt.OutcomeServerError, 0, time.Millisecond),
			att(3, medium, prompt.OutcomeQualityFailed, 0.002, 50*time.Millisecond)),
		res("b", "later", prompt.TierModerate, "", 1, 0,
			att(1, medium, prompt.OutcomeRateLimited, 0, time.Millisecond),
			att(2, large, prompt.OutcomeRateLimited, 0, time.Millisecond)),
	}
	if got := mustWrite(t, st, batch...); !slices.Equal(got, []bool{true, true, false}) {
		t.Fatalf("first write = %v, want [true true false]", got)
	}
	check := func(when string) {
		t.Helper()
		if n := count(t, st, `SELECT count(*) FROM results`); n != 2 {
			t.Errorf("%s: %d results rows, want 2", when, n)
		}
		if n := count(t, st, `SELECT count(*) FROM request_log`); n != 7 {
			t.Errorf("%s: %d request_log rows, want 7", when, n)
		}
		if n := count(t, st, `SELECT count(*) FROM request_log WHERE prompt_id = 'later' AND delivery = 1 AND tier = 'moderate'`); n != 2 {
			t.Errorf("%s: transient delivery logged %d attempts, want 2", when, n)
		}
	}
	check("after first write")

	// The same write again (a retry after an unknown commit outcome, or a
	// redelivery of identical work) changes nothing.
	if got := mustWrite(t, st, batch...); !slices.Equal(got, []bool{false, false, false}) {
		t.Fatalf("re-write = %v, want all false", got)
	}
	check("after re-write")

	r, ok, err := st.Result(ctx, Key{"b", "ok"})
	if err != nil || !ok {
		t.Fatalf("result: %v %v", ok, err)
	}
	if r.Status != "succeeded" || r.Tier != "simple" || *r.ModelUsed != medium || r.Attempts != 2 ||
		!approx(r.CostUSD, 0.0005) || r.LatencyMS != 120 || *r.Prompt != "prompt ok" || *r.Response != "answer to ok" ||
		r.Delivery != 1 || string(r.Metadata) != `{"source": "test"}` || r.EnqueuedAt == nil || !r.EnqueuedAt.Equal(t0) {
		t.Errorf("results row = %+v", r)
	}
	r, _, _ = st.Result(ctx, Key{"b", "bad"})
	if r.Status != "failed" || *r.Error != "all models failed" || r.Attempts != 3 || !approx(r.CostUSD, 0.002) || r.Response != nil {
		t.Errorf("failed row = %+v", r)
	}
	var status *int
	if err := st.Pool().QueryRow(ctx, `SELECT http_status FROM request_log WHERE prompt_id = 'bad' AND attempt = 1`).Scan(&status); err != nil || status != nil {
		t.Errorf("http_status 0 should be stored as NULL: %v %v", status, err)
	}
}

func TestWriteValidation(t *testing.T) {
	t.Parallel()
	st := setup(t)
	good := res("b", "good", prompt.TierSimple, prompt.StatusSucceeded, 1, 0, att(1, small, prompt.OutcomeOK, 0.1, 0))
	cases := []struct {
		name string
		mut  func(*prompt.Result)
		want string
	}{
		{"empty batch", func(r *prompt.Result) { r.Job.BatchID = "" }, "empty batch id"},
		{"nul-only id", func(r *prompt.Result) { r.Job.ID = "\x00" }, "empty prompt id"},
		{"status", func(r *prompt.Result) { r.Status = "done" }, `unknown status "done"`},
		{"tier", func(r *prompt.Result) { r.Tier = "" }, `tier ""`},
		{"nan cost", func(r *prompt.Result) { r.Attempts[0].CostUSD = math.NaN() }, "attempt 0: cost NaN"},
		{"negative cost", func(r *prompt.Result) { r.Attempts[0].CostUSD = -1 }, "attempt 0: cost -1"},
		{"no model", func(r *prompt.Result) { r.Attempts[0].Model = "" }, "attempt 0: empty model"},
		{"no outcome", func(r *prompt.Result) { r.Attempts[0].Outcome = "" }, "attempt 0: empty outcome"},
		{"huge tokens", func(r *prompt.Result) { r.Attempts[0].InputTokens = 1 << 40 }, "attempt 0: attempt number, HTTP status or token count"},
		{"negative latency", func(r *prompt.Result) { r.Latency = -time.Second }, "latency -1s is negative"},
	}
	for _, c := range cases {
		bad := res("b", "bad", prompt.TierSimple, prompt.StatusSucceeded, 1, 0, att(1, small, prompt.OutcomeOK, 0.1, 0))
		c.mut(&bad)
		_, err := st.Write(t.Context(), []prompt.Result{good, bad})
		if err == nil || !strings.Contains(err.Error(), "input 1") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to name input 1 and %q", c.name, err, c.want)
		}
		if IsTransient(err) {
			t.Errorf("%s: bad input reported transient", c.name)
		}
	}
	if n := count(t, st, `SELECT count(*) FROM results`) + count(t, st, `SELECT count(*) FROM request_log`); n != 0 {
		t.Errorf("a rejected write stored %d rows", n)
	}
	if got, err := st.Write(t.Context(), nil); err != nil || len(got) != 0 {
		t.Errorf("empty write = %v, %v", got, err)
	}
}

// TestCostSemantics follows one prompt through a transient delivery, the
// delivery that commits, and a late delivery that lost the race.
func TestCostSemantics(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()

	d1 := res("b", "p", prompt.TierModerate, "", 1, 0,
		att(1, medium, prompt.OutcomeTimeout, 0.001, 10*time.Second),
		att(2, large, prompt.OutcomeRateLimited, 0.002, time.Millisecond))
	d2 := res("b", "p", prompt.TierModerate, prompt.StatusSucceeded, 2, 800*time.Millisecond,
		att(1, medium, prompt.OutcomeQualityFailed, 0.0005, 500*time.Millisecond),
		att(2, large, prompt.OutcomeOK, 0.003, 800*time.Millisecond))
	d2.Attempts[1].Estimated = true
	d3 := res("b", "p", prompt.TierModerate, prompt.StatusSucceeded, 3, 700*time.Millisecond,
		att(1, medium, prompt.OutcomeOK, 0.004, 700*time.Millisecond))

	if got := mustWrite(t, st, d1); got[0] {
		t.Fatal("a transient delivery inserted a results row")
	}
	if got := mustWrite(t, st, d2); !got[0] {
		t.Fatal("the committing delivery did not insert")
	}
	if got := mustWrite(t, st, d3); got[0] {
		t.Fatal("a late delivery inserted again")
	}
	r, _, err := st.Result(ctx, Key{"b", "p"})
	if err != nil {
		t.Fatal(err)
	}
	// 0.001 + 0.002 (delivery 1) + 0.0005 + 0.003 (delivery 2); delivery 3 is not part of it.
	if !approx(r.CostUSD, 0.0065) || r.Attempts != 4 || !r.UsageEstimated || r.Delivery != 2 || *r.ModelUsed != large {
		t.Errorf("results row: cost %v attempts %d estimated %v delivery %d model %s; want 0.0065, 4, true, 2, %s",
			r.CostUSD, r.Attempts, r.UsageEstimated, r.Delivery, *r.ModelUsed, large)
	}
	if n := count(t, st, `SELECT count(*) FROM request_log WHERE prompt_id = 'p'`); n != 5 {
		t.Errorf("request_log has %d rows, want 5 (every paid attempt)", n)
	}
	v, err := st.Verify(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if v.ExtraAttempts != 1 || !approx(v.ExtraCostUSD, 0.004) || v.AnsweredTwice != 1 {
		t.Errorf("verify extra: %d attempts, %v USD, %d answered twice; want 1, 0.004, 1", v.ExtraAttempts, v.ExtraCostUSD, v.AnsweredTwice)
	}
}

func TestWriteSameKeyTwiceInOneCall(t *testing.T) {
	t.Parallel()
	st := setup(t)
	a := res("b", "p", prompt.TierSimple, prompt.StatusSucceeded, 1, 0, att(1, small, prompt.OutcomeOK, 0.001, 0))
	b := res("b", "p", prompt.TierSimple, prompt.StatusSucceeded, 2, 0, att(1, medium, prompt.OutcomeOK, 0.002, 0))
	if got := mustWrite(t, st, a, b); !slices.Equal(got, []bool{true, false}) {
		t.Fatalf("write = %v, want [true false]", got)
	}
	r, _, _ := st.Result(t.Context(), Key{"b", "p"})
	if *r.ModelUsed != small || r.Delivery != 1 {
		t.Errorf("kept %s from delivery %d, want the first input", *r.ModelUsed, r.Delivery)
	}
	if n := count(t, st, `SELECT count(*) FROM request_log`); n != 2 {
		t.Errorf("%d request_log rows, want 2", n)
	}
}

// TestWriteConcurrentOverlap has workers write overlapping keys in opposite
// orders: exactly one insert per key, and no deadlock error.
func TestWriteConcurrentOverlap(t *testing.T) {
	t.Parallel()
	st := setup(t)
	const keys, workers = 100, 3
	var inserted [workers]int
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			rs := make([]prompt.Result, keys)
			for i := range rs {
				id := i
				if w%2 == 1 {
					id = keys - 1 - i
				}
				rs[i] = res("b", fmt.Sprintf("p%03d", id), prompt.TierSimple, prompt.StatusSucceeded, w+1, 0,
					att(1, small, prompt.OutcomeOK, 0.001, 0))
			}
			got, err := st.Write(t.Context(), rs)
			if err != nil {
				errs <- err
				return
			}
			for _, ok := range got {
				if ok {
					inserted[w]++
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write: %v (transient: %v)", err, IsTransient(err))
	}
	if total := inserted[0] + inserted[1] + inserted[2]; total != keys {
		t.Errorf("%d inserts reported for %d keys (%v)", total, keys, inserted)
	}
	if n := count(t, st, `SELECT count(*) FROM results`); n != keys {
		t.Errorf("%d results rows, want %d", n, keys)
	}
	if n := count(t, st, `SELECT count(*) FROM request_log`); n != keys*workers {
		t.Errorf("%d request_log rows, want %d", n, keys*workers)
	}
}

func TestExisting(t *testing.T) {
	t.Parallel()
	st := setup(t)
	mustWrite(t, st,
		res("b1", "a", prompt.TierSimple, prompt.StatusSucceeded, 1, 0, att(1, small, prompt.OutcomeOK, 0, 0)),
		res("b1", "it's \"x\"", prompt.TierSimple, prompt.StatusFailed, 1, 0),
		res("b2", "a", prompt.TierSimple, "", 1, 0, att(1, small, prompt.OutcomeRateLimited, 0, 0)),
	)
	keys := []Key{{"b1", "a"}, {"b1", "it's \"x\""}, {"b2", "a"}, {"b1", "zzz"}, {"b1", "a"}, {"b1", "a\x00"}}
	got, err := st.Existing(t.Context(), keys)
	if err != nil {
		t.Fatal(err)
	}
	want := map[Key]bool{{"b1", "a"}: true, {"b1", "it's \"x\""}: true, {"b1", "a\x00"}: true}
	if len(got) != len(want) {
		t.Errorf("existing = %v, want %v", got, want)
	}
	for k := range want {
		if !got[k] {
			t.Errorf("existing[%q] = false, want true", k)
		}
	}
	if got, err := st.Existing(t.Context(), nil); err != nil || len(got) != 0 {
		t.Errorf("no keys: %v %v", got, err)
	}
}

func TestDeadLettersDedupe(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	raw := []byte("{\"id\": 1, \x00\xff not json")
	dls := []DeadLetter{
		{StreamSeq: 7, Subject: "prompts.b", Payload: raw, Error: "invalid JSON at offset 9"},
		{StreamSeq: 8, Subject: "prompts.b", Payload: []byte(`{"id":"x","prompt":""}`), Error: "empty prompt"},
	}
	if err := st.DeadLetters(ctx, dls); err != nil {
		t.Fatal(err)
	}
	// The same poison message redelivered, plus a new one with the same
	// sequence number in a recreated stream (different bytes).
	again := append(dls[:1:1], DeadLetter{StreamSeq: 7, Subject: "prompts.b", Payload: []byte("other"), Error: "x"})
	if err := st.DeadLetters(ctx, again); err != nil {
		t.Fatal(err)
	}
	if n := count(t, st, `SELECT count(*) FROM dead_letters`); n != 3 {
		t.Errorf("%d dead letters, want 3", n)
	}
	var payload []byte
	if err := st.Pool().QueryRow(ctx, `SELECT payload FROM dead_letters WHERE error = 'invalid JSON at offset 9'`).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	if string(payload) != string(raw) {
		t.Errorf("payload changed: %q", payload)
	}
	if err := st.DeadLetters(ctx, []DeadLetter{{StreamSeq: math.MaxUint64}}); err == nil {
		t.Error("an out-of-range sequence was accepted")
	}
}

// TestWritesOfOneBatchDoNotWaitForEachOther: every commit adds its cost to
// its batch's batches row, so concurrent commits of one batch (several
// committers and workers) would queue behind each other's row lock for
// their whole transaction if it were taken early. It is taken last, just
// before COMMIT: a second Write of the batch completes while the first is
// still inside its transaction (held open by WriteTx's extra), and
// spent_usd still counts both.
func TestWritesOfOneBatchDoNotWaitForEachOther(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	if err := st.UpsertBatch(ctx, "b", 2); err != nil {
		t.Fatal(err)
	}
	first := res("b", "p1", prompt.TierSimple, prompt.StatusSucceeded, 1, 0, att(1, small, prompt.OutcomeOK, 0.004, 0))
	second := res("b", "p2", prompt.TierSimple, prompt.StatusSucceeded, 1, 0, att(1, small, prompt.OutcomeOK, 0.002, 0))

	secondDone := make(chan error, 1)
	firstDone := make(chan error, 1)
	go func() {
		_, err := st.WriteTx(ctx, []prompt.Result{first}, func(ctx context.Context, tx pgx.Tx) error {
			// Inside the first transaction, its rows written: the second
			// Write of the same batch must get through, not queue on a lock.
			go func() {
				_, err := st.Write(ctx, []prompt.Result{second})
				secondDone <- err
			}()
			deadline := time.Now().Add(time.Minute)
			for {
				select {
				case err := <-secondDone:
					return err
				case <-time.After(10 * time.Millisecond):
				}
				var waiting int
				if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))`, tx.Conn().PgConn().PID()).Scan(&waiting); err != nil {
					return err
				}
				if waiting > 0 {
					return errors.New("the second Write waits for a lock held by the first one's open transaction")
				}
				if time.Now().After(deadline) {
					return errors.New("the second Write neither finished nor waited on a lock within a minute")
				}
			}
		})
		firstDone <- err
	}()
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	var spent float64
	if err := st.Pool().QueryRow(ctx, `SELECT spent_usd::float8 FROM batches WHERE batch_id = 'b'`).Scan(&spent); err != nil || !approx(spent, 0.006) {
		t.Errorf("spent_usd = %v (%v), want 0.006 = sum(request_log.cost_usd)", spent, err)
	}
}

// TestMinConns: a worker's pool has room for its committers unless the DSN
// names its own pool_max_conns.
func TestMinConns(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Schema(t)
	for _, c := range []struct {
		dsn  string
		want int32
	}{{dsn, 9}, {dsn + "&pool_max_conns=3", 3}} {
		st, err := Open(t.Context(), c.dsn, WithMinConns(9))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Pool().Config().MaxConns; got != c.want {
			t.Errorf("MaxConns = %d, want %d", got, c.want)
		}
		st.Close()
	}
}
