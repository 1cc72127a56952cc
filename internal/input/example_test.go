package input_test

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/promptcascade/promptcascade/internal/input"
)

func ExampleReader_Next() {
	in := `{"id": "q1", "prompt": "What is the capital of France?"}
{"id": "q2", "prompt": ""}
{"prompt": "Explain how gradient descent works with momentum", "max_tokens": 256}
`
	r, err := input.NewReader(strings.NewReader(in), "prompts.jsonl", input.FormatAuto, input.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for {
		job, err := r.Next()
		var bad *input.LineError
		switch {
		case err == io.EOF:
			return
		case errors.As(err, &bad):
			fmt.Println("rejected:", bad) // report and go on
			continue
		case err != nil:
			fmt.Println("fatal:", err)
			return
		}
		fmt.Printf("%s: %q (max_tokens %d)\n", job.ID, job.Prompt, job.MaxTokens)
	}
	// Output:
	// q1: "What is the capital of France?" (max_tokens 0)
	// rejected: prompts.jsonl:2: "prompt" is empty
	// 3: "Explain how gradient descent works with momentum" (max_tokens 256)
}
