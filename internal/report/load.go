// Package report reads the report views of one batch (or of every batch)
// from Postgres, derives the article's warnings from them, and renders them
// as aligned text, Markdown, JSON, CSV, or one self-contained HTML page with
// inline SVG charts.
package report

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Querier runs a query: a *pgxpool.Pool, a pgx.Tx or a *pgx.Conn.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Tier is one tier_summary row.
type Tier struct {
	BatchID          string  `json:"batch_id"`
	Tier             string  `json:"tier"`
	Prompts          int64   `json:"prompts"`
	Share            float64 `json:"share"`
	Succeeded        int64   `json:"succeeded"`
	Failed           int64   `json:"failed"`
	CostUSD          float64 `json:"cost_usd"`
	CostPerPromptUSD float64 `json:"cost_per_prompt_usd"`
	P50MS            float64 `json:"p50_ms"`
	P95MS            float64 `json:"p95_ms"`
	P99MS            float64 `json:"p99_ms"`
	Cascaded         int64   `json:"cascaded"`
	CascadeRate      float64 `json:"cascade_rate"`
	QualityFailed    int64   `json:"quality_failed"`
	QualityFailRate  float64 `json:"quality_fail_rate"`
}

// Model is one model_summary row.
type Model struct {
	BatchID       string  `json:"batch_id"`
	Model         string  `json:"model"`
	Attempts      int64   `json:"attempts"`
	Calls         int64   `json:"calls"`
	OK            int64   `json:"ok"`
	QualityFailed int64   `json:"quality_failed"`
	RateLimited   int64   `json:"rate_limited"`
	Timeouts      int64   `json:"timeouts"`
	Errors        int64   `json:"errors"`
	Skipped       int64   `json:"skipped"`
	SuccessRate   float64 `json:"success_rate"`
	P50MS         float64 `json:"p50_ms"`
	P95MS         float64 `json:"p95_ms"`
	P99MS         float64 `json:"p99_ms"`
	InputTokens   int64   `json:"input_tokens"`
	OutputTokens  int64   `json:"output_tokens"`
	CostUSD       float64 `json:"cost_usd"`
	WastedUSD     float64 `json:"wasted_usd"`
	// CacheHits are answers taken from the response cache: attempts, not
	// calls (nor errors, nor skips), at $0.
	CacheHits int64 `json:"cache_hits"`
}

// Failures is the number of calls that did not give a kept-quality answer.
func (m Model) Failures() int64 { return m.Calls - m.OK }

// Saving is one savings row. The *USD fields about other models are 0 and
// the model names empty when the batch has no recorded prices.
type Saving struct {
	BatchID        string  `json:"batch_id"`
	Tier           string  `json:"tier"`
	Prompts        int64   `json:"prompts"`
	InputTokens    int64   `json:"input_tokens"`
	OutputTokens   int64   `json:"output_tokens"`
	PaidUSD        float64 `json:"paid_usd"`
	FirstModelUSD  float64 `json:"first_model_usd"`
	StrongestModel string  `json:"strongest_model"`
	StrongestUSD   float64 `json:"strongest_usd"`
	SavedUSD       float64 `json:"saved_usd"`
	SavedShare     float64 `json:"saved_share"`
	CheapestModel  string  `json:"cheapest_model"`
	CheapestUSD    float64 `json:"cheapest_usd"`
	PremiumUSD     float64 `json:"premium_usd"`
	PremiumShare   float64 `json:"premium_share"`
}

// Priced reports whether the batch had model prices recorded.
func (s Saving) Priced() bool { return s.StrongestModel != "" }

// Misrouted is one misrouting row.
type Misrouted struct {
	BatchID      string  `json:"batch_id"`
	PromptID     string  `json:"prompt_id"`
	Tier         string  `json:"tier"`
	Kind         string  `json:"kind"`
	FirstModel   string  `json:"first_model"`
	FirstOutcome string  `json:"first_outcome"`
	ModelUsed    string  `json:"model_used"`
	Status       string  `json:"status"`
	Attempts     int64   `json:"attempts"`
	WordCount    int64   `json:"word_count"`
	TokenCount   int64   `json:"token_count"`
	ComplexHits  int64   `json:"complex_hits"`
	ModerateHits int64   `json:"moderate_hits"`
	CostUSD      float64 `json:"cost_usd"`
	Prompt       string  `json:"prompt"`
}

