package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// The reference: the direct write's COPY as it was before copyBinary, pgx's
// CopyFrom fed through pgx.CopyFromSource (pgtype.Map encodes each value).

// pgxDirectCopy is Store.directCopy for the reference write.
func pgxDirectCopy(ctx context.Context, tx pgx.Tx, t directTable, rows copyRows) error {
	var src pgx.CopyFromSource
	switch r := rows.(type) {
	case *directLogRows:
		src = &directLogSource{rs: r.rs, p: r.p, k: -1}
	case *directResultRows:
		src = &directResultSource{resultSource: resultSource{rs: r.rs, idx: r.p.finals, storePrompts: r.storePrompts, i: -1}, p: r.p}
	default:
		return fmt.Errorf("no pgx source for %T", rows)
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, t.columns, src)
	return err
}

// costNumeric is units as a numeric(18, 10) value.
func costNumeric(units int64) pgtype.Numeric {
	return pgtype.Numeric{Int: big.NewInt(units), Exp: -costScale, Valid: true}
}

// directLogSource feeds a plan's request_log rows to COPY.
type directLogSource struct {
	rs  []prompt.Result
	p   *directPlan
	k   int
	row [17]any
}

func (s *directLogSource) Next() bool { s.k++; return s.k < len(s.p.logs) }
func (s *directLogSource) Err() error { return nil }

func (s *directLogSource) Values() ([]any, error) {
	ref := s.p.logs[s.k]
	r := &s.rs[ref.i]
	a := &r.Attempts[ref.j]
	key := s.p.keys[ref.i]
	var tier any
	if r.Tier != "" {
		tier = string(r.Tier)
	}
	s.row = [17]any{
		key.BatchID, key.PromptID, a.Attempt, r.Delivery, tier, clean(a.Model),
		clean(string(a.Outcome)), nullInt(a.HTTPStatus), nullText(a.Error), a.InputTokens, a.OutputTokens,
		costNumeric(s.p.units[s.k]), ms(a.Latency), a.Estimated, a.StartedAt, nullText(r.WorkerID), nullText(a.ProviderBatch),
	}
	return s.row[:], nil
}

// directResultSource feeds a plan's results rows to COPY: the staged
// columns, then attempts, cost_usd and usage_estimated.
type directResultSource struct {
	resultSource
	p   *directPlan
	out [31]any
}

func (s *directResultSource) Values() ([]any, error) {
	row, err := s.resultSource.Values()
	if err != nil {
		return nil, err
	}
	sum := s.p.sums[s.p.keys[s.idx[s.i]]]
	copy(s.out[:], row)
	s.out[28], s.out[29], s.out[30] = sum.attempts, costNumeric(sum.units), sum.estimated
	return s.out[:], nil
}

