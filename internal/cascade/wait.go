package cascade

import "context"

// A CapacityWait is told when a Run starts waiting for a model's limiter
// (true) and when it has a permit or gave up (false), so that the caller
// can count prompts waiting for capacity apart from those being worked.
// It is called synchronously from the Run's goroutine and must be cheap.
type CapacityWait func(waiting bool)

type capacityWaitKey struct{}

// WithCapacityWait returns a context whose Runs tell f about their waits
// for a model's capacity.
func WithCapacityWait(ctx context.Context, f CapacityWait) context.Context {
	return context.WithValue(ctx, capacityWaitKey{}, f)
}

func capacityWaitFrom(ctx context.Context) CapacityWait {
	f, _ := ctx.Value(capacityWaitKey{}).(CapacityWait)
	return f
}