// LabelMisrouted is one label_misrouting row: labels show a better model.
type LabelMisrouted struct {
	BatchID      string  `json:"batch_id"`
	PromptID     string  `json:"prompt_id"`
	Tier         string  `json:"tier"`
	Kind         string  `json:"kind"` // over_routed or under_routed
	ModelUsed    string  `json:"model_used"`
	UsedCorrect  *bool   `json:"used_correct"` // nil: no label for the model used
	InsteadModel string  `json:"instead_model"`
	InsteadUSD   float64 `json:"instead_usd"`
	CostUSD      float64 `json:"cost_usd"`
	Prompt       string  `json:"prompt"`
}

// MisroutedCount is the number of misrouting rows of a batch, tier and kind.
type MisroutedCount struct {
	BatchID string `json:"batch_id"`
	Tier    string `json:"tier"`
	Kind    string `json:"kind"`
	Prompts int64  `json:"prompts"`
}

// Flow counts prompts by the model tried first and the model whose answer
// was kept ("" for a failed prompt).
type Flow struct {
	BatchID    string `json:"batch_id"`
	FirstModel string `json:"first_model"`
	ModelUsed  string `json:"model_used"`
	Prompts    int64  `json:"prompts"`
}

// LatencyBucket counts a model's calls whose latency is at most UpToMS
// (and above the previous bucket's bound); UpToMS 0 is the overflow bucket.
type LatencyBucket struct {
	BatchID string  `json:"batch_id"`
	Model   string  `json:"model"`
	UpToMS  float64 `json:"up_to_ms"`
	Calls   int64   `json:"calls"`
}

// OutcomeSlice counts a model's attempts by outcome class in one time slice.
type OutcomeSlice struct {
	BatchID string    `json:"batch_id"`
	Model   string    `json:"model"`
	Start   time.Time `json:"start"`
	OK      int64     `json:"ok"`
	Quality int64     `json:"quality_failed"`
	Limited int64     `json:"rate_limited"`
	Errors  int64     `json:"errors"`
}

// Report is everything `cascadectl report` shows.
type Report struct {
	Batch          string           `json:"batch,omitempty"` // "" for every batch
	Batches        []string         `json:"batches"`
	Tiers          []Tier           `json:"tier_summary"`
	Models         []Model          `json:"model_summary"`
	Savings        []Saving         `json:"savings"`
	MisroutedCount []MisroutedCount `json:"misrouting_counts"`
	Misrouted      []Misrouted      `json:"misrouting"` // at most Options.MisroutedLimit per batch
	// LabelMisroutedCount and LabelMisrouted: the same against labels
	// (label_misrouting), for batches whose prompts have labels.
	LabelMisroutedCount []MisroutedCount `json:"label_misrouting_counts"`
	LabelMisrouted      []LabelMisrouted `json:"label_misrouting"`
	Warnings            []Warning        `json:"warnings"`
	Flows               []Flow           `json:"cascade_flow"`
	Latency             []LatencyBucket  `json:"latency_histogram"`
	Outcomes            []OutcomeSlice   `json:"outcomes_over_time"`
}

// Options tune Load.
type Options struct {
	// MisroutedLimit caps the misrouting rows listed per batch (default 20;
	// the counts cover all of them).
	MisroutedLimit int
	// Thresholds of the warnings; zero fields take the defaults.
	Thresholds Thresholds
}

// LatencyBoundsMS are the upper bounds of the latency histogram's buckets.
var LatencyBoundsMS = []float64{50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000}

// outcomeSlices is the number of time slices of the outcome mix.
const outcomeSlices = 12

// scope is the WHERE condition of a view query for one batch ($1) or for
// every batch ($1 = ”): two distinct statements, so that a prepared plan for
// one batch always filters on the batch_id index.
func scope(batch, alias string) string {
	if batch == "" {
		return "$1::text = ''"
	}
	return alias + "batch_id = $1"
}

// step is one query of Load and how to scan each of its rows.
type step struct {
	name string
	sql  string
	args []any
	scan func(pgx.Rows) error
}

// countsStep counts a misrouting view's rows by batch, tier and kind.
func countsStep(view, where string, dst *[]MisroutedCount) step {
	return step{view + " counts", `SELECT batch_id, tier, kind, count(*) FROM ` + view + ` WHERE ` + where + `
		GROUP BY 1, 2, 3 ORDER BY 1, array_position(ARRAY['simple','moderate','complex'], tier), 3`,
		nil, func(rows pgx.Rows) error {
			var c MisroutedCount
			err := rows.Scan(&c.BatchID, &c.Tier, &c.Kind, &c.Prompts)
			*dst = append(*dst, c)
			return err
		}}
}

