package tokens_test

import (
	"fmt"

	"github.com/promptcascade/promptcascade/internal/tokens"
)

func ExampleCount() {
	fmt.Println(tokens.Count("hello world"))
	// Output: 2
}
