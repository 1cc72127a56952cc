package store

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Label sources (labels.source).
const (
	LabelImport = "import" // cascadectl labels import
	LabelShadow = "shadow" // a judge's verdict on a shadowed prompt
)

// Label is one labels row: whether Model answered Prompt well enough.
type Label struct {
	Source    string // LabelImport or LabelShadow
	Dataset   string // the file (import) or the batch (shadow)
	ItemID    string // the prompt's id within Dataset
	BatchID   string // shadow: the results row judged
	PromptID  string
	Prompt    string // "" is stored as NULL (shadow labels under STORE_PROMPTS=false)
	Model     string
	Correct   bool
	Reference string // shadow: the stronger model compared with
	Judge     string // shadow: the judge model

	sha [32]byte // prompt_sha256 when Prompt is not stored; zero means sha256(Prompt)
}

// labelChunk bounds the rows of one INSERT statement.
const labelChunk = 5000

// SaveLabels writes ls, one statement per few thousand rows, in one
// transaction. An imported label replaces an earlier import of the same
// (dataset, item, model); a shadow label never replaces an existing row (a
// redelivered prompt keeps its first verdict). It returns how many rows were
// inserted or changed.
func (s *Store) SaveLabels(ctx context.Context, ls []Label) (int64, error) {
	if len(ls) == 0 {
		return 0, nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: save labels: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	n, err := insertLabels(ctx, tx, ls)
	if err != nil {
		return 0, fmt.Errorf("store: save labels: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("store: save labels: commit: %w", err)
	}
	return n, nil
}

// insertLabels inserts ls, labelChunk rows per statement.
func insertLabels(ctx context.Context, tx pgx.Tx, ls []Label) (int64, error) {
	var n int64
	for lo := 0; lo < len(ls); lo += labelChunk {
		part := ls[lo:min(lo+labelChunk, len(ls))]
		cols := make([][]any, 11)
		for i := range cols {
			cols[i] = make([]any, len(part))
		}
		for i, l := range part {
			sum := l.sha
			if sum == ([32]byte{}) {
				sum = sha256.Sum256([]byte(l.Prompt))
			}
			for c, v := range []any{l.Source, clean(l.Dataset), clean(l.ItemID), nullText(l.BatchID), nullText(l.PromptID),
				nullText(l.Prompt), sum[:], clean(l.Model), l.Correct, nullText(l.Reference), nullText(l.Judge)} {
				cols[c][i] = v
			}
		}
		tag, err := tx.Exec(ctx, `
INSERT INTO labels (source, dataset, item_id, batch_id, prompt_id, prompt, prompt_sha256, model, correct, reference, judge)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[],
                     $8::text[], $9::boolean[], $10::text[], $11::text[])
ON CONFLICT (dataset, item_id, model) DO UPDATE
SET correct = EXCLUDED.correct, prompt = EXCLUDED.prompt, prompt_sha256 = EXCLUDED.prompt_sha256, created_at = now()
WHERE labels.source = 'import' AND EXCLUDED.source = 'import'
  AND (labels.correct, labels.prompt_sha256) IS DISTINCT FROM (EXCLUDED.correct, EXCLUDED.prompt_sha256)`,
			cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9], cols[10])
		if err != nil {
			return 0, fmt.Errorf("insert labels: %w", err)
		}
		n += tag.RowsAffected()
	}
	return n, nil
}

// StoredLabel is a labels row read back for training.
type StoredLabel struct {
	Source  string
	Dataset string
	ItemID  string
	Prompt  string
	Model   string
	Correct bool
}

// LabelsFor returns the labels that concern batches: shadow verdicts of their
// prompts, imported labels of a dataset named like one of them, and imported
// labels of any prompt they hold (matched by prompt_sha256). Rows without
// prompt text are left out.
func (s *Store) LabelsFor(ctx context.Context, batches []string) ([]StoredLabel, error) {
	rows, err := s.pool.Query(ctx, `
SELECT source, dataset, item_id, prompt, model, correct FROM labels l
WHERE prompt IS NOT NULL AND (
      l.batch_id = ANY($1) OR l.dataset = ANY($1)
   OR (l.source = 'import' AND l.prompt_sha256 IN (SELECT prompt_sha256 FROM results WHERE batch_id = ANY($1))))
ORDER BY dataset, item_id, model`, cleanAll(batches))
	if err != nil {
		return nil, fmt.Errorf("store: labels: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StoredLabel, error) {
		var l StoredLabel
		err := r.Scan(&l.Source, &l.Dataset, &l.ItemID, &l.Prompt, &l.Model, &l.Correct)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: labels: %w", err)
	}
	return out, nil
}

// FirstTry is what the first model called for a prompt did with it: passed
// (an answer that passed the quality gate) or not (failed the gate, an empty
// answer, or a prompt too long for its context window).
type FirstTry struct {
	BatchID  string
	PromptID string
	Prompt   string
	Tier     string
	Model    string
	Passed   bool
}

// DifficultyOutcomes are the request_log outcomes that say something about a
// prompt's difficulty for a model; the others (rate limits, server errors,
// timeouts, cooldown skips, shadow calls, ...) say nothing about the prompt
// and are passed over when looking for a prompt's first try.
var DifficultyOutcomes = []string{"ok", "quality_failed", "empty_response", "context_window"}

// notCalls are the request_log outcomes that are no call of the prompt's
// cascade: a model skipped while cooling down, an answer from the response
// cache, a shadow labelling call.
var notCalls = []string{"cooldown_skip", "cache_hit", "shadow"}

// FirstTries returns the first try of every prompt of batches that has its
// text stored: of the first model called for it (the earliest request_log
// row, by delivery then attempt, that is a call), its earliest row with one
// of DifficultyOutcomes. A prompt whose first model only erred (rate limits,
// timeouts, ...) has none, even if a later model answered: that answer says
// nothing about the first model.
func (s *Store) FirstTries(ctx context.Context, batches []string) ([]FirstTry, error) {
	rows, err := s.pool.Query(ctx, `
SELECT r.batch_id, r.prompt_id, r.prompt, r.tier, f.model, f.outcome = 'ok'
FROM results r
CROSS JOIN LATERAL (
    SELECT model FROM request_log l
    WHERE l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id AND l.outcome <> ALL($3)
    ORDER BY l.delivery, l.attempt LIMIT 1) m
CROSS JOIN LATERAL (
    SELECT model, outcome FROM request_log l
    WHERE l.batch_id = r.batch_id AND l.prompt_id = r.prompt_id AND l.model = m.model AND l.outcome = ANY($2)
    ORDER BY l.delivery, l.attempt LIMIT 1) f
WHERE r.batch_id = ANY($1) AND r.prompt IS NOT NULL
ORDER BY r.batch_id, r.prompt_id`, cleanAll(batches), DifficultyOutcomes, notCalls)
	if err != nil {
		return nil, fmt.Errorf("store: first tries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (FirstTry, error) {
		var f FirstTry
		err := r.Scan(&f.BatchID, &f.PromptID, &f.Prompt, &f.Tier, &f.Model, &f.Passed)
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: first tries: %w", err)
	}
	return out, nil
}

func cleanAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = clean(s)
	}
	return out
}
