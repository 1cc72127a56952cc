package llm

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter caps every parsed retry hint, so that a garbled or hostile
// header cannot park a prompt for years. Callers still cap a hint at the
// attempt's own deadline.
const MaxRetryAfter = 24 * time.Hour

// ParseRetryAfter parses one Retry-After value: delay-seconds ("7", and the
// non-standard "1.5" some servers send) or an HTTP-date ("Wed, 21 Oct 2015
// 07:28:00 GMT"), which is turned into a duration from now. A date in the past
// gives 0. ok is false when v is empty or not one of those forms.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if d, ok := parseSeconds(v, time.Second); ok {
		return d, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return clampDuration(t.Sub(now)), true
}

// ParseRetryAfterMillis parses a retry-after-ms value ("1500", "250.5"), as
// sent by OpenAI and Anthropic.
func ParseRetryAfterMillis(v string) (time.Duration, bool) {
	return parseSeconds(strings.TrimSpace(v), time.Millisecond)
}

// ParseResetDuration parses an OpenAI-style rate-limit reset value such as
// "1s", "6m0s", "20ms", "1h2m3.5s" or "7.66s" (Go duration syntax), and, for
// servers that send a bare number, seconds ("30").
func ParseResetDuration(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if d, ok := parseSeconds(v, time.Second); ok {
		return d, true
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, false
	}
	return clampDuration(d), true
}

// ParseResetTime parses an RFC 3339 reset time ("2026-05-01T12:00:30Z", as in
// Anthropic's anthropic-ratelimit-*-reset headers) and returns the duration
// from now until then; a time in the past gives 0.
func ParseResetTime(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, false
	}
	return clampDuration(t.Sub(now)), true
}

// StandardRetryAfter reads the headers every provider may send: retry-after-ms
// (more precise, so preferred) and then Retry-After.
func StandardRetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if d, ok := ParseRetryAfterMillis(h.Get("Retry-After-Ms")); ok {
		return d, true
	}
	return ParseRetryAfter(h.Get("Retry-After"), now)
}

// RateWindow names the headers of one rate-limit window: when it resets and,
// optionally, how much of it remains.
type RateWindow struct {
	Reset     string // e.g. "x-ratelimit-reset-tokens"
	Remaining string // e.g. "x-ratelimit-remaining-tokens"; may be ""
}

// WindowRetryAfter derives a retry hint from rate-limit window headers. When
// the remaining headers say which windows are used up (a value of 0), it waits
// for the latest of those to reset; when they say nothing, it waits for the
// latest reset of all windows present, since any of them may be the one that
// refused the call. parse turns one reset value into a duration.
func WindowRetryAfter(h http.Header, parse func(string) (time.Duration, bool), windows ...RateWindow) (time.Duration, bool) {
	var all, exhausted time.Duration
	var anyAll, anyExhausted bool
	for _, w := range windows {
		d, ok := parse(h.Get(w.Reset))
		if !ok {
			continue
		}
		if !anyAll || d > all {
			all, anyAll = d, true
		}
		if w.Remaining == "" {
			continue
		}
		if rem, err := strconv.ParseFloat(strings.TrimSpace(h.Get(w.Remaining)), 64); err == nil && rem <= 0 {
			if !anyExhausted || d > exhausted {
				exhausted, anyExhausted = d, true
			}
		}
	}
	if anyExhausted {
		return exhausted, true
	}
	return all, anyAll
}

// parseSeconds parses a non-negative decimal number of units.
func parseSeconds(v string, unit time.Duration) (time.Duration, bool) {
	if v == "" || !(v[0] >= '0' && v[0] <= '9' || v[0] == '.') {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, false
	}
	max := float64(MaxRetryAfter) / float64(unit)
	if f > max {
		return MaxRetryAfter, true
	}
	return time.Duration(math.Round(f * float64(unit))), true
}

func clampDuration(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	if d > MaxRetryAfter {
		return MaxRetryAfter
	}
	return d
}

// QuotaHeaders names one provider's rate-limit headers, read into a Quota.
type QuotaHeaders struct {
	Requests, Tokens QuotaNames
	// ParseReset turns a reset value into the time until the window is
	// full again (ParseResetDuration for OpenAI, ParseResetTime for
	// Anthropic).
	ParseReset func(v string, now time.Time) (time.Duration, bool)
}

// QuotaNames are the headers of one window.
type QuotaNames struct{ Limit, Remaining, Reset string }

// Read returns what h says; windows whose remaining header is absent or
// unreadable are left unknown.
func (q QuotaHeaders) Read(h http.Header, now time.Time) Quota {
	if q.ParseReset == nil {
		return Quota{}
	}
	read := func(n QuotaNames) QuotaWindow {
		var w QuotaWindow
		rem, err := strconv.ParseFloat(strings.TrimSpace(h.Get(n.Remaining)), 64)
		if err != nil || math.IsNaN(rem) || math.IsInf(rem, 0) {
			return w
		}
		w.Known, w.Remaining = true, max(rem, 0)
		if lim, err := strconv.ParseFloat(strings.TrimSpace(h.Get(n.Limit)), 64); err == nil && lim > 0 && !math.IsInf(lim, 0) {
			w.Limit = lim
		}
		if d, ok := q.ParseReset(h.Get(n.Reset), now); ok {
			w.Reset = d
		}
		return w
	}
	return Quota{Requests: read(q.Requests), Tokens: read(q.Tokens)}
}
