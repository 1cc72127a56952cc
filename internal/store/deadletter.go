package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// DeadLetterPreviewBytes is how many payload bytes ListDeadLetters reads for
// DeadLetterRow.Preview.
const DeadLetterPreviewBytes = 64

// DeadLetterFilter selects dead letters. Every field narrows the selection;
// the zero value selects every row not yet replayed.
type DeadLetterFilter struct {
	IDs             []int64  // only these ids; empty: any
	Subject         string   // only this subject; "": any
	Subjects        []string // only these subjects (with Subject); empty: any
	IncludeReplayed bool     // also rows already replayed
	AfterID         int64    // only ids greater than this (paging)
	Limit           int      // at most this many rows, lowest ids first; 0: no limit
	WithPayload     bool     // fill DeadLetterRow.Payload (the whole message body)
}

// DeadLetterRow is one dead_letters row as reports show it. The payload is
// user data: Preview is its beginning with everything unprintable escaped, so
// that it is safe to print on a terminal.
type DeadLetterRow struct {
	ID          int64
	StreamSeq   uint64
	Subject     string
	Error       string
	ReceivedAt  time.Time
	ReplayedAt  time.Time // zero if never replayed
	PayloadSize int
	Preview     string // Preview(payload, DeadLetterPreviewBytes)
	Payload     []byte // only with DeadLetterFilter.WithPayload
}

// Replayed reports whether the dead letter was replayed.
func (r DeadLetterRow) Replayed() bool { return !r.ReplayedAt.IsZero() }

// ListDeadLetters returns the dead letters that f selects, by id. Without
// f.WithPayload only the first bytes of each payload leave the database.
func (s *Store) ListDeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetterRow, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("store: list dead letters: limit %d is negative", f.Limit)
	}
	ids := f.IDs
	if ids == nil {
		ids = []int64{}
	}
	limit := any(nil) // LIMIT NULL: no limit
	if f.Limit > 0 {
		limit = f.Limit
	}
	subjects := cleanAll(f.Subjects)
	if f.Subject != "" {
		subjects = append(subjects, clean(f.Subject))
	}
	args := []any{ids, subjects, f.IncludeReplayed, f.AfterID, limit}
	payload := "payload"
	if !f.WithPayload {
		// A few bytes past the preview keep a rune at the cut whole.
		payload = "substring(payload FROM 1 FOR $6)"
		args = append(args, DeadLetterPreviewBytes+utf8.UTFMax)
	}
	rows, err := s.pool.Query(ctx, `
		SELECT id, stream_seq, subject, error, received_at, replayed_at, octet_length(payload), `+payload+`
		FROM dead_letters
		WHERE (cardinality($1::bigint[]) = 0 OR id = ANY($1))
			AND (cardinality($2::text[]) = 0 OR subject = ANY($2))
			AND ($3 OR replayed_at IS NULL)
			AND id > $4
		ORDER BY id
		LIMIT $5`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list dead letters: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DeadLetterRow, error) {
		var r DeadLetterRow
		var seq int64
		var replayed *time.Time
		var data []byte
		if err := row.Scan(&r.ID, &seq, &r.Subject, &r.Error, &r.ReceivedAt, &replayed, &r.PayloadSize, &data); err != nil {
			return r, err
		}
		r.StreamSeq = uint64(max(seq, 0))
		if replayed != nil {
			r.ReplayedAt = *replayed
		}
		r.Preview = preview(data, r.PayloadSize, DeadLetterPreviewBytes)
		if f.WithPayload {
			r.Payload = data
		}
		return r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list dead letters: %w", err)
	}
	return out, nil
}

// DeadLetterNotFoundError is returned by MarkReplayed for ids that have no
// dead_letters row.
type DeadLetterNotFoundError struct{ IDs []int64 }

func (e *DeadLetterNotFoundError) Error() string {
	s := make([]string, len(e.IDs))
	for i, id := range e.IDs {
		s[i] = strconv.FormatInt(id, 10)
	}
	return "no dead letter with id " + strings.Join(s, ", ")
}

// MarkReplayed sets replayed_at to now for every id, in one statement. Ids
// without a row are reported with a *DeadLetterNotFoundError (the others are
// marked).
func (s *Store) MarkReplayed(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	rows, err := s.pool.Query(ctx, `
		WITH req AS (SELECT DISTINCT unnest($1::bigint[]) AS id),
		upd AS (
			UPDATE dead_letters d SET replayed_at = now()
			FROM req WHERE d.id = req.id
			RETURNING d.id
		)
		SELECT req.id FROM req WHERE NOT EXISTS (SELECT 1 FROM upd WHERE upd.id = req.id) ORDER BY 1`, ids)
	if err != nil {
		return fmt.Errorf("store: mark dead letters replayed: %w", err)
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("store: mark dead letters replayed: %w", err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("store: mark dead letters replayed: %w", &DeadLetterNotFoundError{IDs: missing})
	}
	return nil
}

// IsDeadLetterNotFound reports whether err says that a dead letter does not
// exist.
func IsDeadLetterNotFound(err error) bool {
	var nf *DeadLetterNotFoundError
	return errors.As(err, &nf)
}

// Preview renders up to maxBytes bytes of b as one line that is safe to print
// on a terminal and unambiguous: printable characters as they are, a
// backslash as \\, common control characters as \n, \r, \t, other
// unprintable or invisible characters (controls, format characters such as
// bidirectional overrides, non-ASCII spaces) as \uXXXX or \UXXXXXXXX, and
// bytes that are not UTF-8 as \xNN. A rune is never cut in half. "…" marks
// text left out.
func Preview(b []byte, maxBytes int) string {
	return preview(b, len(b), maxBytes)
}

// preview is Preview for the first bytes b of a payload of size bytes.
func preview(b []byte, size, maxBytes int) string {
	var sb strings.Builder
	i := 0
	for i < len(b) && i < maxBytes {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			if len(b) < size && !utf8.FullRune(b[i:]) {
				break // a rune cut where the database stopped reading, not bad bytes
			}
			fmt.Fprintf(&sb, `\x%02x`, b[i])
			i++
			continue
		}
		switch {
		case r == '\\':
			sb.WriteString(`\\`)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == '\t':
			sb.WriteString(`\t`)
		case unicode.IsPrint(r):
			sb.WriteRune(r)
		case r <= 0xFFFF:
			fmt.Fprintf(&sb, `\u%04x`, r)
		default:
			fmt.Fprintf(&sb, `\U%08x`, r)
		}
		i += n
	}
	if i < size {
		sb.WriteString("…")
	}
	return sb.String()
}
