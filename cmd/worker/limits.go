package main

import (
	"fmt"
	"strings"

	"github.com/promptcascade/promptcascade/internal/limit"
)

// limitsSource is what the progress line needs of the cascade.
type limitsSource interface{ Limits() []limit.Snapshot }

// limitsSummary is the progress line's view of the models called so far:
// "sim/a limit 24 in_flight 20 waiting 3 rate 41.5/s paused 120ms; ...".
func limitsSummary(snaps []limit.Snapshot) string {
	var b strings.Builder
	for _, s := range snaps {
		if s.Calls == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s limit %d in_flight %d waiting %d", s.Model, s.Limit, s.InFlight, s.Waiting)
		if s.Rate > 0 {
			fmt.Fprintf(&b, " rate %.1f/s", s.Rate)
		}
		if s.Paused > 0 {
			fmt.Fprintf(&b, " paused %v", s.Paused.Round(1e6))
		}
		if s.RateLimited > 0 {
			fmt.Fprintf(&b, " 429s %d", s.RateLimited)
		}
	}
	return b.String()
}
