package worker

import (
	"time"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// Observer is told, for metrics, how each delivery was settled and how long
// each commit took. Its methods run on the worker's goroutines (commit,
// fetch, sweep) and must be quick and safe for concurrent use.
type Observer interface {
	// Settled reports a delivery whose writes have committed, with its
	// result (nil for a redelivery found already answered): every attempt in
	// r was logged in request_log by that commit.
	Settled(s Settlement, r *prompt.Result)
	// Committed reports one committed write of n prompts and dead letters
	// that took d (retries included).
	Committed(n int, d time.Duration)
}

// Settlement is how a delivery ended on this worker.
type Settlement string

// Settlements; dead letters are counted in Stats.
const (
	SettledSucceeded   Settlement = "succeeded"    // results row stored, acked
	SettledFailed      Settlement = "failed"       // failed results row stored, acked
	SettledRequeued    Settlement = "requeued"     // transient: attempts stored, nak'd
	SettledAlreadyDone Settlement = "already_done" // answered before (or elsewhere meanwhile), acked
	SettledCanceled    Settlement = "canceled"     // its batch was canceled, acked
	SettledHandedOff   Settlement = "handed_off"   // waits for a provider batch (Postgres owns it), acked
)

type noObserver struct{}

func (noObserver) Settled(Settlement, *prompt.Result) {}
func (noObserver) Committed(int, time.Duration)       {}