// variedCommit is n deliveries of every shape a direct write stores: NULL
// and empty texts, unicode, NUL bytes and invalid UTF-8 (cleaned), texts
// longer than a COPY chunk, costs from 0 to the largest numeric(18, 10)
// takes, estimated usage, shadow calls, provider batch ids, timestamps with
// nanoseconds and before 2000, a transient and a final delivery of one
// prompt, a second final delivery of one (dropped); then a later commit of
// final deliveries of prompts the first has only transient deliveries of
// (their results rows count the earlier attempts).
func variedCommit(n int) (rs, later []prompt.Result) {
	rng := rand.New(rand.NewPCG(8, 18))
	pick := func(vs ...string) string { return vs[rng.IntN(len(vs))] }
	long := strings.Repeat("ünïcødé 日本語 🙂 long text ", 4000) // ~130 kB
	costs := []float64{0, 1e-10, 1e-11, 5e-11, 4.9e-11, 0.00012345, 0.1 + 0.2, 1.0 / 3, 12345.678901234, 0.0001, 1, 10000, 1e-6}
	outcomes := []prompt.Outcome{prompt.OutcomeOK, prompt.OutcomeRateLimited, prompt.OutcomeShadow, prompt.OutcomeTimeout,
		prompt.OutcomeQualityFailed, prompt.OutcomeCacheHit, "odd\x00outcome"}
	batches := []string{"b1", "b2 ünï", "b\x00nul", "b\xffbad"}
	for i := range n {
		r := prompt.Result{
			Job: prompt.Job{
				BatchID: batches[i%len(batches)],
				ID:      fmt.Sprintf("%s%d", pick("p", "日本-", "x\x00", "\xfe"), i),
				Prompt:  pick("", "short", "naïve 🙂 prompt", "nul\x00byte", "bad \xc3\x28 utf8", long),
				System:  pick("", "be brief", "sÿstem"),
				Metadata: []byte(pick("", "null", `{"source":"test","n":[1,2.50,{"k":true}]}`, `{"s":"a\u0000b"}`,
					"not json", `"\ud800"`, "{\"bad\":\"\xff\"}")),
				MaxTokens: []int{0, 1, 256, math.MaxInt32}[rng.IntN(4)],
				Seq:       []int64{0, int64(i + 1), math.MaxInt64}[rng.IntN(3)],
			},
			Tier:     prompt.Tiers[rng.IntN(3)],
			Signals:  prompt.Signals{WordCount: rng.IntN(1000), TokenCount: rng.IntN(5000), ComplexHits: rng.IntN(3), ModerateHits: math.MaxInt32 * (i % 2)},
			Status:   []prompt.Status{prompt.StatusSucceeded, prompt.StatusFailed}[rng.IntN(2)],
			Delivery: 1 + rng.IntN(3),
			Latency:  time.Duration(rng.Int64N(int64(10 * time.Second))),
			WorkerID: pick("", "w1", "wörker"),
		}
		switch rng.IntN(3) {
		case 0:
		case 1:
			r.Job.EnqueuedAt = t0.Add(time.Duration(rng.Int64N(1e12)))
		case 2:
			r.Job.EnqueuedAt = time.Date(1999, 12, 31, 23, 59, 59, 999_999_500, time.FixedZone("x", 3600))
		}
		if rng.IntN(2) == 0 {
			r.Signals.Scored, r.Signals.Score = true, []float64{0, 0.37, 1, 1.0 / 3}[rng.IntN(4)]
		}
		if r.Status == prompt.StatusSucceeded {
			r.Response, r.FinishReason = pick("", "answer", "änswer \x00 with nul", long), pick("", "stop", "length")
			r.InputTokens, r.OutputTokens = rng.IntN(1e6), rng.IntN(1e6)
		} else {
			r.Error = pick("all models failed", "nul\x00error", "")
		}
		r.CompletedAt = t0.Add(time.Duration(rng.Int64N(1e15)))
		for j := range rng.IntN(4) {
			a := prompt.Attempt{
				Attempt: j + 1, Model: pick("sim/small", "sim/médium", "sim/\x00large"), Outcome: outcomes[rng.IntN(len(outcomes))],
				HTTPStatus: []int{0, 200, 429, 500}[rng.IntN(4)], Error: pick("", "", "rate limited", "bad\x00\xff"),
				InputTokens: rng.IntN(1e5), OutputTokens: rng.IntN(1e5), CostUSD: costs[rng.IntN(len(costs))],
				Estimated: rng.IntN(3) == 0, Latency: time.Duration(rng.Int64N(int64(time.Minute))),
				StartedAt:     t0.Add(time.Duration(j)*time.Second + time.Duration(rng.Int64N(1e9))),
				ProviderBatch: pick("", "", "batch_abc123", "bätch"),
			}
			if j == 2 {
				a.StartedAt = time.Date(1999, 6, 1, 0, 0, 0, 1, time.UTC)
			}
			r.Attempts = append(r.Attempts, a)
			r.ModelUsed = a.Model
		}
		rs = append(rs, r)
		switch i % 10 {
		case 3: // an earlier, transient delivery of the same prompt in the same commit
			t := r
			t.Status, t.Delivery, t.Tier = "", r.Delivery+1, prompt.Tier(pick("", "simple"))
			t.Attempts = []prompt.Attempt{{Attempt: 1, Model: "sim/small", Outcome: prompt.OutcomeTimeout, CostUSD: 0.00007,
				StartedAt: t0.Add(time.Hour), Latency: time.Second}}
			rs = append(rs, t)
		case 5: // transient only, final in the later commit
			rs[len(rs)-1].Status = ""
			f := r
			f.Delivery++
			f.Attempts = []prompt.Attempt{{Attempt: 1, Model: "sim/large", Outcome: prompt.OutcomeOK, CostUSD: 0.25, Estimated: true,
				StartedAt: t0.Add(3 * time.Hour), ProviderBatch: "batch_later"}}
			later = append(later, f)
		case 7: // a second final delivery: the first wins
			d := r
			d.Delivery, d.Response, d.Attempts = r.Delivery+1, "other answer", []prompt.Attempt{{Attempt: 1, Model: "sim/small",
				Outcome: prompt.OutcomeOK, CostUSD: 0.5, StartedAt: t0.Add(2 * time.Hour)}}
			rs = append(rs, d)
		}
	}
	// The largest cost numeric(18, 10) takes, alone in its batch (spent_usd
	// is a numeric(18, 10) too).
	big := rs[0]
	big.Job.BatchID, big.Job.ID = "big", "max"
	big.Attempts = []prompt.Attempt{{Attempt: 1, Model: "sim/large", Outcome: prompt.OutcomeOK, CostUSD: 99999999.9999999, StartedAt: t0}}
	return append(rs, big), later
}

