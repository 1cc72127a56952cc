package input

import (
	"strconv"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// nextText returns the next non-blank line as a job whose id is the line
// number.
func (r *Reader) nextText() (prompt.Job, error) {
	l, err := r.nextLine()
	if err != nil {
		return prompt.Job{}, err
	}
	job := prompt.Job{ID: strconv.Itoa(l.n), Prompt: string(l.b)}
	if reason := r.checkText("the prompt", job.Prompt, true); reason != "" {
		return prompt.Job{}, r.lineError(l.n, "%s", reason)
	}
	return r.accept(l.n, job)
}
