package store

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// CSVHeader is the header line of ExportCSV: the reference article's
// RequestLog columns, preceded by the ids.
var CSVHeader = []string{"batch_id", "prompt_id", "prompt_tier", "model_used", "attempts", "cost_usd", "latency_ms"}

// ExportCSV writes one line per results row of batchID (every batch when
// batchID is ""), ordered by batch and prompt id, streaming rows from the
// database to w. cost_usd is formatted with 8 decimals and latency_ms with 1,
// as in the article; model_used is empty when no model was used.
func (s *Store) ExportCSV(ctx context.Context, batchID string, w io.Writer) error {
	rows, err := s.pool.Query(ctx, `
		SELECT batch_id, prompt_id, tier, coalesce(model_used, ''), attempts, cost_usd::float8, latency_ms
		FROM results WHERE `+batchScope(clean(batchID))+`
		ORDER BY batch_id, prompt_id`, clean(batchID))
	if err != nil {
		return fmt.Errorf("store: export csv: %w", err)
	}
	defer rows.Close()
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("store: export csv: %w", err)
	}
	var (
		batch, id, tier, model string
		attempts               int64
		cost, latency          float64
		rec                    = make([]string, len(CSVHeader))
	)
	for rows.Next() {
		if err := rows.Scan(&batch, &id, &tier, &model, &attempts, &cost, &latency); err != nil {
			return fmt.Errorf("store: export csv: %w", err)
		}
		rec[0], rec[1], rec[2], rec[3] = batch, id, tier, model
		rec[4] = strconv.FormatInt(attempts, 10)
		rec[5] = strconv.FormatFloat(cost, 'f', 8, 64)
		rec[6] = strconv.FormatFloat(latency, 'f', 1, 64)
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("store: export csv: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: export csv: %w", err)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("store: export csv: %w", err)
	}
	return nil
}

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
}

// ExportOption configures ExportJSONL.
type ExportOption func(*exportOptions)

type exportOptions struct{ text bool }

// IncludeText makes ExportJSONL include prompt, system and response text
// (when stored), which it leaves out by default because of their size.
func IncludeText() ExportOption { return func(o *exportOptions) { o.text = true } }

func resultQuery(text bool, where string) string {
	textCols := "NULL::text, NULL::text, NULL::text"
	if text {
		textCols = "prompt, system, response"
	}
	return `SELECT batch_id, prompt_id, ` + textCols + `, metadata, tier, word_count, token_count,
		complex_hits, moderate_hits, status, model_used, attempts, finish_reason, input_tokens,
		output_tokens, cost_usd::float8, latency_ms, error, enqueued_at, completed_at, worker_id,
		prompt_sha256, prompt_chars, response_chars, usage_estimated, delivery
		FROM results WHERE ` + where + ` ORDER BY batch_id, prompt_id`
}

func scanResult(row pgx.Row, r *ResultRow) error {
	var sum []byte
	var meta []byte
	err := row.Scan(&r.BatchID, &r.PromptID, &r.Prompt, &r.System, &r.Response, &meta, &r.Tier,
		&r.WordCount, &r.TokenCount, &r.ComplexHits, &r.ModerateHits, &r.Status, &r.ModelUsed,
		&r.Attempts, &r.FinishReason, &r.InputTokens, &r.OutputTokens, &r.CostUSD, &r.LatencyMS,
		&r.Error, &r.EnqueuedAt, &r.CompletedAt, &r.WorkerID, &sum, &r.PromptChars,
		&r.ResponseChars, &r.UsageEstimated, &r.Delivery)
	r.PromptSHA256 = hex.EncodeToString(sum)
	r.Metadata = nil
	if meta != nil {
		r.Metadata = json.RawMessage(meta)
	}
	return err
}

// ExportJSONL writes one JSON object per results row of batchID (every batch
// when batchID is ""), ordered by batch and prompt id, streaming rows from
// the database to w. See ResultRow for the fields.
func (s *Store) ExportJSONL(ctx context.Context, batchID string, w io.Writer, opts ...ExportOption) error {
	var o exportOptions
	for _, opt := range opts {
		opt(&o)
	}
	b := clean(batchID)
	rows, err := s.pool.Query(ctx, resultQuery(o.text, batchScope(b)), b)
	if err != nil {
		return fmt.Errorf("store: export jsonl: %w", err)
	}
	defer rows.Close()
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	var r ResultRow
	for rows.Next() {
		if err := scanResult(rows, &r); err != nil {
			return fmt.Errorf("store: export jsonl: %w", err)
		}
		if err := enc.Encode(&r); err != nil {
			return fmt.Errorf("store: export jsonl: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: export jsonl: %w", err)
	}
	if err := bw.Flush(); err != nil {
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