// Load reads the report of batch, or of every batch when batch is "". A
// batch with no results gives a report with no tiers.
func Load(ctx context.Context, q Querier, batch string, o Options) (*Report, error) {
	if o.MisroutedLimit <= 0 {
		o.MisroutedLimit = 20
	}
	r := &Report{Batch: batch}
	w := scope(batch, "")
	steps := []step{
		{"tier_summary", `SELECT batch_id, tier, prompts, share::float8, succeeded, failed, cost_usd::float8,
			cost_per_prompt_usd::float8, coalesce(p50_ms, 0), coalesce(p95_ms, 0), coalesce(p99_ms, 0),
			cascaded, cascade_rate::float8, quality_failed, quality_fail_rate::float8
			FROM tier_summary WHERE ` + w + ` ORDER BY batch_id, array_position(ARRAY['simple','moderate','complex'], tier)`,
			nil, func(rows pgx.Rows) error {
				var t Tier
				err := rows.Scan(&t.BatchID, &t.Tier, &t.Prompts, &t.Share, &t.Succeeded, &t.Failed, &t.CostUSD,
					&t.CostPerPromptUSD, &t.P50MS, &t.P95MS, &t.P99MS, &t.Cascaded, &t.CascadeRate,
					&t.QualityFailed, &t.QualityFailRate)
				r.Tiers = append(r.Tiers, t)
				return err
			}},
		{"model_summary", `SELECT batch_id, model, attempts, calls, ok, quality_failed, rate_limited, timeouts,
			errors, skipped, coalesce(success_rate, 0)::float8, coalesce(p50_ms, 0), coalesce(p95_ms, 0),
			coalesce(p99_ms, 0), input_tokens, output_tokens, cost_usd::float8, wasted_usd::float8, cache_hits
			FROM model_summary WHERE ` + w + ` ORDER BY batch_id, cost_usd DESC, model`,
			nil, func(rows pgx.Rows) error {
				var m Model
				err := rows.Scan(&m.BatchID, &m.Model, &m.Attempts, &m.Calls, &m.OK, &m.QualityFailed,
					&m.RateLimited, &m.Timeouts, &m.Errors, &m.Skipped, &m.SuccessRate, &m.P50MS, &m.P95MS,
					&m.P99MS, &m.InputTokens, &m.OutputTokens, &m.CostUSD, &m.WastedUSD, &m.CacheHits)
				r.Models = append(r.Models, m)
				return err
			}},
		{"savings", `SELECT batch_id, tier, prompts, input_tokens, output_tokens, paid_usd::float8,
			coalesce(first_model_usd, 0)::float8, coalesce(strongest_model, ''), coalesce(strongest_usd, 0)::float8,
			coalesce(saved_usd, 0)::float8, coalesce(saved_share, 0)::float8, coalesce(cheapest_model, ''),
			coalesce(cheapest_usd, 0)::float8, coalesce(premium_usd, 0)::float8, coalesce(premium_share, 0)::float8
			FROM savings WHERE ` + w + ` ORDER BY batch_id, array_position(ARRAY['simple','moderate','complex'], tier)`,
			nil, func(rows pgx.Rows) error {
				var s Saving
				err := rows.Scan(&s.BatchID, &s.Tier, &s.Prompts, &s.InputTokens, &s.OutputTokens, &s.PaidUSD,
					&s.FirstModelUSD, &s.StrongestModel, &s.StrongestUSD, &s.SavedUSD, &s.SavedShare,
					&s.CheapestModel, &s.CheapestUSD, &s.PremiumUSD, &s.PremiumShare)
				r.Savings = append(r.Savings, s)
				return err
			}},
		countsStep("misrouting", w, &r.MisroutedCount),
		{"misrouting", `SELECT batch_id, prompt_id, tier, kind, coalesce(first_model, ''), coalesce(first_outcome, ''),
			coalesce(model_used, ''), status, attempts, word_count, token_count, complex_hits, moderate_hits,
			cost_usd::float8, coalesce(prompt, '')
			FROM (SELECT m.*, row_number() OVER (PARTITION BY batch_id ORDER BY kind DESC, cost_usd DESC, prompt_id) AS n
			      FROM misrouting m WHERE ` + w + `) m
			WHERE n <= $2 ORDER BY batch_id, n`,
			[]any{o.MisroutedLimit}, func(rows pgx.Rows) error {
				var m Misrouted
				err := rows.Scan(&m.BatchID, &m.PromptID, &m.Tier, &m.Kind, &m.FirstModel, &m.FirstOutcome,
					&m.ModelUsed, &m.Status, &m.Attempts, &m.WordCount, &m.TokenCount, &m.ComplexHits,
					&m.ModerateHits, &m.CostUSD, &m.Prompt)
				r.Misrouted = append(r.Misrouted, m)
				return err
			}},
		countsStep("label_misrouting", w, &r.LabelMisroutedCount),
		{"label misrouting", `SELECT batch_id, prompt_id, tier, kind, model_used, used_correct, instead_model,
			instead_usd::float8, cost_usd::float8, coalesce(prompt, '')
			FROM (SELECT m.*, row_number() OVER (PARTITION BY batch_id ORDER BY kind DESC, cost_usd - instead_usd DESC, prompt_id) AS n
			      FROM label_misrouting m WHERE ` + w + `) m
			WHERE n <= $2 ORDER BY batch_id, n`,
			[]any{o.MisroutedLimit}, func(rows pgx.Rows) error {
				var m LabelMisrouted
				err := rows.Scan(&m.BatchID, &m.PromptID, &m.Tier, &m.Kind, &m.ModelUsed, &m.UsedCorrect,
					&m.InsteadModel, &m.InsteadUSD, &m.CostUSD, &m.Prompt)
				r.LabelMisrouted = append(r.LabelMisrouted, m)
				return err
			}},
		{"cascade flow", `SELECT r.batch_id, coalesce(a.first_model, ''),
			CASE WHEN r.status = 'succeeded' THEN coalesce(r.model_used, '') ELSE '' END AS used, count(*)
			FROM results r LEFT JOIN prompt_attempts a USING (batch_id, prompt_id)
			WHERE ` + scope(batch, "r.") + ` GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
			nil, func(rows pgx.Rows) error {
				var f Flow
				var used string
				err := rows.Scan(&f.BatchID, &f.FirstModel, &used, &f.Prompts)
				f.ModelUsed = used
				r.Flows = append(r.Flows, f)
				return err
			}},
		{"latency histogram", `SELECT batch_id, model, coalesce(($3::float8[])[width_bucket(latency_ms, $2::float8[]) + 1], 0), count(*)
			FROM request_log
			WHERE ` + w + ` AND outcome NOT IN ('cooldown_skip', 'canceled')
			  AND NOT (outcome = 'context_window' AND http_status IS NULL)
			GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
			[]any{latencyEdges(), LatencyBoundsMS}, func(rows pgx.Rows) error {
				var b LatencyBucket
				err := rows.Scan(&b.BatchID, &b.Model, &b.UpToMS, &b.Calls)
				r.Latency = append(r.Latency, b)
				return err
			}},
		{"outcomes over time", `WITH l AS (
				SELECT batch_id, model, outcome, coalesce(started_at, created_at) AS at FROM request_log WHERE ` + w + `
			), span AS (
				SELECT batch_id, min(at) AS t0, greatest(extract(epoch FROM max(at) - min(at)), 0.001) AS secs
				FROM l GROUP BY batch_id
			)
			SELECT l.batch_id, l.model,
				span.t0 + make_interval(secs => (span.secs / $2::int * least(floor(extract(epoch FROM l.at - span.t0) / span.secs * $2::int), $2::int - 1))::float8) AS slice,
				count(*) FILTER (WHERE outcome = 'ok'),
				count(*) FILTER (WHERE outcome IN ('quality_failed', 'empty_response')),
				count(*) FILTER (WHERE outcome = 'rate_limited'),
				count(*) FILTER (WHERE outcome NOT IN ('ok', 'quality_failed', 'empty_response', 'rate_limited'))
			FROM l JOIN span USING (batch_id)
			GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
			[]any{outcomeSlices}, func(rows pgx.Rows) error {
				var s OutcomeSlice
				err := rows.Scan(&s.BatchID, &s.Model, &s.Start, &s.OK, &s.Quality, &s.Limited, &s.Errors)
				s.Start = s.Start.UTC()
				r.Outcomes = append(r.Outcomes, s)
				return err
			}},
	}
	for _, st := range steps {
		rows, err := q.Query(ctx, st.sql, append([]any{batch}, st.args...)...)
		if err != nil {
			return nil, fmt.Errorf("report: %s: %w", st.name, err)
		}
		for rows.Next() {
			if err := st.scan(rows); err != nil {
				rows.Close()
				return nil, fmt.Errorf("report: %s: %w", st.name, err)
			}
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("report: %s: %w", st.name, err)
		}
	}
	seen := map[string]bool{}
	for _, t := range r.Tiers {
		if !seen[t.BatchID] {
			seen[t.BatchID] = true
			r.Batches = append(r.Batches, t.BatchID)
		}
	}
	r.Warnings = Warnings(r, o.Thresholds)
	return r, nil
}

// latencyEdges are the histogram's bounds as width_bucket wants them: a
// value equal to a bound falls in the bucket it closes.
func latencyEdges() []float64 {
	out := make([]float64, len(LatencyBoundsMS))
	for i, b := range LatencyBoundsMS {
		out[i] = b + 1e-9
	}
	return out
}