// TestBinaryCopyAsPgx writes the same commits through the binary COPY and
// through pgx's CopyFrom (the reference) on two schemas: every column of
// every row is the same.
func TestBinaryCopyAsPgx(t *testing.T) {
	t.Parallel()
	for _, storePrompts := range []bool{true, false} {
		t.Run(fmt.Sprintf("store_prompts=%v", storePrompts), func(t *testing.T) {
			t.Parallel()
			bin, ref := setup(t, WithStorePrompts(storePrompts)), setup(t, WithStorePrompts(storePrompts))
			ref.directCopy = pgxDirectCopy
			rs, later := variedCommit(600)
			for _, st := range []*Store{bin, ref} {
				for _, b := range []string{"b1", "b2 ünï", "bnul", "b\uFFFDbad", "big"} {
					if err := st.UpsertBatch(t.Context(), b, 1000); err != nil {
						t.Fatal(err)
					}
				}
			}
			for i, w := range [][]prompt.Result{rs, later} {
				b, r := mustWrite(t, bin, w...), mustWrite(t, ref, w...)
				if fmt.Sprint(b) != fmt.Sprint(r) {
					t.Errorf("write %d: binary inserted %v, pgx %v", i, b, r)
				}
			}
			for _, st := range []*Store{bin, ref} {
				if n := st.staged.Load(); n != 0 {
					t.Fatalf("%d staged writes, want 0: the direct write did not run", n)
				}
			}
			dump := func(st *Store, sql string) []string {
				t.Helper()
				rows, err := st.Pool().Query(t.Context(), sql)
				if err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
				ss, err := pgx.CollectRows(rows, pgx.RowTo[string])
				if err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
				return ss
			}
			for _, q := range []string{
				`SELECT to_jsonb(r)::text FROM results r ORDER BY batch_id, prompt_id`,
				`SELECT (to_jsonb(l) - 'id' - 'created_at')::text FROM request_log l ORDER BY batch_id, prompt_id, delivery, attempt, started_at`,
				`SELECT batch_id || ' ' || spent_usd FROM batches ORDER BY 1`,
				`SELECT batch_id || ' ' || prompt_id FROM unresolved_attempts ORDER BY 1`,
			} {
				b, r := dump(bin, q), dump(ref, q)
				if len(b) != len(r) {
					t.Errorf("%s: %d rows binary, %d pgx", q, len(b), len(r))
					continue
				}
				for i := range b {
					if b[i] != r[i] {
						t.Errorf("%s: row %d:\nbinary: %.2000s\npgx:    %.2000s", q, i, b[i], r[i])
					}
				}
			}
			if n := count(t, bin, `SELECT count(*) FROM request_log`); n < 600 {
				t.Errorf("%d request_log rows: the commit did not test much", n)
			}
			if n := count(t, bin, `SELECT count(*) FROM results WHERE octet_length(coalesce(response, '')) > 100000`); storePrompts && n == 0 {
				t.Error("no long response stored: the commit did not span COPY chunks")
			}
		})
	}
}

