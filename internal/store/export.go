package store

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
)

// ResultRow is one results row as ExportJSONL writes it. Prompt, System and
// Response are filled only when text is asked for and was stored.
type ResultRow struct {
	BatchID        string          `json:"batch_id"`
	PromptID       string          `json:"prompt_id"`
	Prompt         *string         `json:"prompt,omitempty"`
	System         *string         `json:"system,omitempty"`
	Response       *string         `json:"response,omitempty"`
	Metadata       json.RawMessage `json:"metadata"`
	Tier           string          `json:"tier"`
	WordCount      int             `json:"word_count"`
	TokenCount     int             `json:"token_count"`
	ComplexHits    int             `json:"complex_hits"`
	ModerateHits   int             `json:"moderate_hits"`
	Status         string          `json:"status"`
	ModelUsed      *string         `json:"model_used"`
	Attempts       int             `json:"attempts"`
	FinishReason   *string         `json:"finish_reason"`
	InputTokens    int             `json:"input_tokens"`
	OutputTokens   int             `json:"output_tokens"`
	CostUSD        float64         `json:"cost_usd"`
	LatencyMS      float64         `json:"latency_ms"`
	Error          *string         `json:"error"`
	EnqueuedAt     *time.Time      `json:"enqueued_at"`
	CompletedAt    time.Time       `json:"completed_at"`
	WorkerID       *string         `json:"worker_id"`
	PromptSHA256   string          `json:"prompt_sha256"` // hex
	PromptChars    int             `json:"prompt_chars"`
	ResponseChars  int             `json:"response_chars"`
	UsageEstimated bool            `json:"usage_estimated"`
	Delivery       int             `json:"delivery"`
	Seq            *int64          `json:"seq"`        // position in the enqueue run's input; nil before migration 040
	MaxTokens      *int            `json:"max_tokens"` // the request's own limit; nil when it set none
}

// ExportOption configures the exports.
type ExportOption func(*exportOptions)

type exportOptions struct {
	text   bool
	status string
}

// IncludeText makes an export include prompt, system and response text
// (when stored).
func IncludeText() ExportOption { return func(o *exportOptions) { o.text = true } }

// OnlyStatus limits an export to results rows with status s ("" = all).
func OnlyStatus(s string) ExportOption { return func(o *exportOptions) { o.status = s } }

func exportOpts(opts []ExportOption) exportOptions {
	var o exportOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// resultQuery selects ResultRow columns. Rows come in input order: by batch,
// then the prompt's position in its enqueue run (rows without one last),
// then id.
func resultQuery(text bool, where string) string {
	textCols := "NULL::text, NULL::text, NULL::text"
	if text {
		textCols = "prompt, system, response"
	}
	return `SELECT batch_id, prompt_id, ` + textCols + `, metadata, tier, word_count, token_count,
		complex_hits, moderate_hits, status, model_used, attempts, finish_reason, input_tokens,
		output_tokens, cost_usd::float8, latency_ms, error, enqueued_at, completed_at, worker_id,
		prompt_sha256, prompt_chars, response_chars, usage_estimated, delivery, seq, max_tokens
		FROM results WHERE ` + where + ` ORDER BY batch_id, seq NULLS LAST, prompt_id`
}

// eachResult streams the results rows of batchID (every batch when "") that
// match o to fn, in input order. fn must not keep r.
func (s *Store) eachResult(ctx context.Context, batchID string, o exportOptions, fn func(r *ResultRow) error) error {
	b := clean(batchID)
	rows, err := s.pool.Query(ctx, resultQuery(o.text, batchScope(b)+" AND ($2::text = '' OR status = $2)"), b, o.status)
	if err != nil {
		return err
	}
	defer rows.Close()
	var r ResultRow
	for rows.Next() {
		if err := scanResult(rows, &r); err != nil {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return rows.Err()
}

func scanResult(row pgx.Row, r *ResultRow) error {
	var sum []byte
	var meta []byte
	err := row.Scan(&r.BatchID, &r.PromptID, &r.Prompt, &r.System, &r.Response, &meta, &r.Tier,
		&r.WordCount, &r.TokenCount, &r.ComplexHits, &r.ModerateHits, &r.Status, &r.ModelUsed,
		&r.Attempts, &r.FinishReason, &r.InputTokens, &r.OutputTokens, &r.CostUSD, &r.LatencyMS,
		&r.Error, &r.EnqueuedAt, &r.CompletedAt, &r.WorkerID, &sum, &r.PromptChars,
		&r.ResponseChars, &r.UsageEstimated, &r.Delivery, &r.Seq, &r.MaxTokens)
	r.PromptSHA256 = hex.EncodeToString(sum)
	r.Metadata = nil
	if meta != nil {
		r.Metadata = json.RawMessage(meta)
	}
	return err
}

// ExportJSONL writes one JSON object per results row of batchID (every batch
// when batchID is ""), in input order, streaming rows from the database to w.
// See ResultRow for the fields; text only with IncludeText.
func (s *Store) ExportJSONL(ctx context.Context, batchID string, w io.Writer, opts ...ExportOption) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	err := s.eachResult(ctx, batchID, exportOpts(opts), func(r *ResultRow) error { return enc.Encode(r) })
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("store: export jsonl: %w", err)
	}
	return nil
}

// Result returns the results row of k, with its text when stored; ok is
// false when there is none.
func (s *Store) Result(ctx context.Context, k Key) (r ResultRow, ok bool, err error) {
	k = cleanKey(k)
	row := s.pool.QueryRow(ctx, resultQuery(true, "batch_id = $1 AND prompt_id = $2"), k.BatchID, k.PromptID)
	if err := scanResult(row, &r); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return ResultRow{}, false, nil
		}
		return ResultRow{}, false, fmt.Errorf("store: result %q/%q: %w", k.BatchID, k.PromptID, err)
	}
	return r, true, nil
}
