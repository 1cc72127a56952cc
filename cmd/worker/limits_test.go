package main

import (
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/limit"
)

func TestLimitsSummary(t *testing.T) {
	snaps := []limit.Snapshot{
		{Model: "sim/a", Limit: 24, InFlight: 20, Waiting: 3, Rate: 41.5, Paused: 120 * time.Millisecond, Calls: 900, RateLimited: 12},
		{Model: "sim/b", Limit: 8},
	}
	got := limitsSummary(snaps)
	if want := "sim/a limit 24 in_flight 20 waiting 3 rate 41.5/s paused 120ms 429s 12"; got != want {
		t.Errorf("summary %q, want %q (models never called are left out)", got, want)
	}
}