// TestCopyNumericAsPostgres: the numeric encoder writes what Postgres'
// numeric_send writes for the same numeric(18, 10) value, byte for byte,
// and Postgres reads it back as the same text.
func TestCopyNumericAsPostgres(t *testing.T) {
	t.Parallel()
	st := setup(t)
	us := []int64{0, 1, 9, 10, 99, 100, 1000, 9999, 10000, 10001, 99999, 100000, 1e6, 1e8, 1e9, 1e10, 1e10 + 1,
		1e11, 1e12, 1e13, 1e14, 1e14 + 1e10, 1e15, 1e16, 1e17, 1e18 - 1, 999_999_999_999_999_000, 123456789012345678,
		100_000_000_000_001, 5_000_000_000, 10_000_000_100, -1, -1e10, -(1e18 - 1), -123456789}
	for k := range 18 {
		p := int64(1)
		for range k {
			p *= 10
		}
		us = append(us, p, p-1, p+1, 7*p, p/10000*9999)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		us = append(us, rng.Int64N(1e18), rng.Int64N(1e14)*1e4, rng.Int64N(1e10)*1e8, rng.Int64N(1e6))
	}
	texts := make([]string, len(us))
	for i, u := range us {
		if u < 0 {
			texts[i] = "-" + costText(-u)
		} else {
			texts[i] = costText(u)
		}
	}
	var sends [][]byte
	if err := st.Pool().QueryRow(t.Context(), `SELECT array_agg(numeric_send(t::numeric(18, 10)) ORDER BY i) FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i)`, texts).Scan(&sends); err != nil {
		t.Fatal(err)
	}
	conn, err := st.Pool().Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for i, u := range us {
		var e copyEnc
		e.numeric(u)
		if n := int(binary.BigEndian.Uint32(e.buf)); n != len(e.buf)-4 {
			t.Fatalf("numeric(%d): length %d, value of %d bytes", u, n, len(e.buf)-4)
		}
		if got := e.buf[4:]; string(got) != string(sends[i]) {
			t.Errorf("numeric(%d) = % x, numeric_send(%s) = % x", u, got, texts[i], sends[i])
		}
		rr := conn.Conn().PgConn().ExecParams(t.Context(), `SELECT $1::text`, [][]byte{e.buf[4:]},
			[]uint32{pgtype.NumericOID}, []int16{pgtype.BinaryFormatCode}, []int16{pgtype.TextFormatCode})
		res := rr.Read()
		if res.Err != nil {
			t.Fatalf("numeric(%d) sent to Postgres: %v", u, res.Err)
		}
		if got := string(res.Rows[0][0]); got != texts[i] {
			t.Errorf("numeric(%d) reads as %s in Postgres, want %s", u, got, texts[i])
		}
	}
}

