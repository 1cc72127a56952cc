package providerbatch

import (
	"context"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
)

// Client is a provider's batch API, as the submitter and poller use it. The
// openai, anthropic, gemini and sim adapters implement it besides
// llm.Provider; a provider without one cannot be batch-mode.
type Client interface {
	// SubmitBatch creates one batch of reqs for model (a bare model id),
	// labelled so that ListBatches can find it again where the provider
	// keeps a label.
	SubmitBatch(ctx context.Context, label, model string, reqs []llm.BatchRequest) (llm.Batch, error)
	GetBatch(ctx context.Context, id string) (llm.Batch, error)
	// BatchResults reads the results of an ended batch.
	BatchResults(ctx context.Context, id string) ([]llm.BatchResult, error)
	CancelBatch(ctx context.Context, id string) error
	// ListBatches lists batches created at or after since.
	ListBatches(ctx context.Context, since time.Time) ([]llm.Batch, error)
}
