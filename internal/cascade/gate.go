package cascade

import (
	"context"

	"github.com/promptcascade/promptcascade/internal/pricing"
)

// A CallGate is asked before every model call of a Run, and before a
// cached answer is taken (Call.Cached: the answer costs nothing, so there is
// nothing to reserve, but a canceled or paused batch must not get it). An
// error stops the Run at once, without the call or the cached answer: the
// Outcome is Transient and carries the error in Stopped. The worker uses it so that a delivery that may have been
// handed to another worker (its process was paused past AckWait, say) checks
// that the prompt is still unanswered before it pays for another call, that
// the prompt's batch still runs, and to reserve the call's estimated cost
// against the batch's budget.
type CallGate func(ctx context.Context, call Call) error

// Call is the model call a CallGate is asked about.
type Call struct {
	Model string        // "provider/model"
	Price pricing.Price // the model's price (what the call's cost will be computed with)
	// Cached: no call, the model's answer would come from the response
	// cache at $0 (a budget needs nothing set aside for it).
	Cached bool
}

type callGateKey struct{}

// WithCallGate returns a context whose Runs ask gate before each call.
func WithCallGate(ctx context.Context, gate CallGate) context.Context {
	return context.WithValue(ctx, callGateKey{}, gate)
}

func callGateFrom(ctx context.Context) CallGate {
	g, _ := ctx.Value(callGateKey{}).(CallGate)
	return g
}
