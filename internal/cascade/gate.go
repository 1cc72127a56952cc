package cascade

import "context"

// A CallGate is asked before every model call of a Run. An error stops the
// Run at once, without the call: the Outcome is Transient and carries the
// error in Stopped. The worker uses it so that a delivery that may have been
// handed to another worker (its process was paused past AckWait, say) checks
// that the prompt is still unanswered before it pays for another call.
type CallGate func(ctx context.Context) error

type callGateKey struct{}

// WithCallGate returns a context whose Runs ask gate before each call.
func WithCallGate(ctx context.Context, gate CallGate) context.Context {
	return context.WithValue(ctx, callGateKey{}, gate)
}

func callGateFrom(ctx context.Context) CallGate {
	g, _ := ctx.Value(callGateKey{}).(CallGate)
	return g
}
