package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// The direct write: Write first COPYs the request_log and results rows
// straight into their tables, with each prompt's cost, attempts and
// usage_estimated computed here from the attempts of this transaction, and
// the per-batch sums for batches.spent_usd too. That is correct when the
// COPY inserts every row (a duplicate makes it fail: it is then rolled back
// and the staged write, which skips duplicates, runs instead) and when no
// earlier attempt of a stored prompt is in request_log: the prompts that may
// have some are in unresolved_attempts (migration 061), and resolveSQL
// recomputes those from request_log in the same transaction.
//
// Costs become numeric(18, 10) here exactly as Postgres casts a float8 to
// it (15 significant digits, then rounded half away from zero to 10
// decimals), so both writes store the same amounts to the last digit.

// costScale is numeric(18, 10)'s unit, 1e-10 USD.
const costScale = 10

// costUnits returns f as Postgres' f::float8::numeric(18, 10) in units of
// 1e-10, or false if it does not fit (it would fail the cast).
func costUnits(f float64) (int64, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, false
	}
	if f == 0 {
		return 0, true
	}
	// float8_numeric prints "%.15g" (DBL_DIG digits): d.dddddddddddddde±x.
	s := strconv.FormatFloat(f, 'e', 14, 64)
	mant, exp := s[:16], s[17:]
	e, err := strconv.Atoi(exp)
	if err != nil {
		return 0, false
	}
	digits, err := strconv.ParseInt(mant[:1]+mant[2:], 10, 64) // 15 digits: f = digits × 10^(e-14)
	if err != nil {
		return 0, false
	}
	// units = digits × 10^(e-14+costScale)
	shift := e - 14 + costScale
	switch {
	case shift >= 0:
		for range shift {
			if digits > math.MaxInt64/10 {
				return 0, false
			}
			digits *= 10
		}
	case -shift > 15: // digits < 10^15 <= half of 10^-shift
		digits = 0
	default:
		p := int64(1)
		for range -shift {
			p *= 10
		}
		q, r := digits/p, digits%p
		if 2*r >= p { // half away from zero
			q++
		}
		digits = q
	}
	if digits >= 1e18 { // numeric(18, 10): below 10^8
		return 0, false
	}
	return digits, true
}

// costText is units as exact numeric text.
func costText(units int64) string {
	return fmt.Sprintf("%d.%0*d", units/1e10, costScale, units%1e10)
}

// directPlan is what a direct write COPYs, computed before its transaction.
type directPlan struct {
	logs   []logRef         // every attempt of every input, in key order
	units  []int64          // cost of logs[k]
	sums   map[Key]costSum  // per cleaned key: what its results row holds
	finals []int            // indexes into rs of the results rows, in key order
	spent  map[string]int64 // per cleaned batch id: cost of all its attempts
	keys   []Key            // cleaned key of rs[i], for every i with attempts or a results row ({} for the others)
}

type logRef struct{ i, j int }

type costSum struct {
	units     int64
	attempts  int32
	estimated bool
}

// newDirectPlan returns the plan of a direct write of rs (finals as WriteTx
// chose them), or false when only the staged write can store them: an
// attempt or result without its time (the staged write stamps now()), or a
// sum beyond numeric(18, 10).
func newDirectPlan(rs []prompt.Result, finals []int) (*directPlan, bool) {
	p := &directPlan{sums: make(map[Key]costSum, len(finals)), spent: map[string]int64{}, keys: make([]Key, len(rs))}
	for i := range rs {
		r := &rs[i]
		if len(r.Attempts) == 0 {
			continue
		}
		k := cleanKey(Key{r.Job.BatchID, r.Job.ID})
		p.keys[i] = k
		for j := range r.Attempts {
			a := &r.Attempts[j]
			u, ok := costUnits(a.CostUSD)
			if !ok || a.StartedAt.IsZero() {
				return nil, false
			}
			p.logs, p.units = append(p.logs, logRef{i, j}), append(p.units, u)
			s := p.sums[k]
			if s.units += u; s.units >= 1e18 {
				return nil, false
			}
			if clean(string(a.Outcome)) != string(prompt.OutcomeShadow) {
				s.attempts++
			}
			s.estimated = s.estimated || a.Estimated
			p.sums[k] = s
			if p.spent[k.BatchID] += u; p.spent[k.BatchID] >= 1e18 {
				return nil, false
			}
		}
	}
	for _, i := range finals {
		if rs[i].CompletedAt.IsZero() {
			return nil, false
		}
		if p.keys[i].BatchID == "" { // not set above (a set one is never empty: validate)
			p.keys[i] = cleanKey(Key{rs[i].Job.BatchID, rs[i].Job.ID})
		}
	}
	p.finals = slices.Clone(finals)
	// Key order, byte-wise (the staged write sorts COLLATE "C" too): two
	// writes of overlapping keys wait for each other instead of deadlocking.
	slices.SortFunc(p.finals, func(a, b int) int { return compareKeys(p.keys[a], p.keys[b]) })
	order := make([]int, len(p.logs))
	for k := range order {
		order[k] = k
	}
	slices.SortStableFunc(order, func(x, y int) int {
		a, b := p.logs[x], p.logs[y]
		return cmp.Or(compareKeys(p.keys[a.i], p.keys[b.i]),
			cmp.Compare(rs[a.i].Delivery, rs[b.i].Delivery),
			cmp.Compare(rs[a.i].Attempts[a.j].Attempt, rs[b.i].Attempts[b.j].Attempt))
	})
	logs, units := make([]logRef, len(order)), make([]int64, len(order))
	for k, o := range order {
		logs[k], units[k] = p.logs[o], p.units[o]
	}
	p.logs, p.units = logs, units
	return p, true
}

