package input

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// readResult is everything a Reader gave for one input.
type readResult struct {
	jobs   []prompt.Job
	errs   []*LineError
	fatal  error // the error that ended reading, nil at io.EOF
	format Format
}

func (r readResult) ids() []string {
	var ids []string
	for _, j := range r.jobs {
		ids = append(ids, j.ID)
	}
	return ids
}

// readAll reads input (named name) to the end, as enqueue would: reporting
// line errors and going on, stopping at any other error.
func readAll(t testing.TB, name string, f Format, input string, opts Options) readResult {
	t.Helper()
	rd, err := NewReader(strings.NewReader(input), name, f, opts)
	if err != nil {
		return readResult{fatal: err}
	}
	return drain(t, rd)
}

func drain(t testing.TB, rd *Reader) readResult {
	t.Helper()
	res := readResult{format: rd.Format()}
	for range 1_000_000 {
		job, err := rd.Next()
		if err == io.EOF {
			return res
		}
		var le *LineError
		switch {
		case errors.As(err, &le):
			res.errs = append(res.errs, le)
		case err != nil:
			res.fatal = err
			if _, again := rd.Next(); again != err {
				t.Errorf("Next after %v returned %v, want the same error", err, again)
			}
			return res
		default:
			res.jobs = append(res.jobs, job)
		}
	}
	t.Fatal("reader did not end")
	return res
}
