package store

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// CSVHeader is the fixed part of ExportCSV's header: the reference article's
// RequestLog columns preceded by the ids, then what a user filters on.
// IncludeText adds prompt, system and response; every top-level metadata key
// of the exported rows follows as a column of its own (a CSV input's extra
// columns come back as they went in).
var CSVHeader = []string{"batch_id", "prompt_id", "prompt_tier", "model_used", "attempts", "cost_usd", "latency_ms",
	"status", "input_tokens", "output_tokens", "error"}

var csvTextColumns = []string{"prompt", "system", "response"}

// ExportCSV writes a header and one line per results row of batchID (every
// batch when batchID is ""), in input order, streaming rows from the database
// to w. cost_usd has 8 decimals and latency_ms 1, as in the article;
// model_used is empty when no model was used. A metadata value that is a
// JSON string is written as its text, any other value as JSON; a metadata key
// that equals a fixed column is written as "metadata.<key>".
func (s *Store) ExportCSV(ctx context.Context, batchID string, w io.Writer, opts ...ExportOption) error {
	o := exportOpts(opts)
	keys, err := s.metadataKeys(ctx, batchID, o.status)
	if err != nil {
		return fmt.Errorf("store: export csv: %w", err)
	}
	header := slices.Clone(CSVHeader)
	if o.text {
		header = append(header, csvTextColumns...)
	}
	fixed := len(header)
	for _, k := range keys {
		if slices.Contains(header[:fixed], k) {
			k = "metadata." + k
		}
		header = append(header, k)
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return fmt.Errorf("store: export csv: %w", err)
	}
	rec := make([]string, len(header))
	var meta map[string]json.RawMessage
	err = s.eachResult(ctx, batchID, o, func(r *ResultRow) error {
		rec[0], rec[1], rec[2], rec[3] = r.BatchID, r.PromptID, r.Tier, str(r.ModelUsed)
		rec[4] = strconv.Itoa(r.Attempts)
		rec[5] = strconv.FormatFloat(r.CostUSD, 'f', 8, 64)
		rec[6] = strconv.FormatFloat(r.LatencyMS, 'f', 1, 64)
		rec[7], rec[8], rec[9], rec[10] = r.Status, strconv.Itoa(r.InputTokens), strconv.Itoa(r.OutputTokens), str(r.Error)
		if o.text {
			rec[11], rec[12], rec[13] = str(r.Prompt), str(r.System), str(r.Response)
		}
		clear(meta)
		if len(r.Metadata) > 0 && r.Metadata[0] == '{' {
			if err := json.Unmarshal(r.Metadata, &meta); err != nil {
				return fmt.Errorf("batch %q, prompt %q: metadata: %w", r.BatchID, r.PromptID, err)
			}
		}
		for i, k := range keys {
			rec[fixed+i] = metadataCell(meta[k])
		}
		return cw.Write(rec)
	})
	if err != nil {
		return fmt.Errorf("store: export csv: %w", err)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("store: export csv: %w", err)
	}
	return nil
}

// metadataKeys lists the top-level metadata keys of the rows an export
// writes, sorted.
func (s *Store) metadataKeys(ctx context.Context, batchID, status string) ([]string, error) {
	b := clean(batchID)
	rows, err := s.pool.Query(ctx, `
		SELECT DISTINCT k FROM results,
			jsonb_object_keys(CASE WHEN jsonb_typeof(metadata) = 'object' THEN metadata ELSE '{}' END) AS k
		WHERE `+batchScope(b)+` AND ($2::text = '' OR status = $2)
		ORDER BY k`, b, status)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

func metadataCell(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return ""
	}
	if v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	return string(v)
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