func compareKeys(a, b Key) int {
	return cmp.Or(cmp.Compare(a.BatchID, b.BatchID), cmp.Compare(a.PromptID, b.PromptID))
}

// spentRows are the batches.spent_usd additions of the plan, as addSpentSQL
// takes them.
func (p *directPlan) spentRows() (ids, usd []string) {
	for id, u := range p.spent {
		if u != 0 {
			ids, usd = append(ids, id), append(usd, costText(u))
		}
	}
	return ids, usd
}

// errDirectConflict says a direct write met a row that exists (or a
// deadlock): it was rolled back and the staged write must run.
var errDirectConflict = errors.New("direct write: a row exists")

// isDirectConflict reports whether a COPY of a direct write failed on a
// duplicate key or a deadlock.
func isDirectConflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "40P01")
}

// directResultsColumns are the staged columns and what the staged insert
// computes (request_log takes the staged columns as they are).
var directResultsColumns = append(slices.Clone(stageResultsColumns), "attempts", "cost_usd", "usage_estimated")

// directTable is where a direct write COPYs one kind of row.
type directTable struct {
	name    string
	columns []string
	sql     string // copySQL(name, columns)
}

var (
	directLogTable     = directTable{"request_log", stageLogColumns, copySQL("request_log", stageLogColumns)}
	directResultsTable = directTable{"results", directResultsColumns, copySQL("results", directResultsColumns)}
)

// copyDirect COPYs rows into t inside tx: in binary COPY format, encoded by
// rows, unless a test put another COPY (pgx's, the reference) in
// s.directCopy.
func (s *Store) copyDirect(ctx context.Context, tx pgx.Tx, t directTable, rows copyRows) error {
	if s.directCopy != nil {
		return s.directCopy(ctx, tx, t, rows)
	}
	return copyBinary(ctx, tx, t.sql, rows)
}

// directLogRows are a plan's request_log rows (stageLogColumns).
type directLogRows struct {
	rs []prompt.Result
	p  *directPlan
}

func (s *directLogRows) rows() int { return len(s.p.logs) }

func (s *directLogRows) encode(e *copyEnc, k int) {
	ref := s.p.logs[k]
	r := &s.rs[ref.i]
	a := &r.Attempts[ref.j]
	key := s.p.keys[ref.i]
	e.tuple(17)
	e.text(key.BatchID)
	e.text(key.PromptID)
	e.int4(a.Attempt)
	e.int4(r.Delivery)
	if r.Tier != "" {
		e.text(string(r.Tier))
	} else {
		e.null()
	}
	e.cleanText(a.Model)
	e.cleanText(string(a.Outcome))
	e.nullInt4(a.HTTPStatus)
	e.nullText(a.Error)
	e.int4(a.InputTokens)
	e.int4(a.OutputTokens)
	e.numeric(s.p.units[k])
	e.float8(ms(a.Latency))
	e.bool(a.Estimated)
	e.timestamptz(a.StartedAt)
	e.nullText(r.WorkerID)
	e.nullText(a.ProviderBatch)
}

