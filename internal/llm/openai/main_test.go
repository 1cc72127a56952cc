package openai_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine the adapter or the fake servers start must be gone when
// the tests end: no stuck reads, no abandoned connections.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