// TestBinaryCopyConflictIsDirectConflict: a duplicate key met by the binary
// COPY is a direct conflict (the staged write then runs), and a value out of
// its column's range is an error of its own, not a conflict.
func TestBinaryCopyConflictIsDirectConflict(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	rs, _ := variedCommit(20)
	plan, ok := newDirectPlan(rs, []int{0})
	if !ok {
		t.Fatal("no direct plan")
	}
	tx, err := st.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // test
	rows := &directResultRows{rs: rs, p: plan, storePrompts: true}
	if err := copyBinary(ctx, tx, directResultsTable.sql, rows); err != nil {
		t.Fatal(err)
	}
	err = copyBinary(ctx, tx, directResultsTable.sql, rows)
	if !isDirectConflict(err) {
		t.Fatalf("second COPY of a row: %v, want a duplicate key", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	rs[0].Signals.WordCount = math.MaxInt32 + 1
	tx, err = st.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // test
	err = copyBinary(ctx, tx, directResultsTable.sql, rows)
	if err == nil || isDirectConflict(err) || !strings.Contains(err.Error(), "beyond an integer column") {
		t.Fatalf("COPY of an out-of-range integer: %v", err)
	}
}

// TestCopyReaderStreams: the reader returns the same stream whatever the
// size of the reads, in full reads but the last.
func TestCopyReaderStreams(t *testing.T) {
	t.Parallel()
	rs, _ := variedCommit(300)
	plan, ok := newDirectPlan(rs, nil)
	if !ok {
		t.Fatal("no direct plan")
	}
	var want copyEnc
	want.buf = append(want.buf, copyHeader...)
	rows := &directLogRows{rs: rs, p: plan}
	for k := range rows.rows() {
		rows.encode(&want, k)
	}
	want.buf = append(want.buf, 0xff, 0xff)
	for _, size := range []int{1, 7, 4096, 65531, 1 << 20} {
		r := &copyReader{rows: rows, n: rows.rows()}
		var got []byte
		p := make([]byte, size)
		for {
			n, err := r.Read(p)
			got = append(got, p[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if n != size && len(got) != len(want.buf) {
				t.Fatalf("read of %d: %d bytes before the end", size, n)
			}
		}
		if string(got) != string(want.buf) {
			t.Errorf("reads of %d: %d bytes, want the %d of the stream", size, len(got), len(want.buf))
		}
	}
}

// BenchmarkDirectCopyEncode encodes the COPY rows of a 512-prompt commit of
// the worker's shape (one ok attempt each): binary is copyReader, pgx is
// what pgx's CopyFrom did with the old sources (Values, then pgtype.Map's
// Encode of every value, as its buildCopyBuf does).
func BenchmarkDirectCopyEncode(b *testing.B) {
	batch := append(workerBatch(), workerBatch()...)
	for i := range batch {
		batch[i].Job.ID = fmt.Sprint(i)
	}
	finals := make([]int, len(batch))
	for i := range finals {
		finals[i] = i
	}
	plan, ok := newDirectPlan(batch, finals)
	if !ok {
		b.Fatal("no direct plan")
	}
	b.Run("binary", func(b *testing.B) {
		p := make([]byte, 65531)
		for b.Loop() {
			for _, rows := range []copyRows{&directLogRows{rs: batch, p: plan}, &directResultRows{rs: batch, p: plan, storePrompts: true}} {
				buf := copyBufs.Get().(*[]byte)
				r := &copyReader{rows: rows, n: rows.rows(), enc: copyEnc{buf: (*buf)[:0]}}
				for {
					if _, err := r.Read(p); err == io.EOF {
						break
					}
				}
				*buf = r.enc.buf[:0]
				copyBufs.Put(buf)
			}
		}
	})
	b.Run("pgx", func(b *testing.B) {
		st := setup(b)
		oids := func(t directTable) []uint32 {
			conn, err := st.Pool().Acquire(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Release()
			sd, err := conn.Conn().Prepare(b.Context(), t.name, "SELECT "+strings.Join(t.columns, ", ")+" FROM "+t.name)
			if err != nil {
				b.Fatal(err)
			}
			var o []uint32
			for _, f := range sd.Fields {
				o = append(o, f.DataTypeOID)
			}
			return o
		}
		logOIDs, resultOIDs := oids(directLogTable), oids(directResultsTable)
		m := pgtype.NewMap()
		buf := make([]byte, 0, 65536)
		for b.Loop() {
			for _, src := range []struct {
				src  pgx.CopyFromSource
				oids []uint32
			}{
				{&directLogSource{rs: batch, p: plan, k: -1}, logOIDs},
				{&directResultSource{resultSource: resultSource{rs: batch, idx: plan.finals, storePrompts: true, i: -1}, p: plan}, resultOIDs},
			} {
				for src.src.Next() {
					vs, _ := src.src.Values()
					buf = binary.BigEndian.AppendUint16(buf, uint16(len(vs))) //nolint:gosec // 31 at most
					for i, v := range vs {
						sp := len(buf)
						buf = binary.BigEndian.AppendUint32(buf, math.MaxUint32)
						out, err := m.Encode(src.oids[i], pgtype.BinaryFormatCode, v, buf)
						if err != nil {
							b.Fatal(err)
						}
						if out != nil {
							buf = out
							binary.BigEndian.PutUint32(buf[sp:], uint32(len(buf)-sp-4)) //nolint:gosec // a row
						}
					}
					if len(buf) > 60000 {
						buf = buf[:0]
					}
				}
			}
		}
	})
}

// BenchmarkNewDirectPlan plans the direct write of a 512-prompt commit of
// the worker's shape (one ok attempt each).
func BenchmarkNewDirectPlan(b *testing.B) {
	batch := append(workerBatch(), workerBatch()...)
	finals := make([]int, len(batch))
	for i := range batch {
		batch[i].Job.ID, finals[i] = fmt.Sprint(i), i
	}
	for b.Loop() {
		if _, ok := newDirectPlan(batch, finals); !ok {
			b.Fatal("no direct plan")
		}
	}
}