// directResultRows are a plan's results rows (directResultsColumns): the
// staged columns as resultSource gives them, then attempts, cost_usd and
// usage_estimated.
type directResultRows struct {
	rs           []prompt.Result
	p            *directPlan
	storePrompts bool
	text         []byte // scratch
}

func (s *directResultRows) rows() int { return len(s.p.finals) }

func (s *directResultRows) encode(e *copyEnc, k int) {
	i := s.p.finals[k]
	r := &s.rs[i]
	e.tuple(31)
	e.cleanText(r.Job.BatchID)
	e.cleanText(r.Job.ID)
	if s.storePrompts {
		e.cleanText(r.Job.Prompt)
		e.nullText(r.Job.System)
	} else {
		e.null()
		e.null()
	}
	e.jsonb(metadataJSON(r.Job.Metadata))
	e.text(string(r.Tier))
	e.int4(r.Signals.WordCount)
	e.int4(r.Signals.TokenCount)
	e.int4(r.Signals.ComplexHits)
	e.int4(r.Signals.ModerateHits)
	e.text(string(r.Status))
	e.nullText(r.ModelUsed)
	if s.storePrompts {
		e.nullText(r.Response)
	} else {
		e.null()
	}
	e.nullText(r.FinishReason)
	e.int4(r.InputTokens)
	e.int4(r.OutputTokens)
	e.float8(ms(r.Latency))
	e.nullText(r.Error)
	e.nullTimestamptz(r.Job.EnqueuedAt)
	e.nullTimestamptz(r.CompletedAt)
	e.nullText(r.WorkerID)
	s.text = append(s.text[:0], r.Job.Prompt...) // []byte(r.Job.Prompt) would allocate
	sum := sha256.Sum256(s.text)
	e.bytea(sum[:])
	e.int4(runeCount(r.Job.Prompt))
	e.int4(runeCount(r.Response))
	e.int4(r.Delivery)
	e.nullInt8(r.Job.Seq)
	e.nullInt4(r.Job.MaxTokens)
	if r.Signals.Scored {
		e.float8(r.Signals.Score)
	} else {
		e.null()
	}
	sc := s.p.sums[s.p.keys[i]]
	e.int4(int(sc.attempts))
	e.numeric(sc.units)
	e.bool(sc.estimated)
}

// insertUnresolvedSQL records the prompts whose attempts this transaction
// logs without a results row (migration 061). It runs after the results
// rows are inserted, so a prompt stored by this transaction is not recorded.
const insertUnresolvedSQL = `
INSERT INTO unresolved_attempts (batch_id, prompt_id)
SELECT DISTINCT k.batch_id, k.prompt_id FROM unnest($1::text[], $2::text[]) AS k(batch_id, prompt_id)
WHERE NOT EXISTS (SELECT 1 FROM results r WHERE r.batch_id = k.batch_id AND r.prompt_id = k.prompt_id)
ORDER BY 1, 2
ON CONFLICT DO NOTHING`

// resolveSQL takes the results rows this transaction inserted ($1, $2) out
// of unresolved_attempts and, for those that were in it, sets cost_usd,
// attempts and usage_estimated from every attempt of the prompt in
// request_log (earlier deliveries' and this transaction's).
const resolveSQL = `
WITH s AS (
    DELETE FROM unresolved_attempts u
    USING unnest($1::text[], $2::text[]) AS k(batch_id, prompt_id)
    WHERE u.batch_id = k.batch_id AND u.prompt_id = k.prompt_id
    RETURNING u.batch_id, u.prompt_id
)
UPDATE results res SET attempts = l.n, cost_usd = l.cost, usage_estimated = l.estimated
FROM s CROSS JOIN LATERAL (` + attemptsOfPromptSQL + `) l
WHERE res.batch_id = s.batch_id AND res.prompt_id = s.prompt_id`

// attemptsOfPromptSQL sums the request_log rows of prompt (s.batch_id,
// s.prompt_id) as its results row holds them: every attempt visible to the
// statement, i.e. committed by earlier deliveries (transient ones, or
// concurrent ones that committed first) plus this transaction's.
const attemptsOfPromptSQL = `
    SELECT (count(*) FILTER (WHERE r.outcome <> 'shadow'))::integer AS n, coalesce(sum(r.cost_usd), 0) AS cost,
           coalesce(bool_or(r.estimated), false) AS estimated
    FROM request_log r
    WHERE r.batch_id = s.batch_id AND r.prompt_id = s.prompt_id`
