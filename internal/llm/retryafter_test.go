package llm_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
)

var now = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{"1.5", 1500 * time.Millisecond, true},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"Saturday, 14-Mar-26 15:10:26 GMT", time.Minute, true}, // RFC 850, also an HTTP-date
		{"99999999999", llm.MaxRetryAfter, true},
		{"", 0, false},
		{"-3", 0, false},
		{"soon", 0, false},
		{"NaN", 0, false},
		{"1e400", 0, false},
	} {
		got, ok := llm.ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseResetDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1s", time.Second, true},
		{"6m0s", 6 * time.Minute, true},
		{"20ms", 20 * time.Millisecond, true},
		{"1h2m3.5s", time.Hour + 2*time.Minute + 3500*time.Millisecond, true},
		{"7.66s", 7660 * time.Millisecond, true},
		{"2m59.56s", 2*time.Minute + 59560*time.Millisecond, true},
		{"30", 30 * time.Second, true},
		{"0.5s", 500 * time.Millisecond, true},
		{"9999h", llm.MaxRetryAfter, true},
		{"-1s", 0, true},
		{"", 0, false},
		{"later", 0, false},
	} {
		got, ok := llm.ParseResetDuration(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseResetDuration(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseResetTime(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"2026-03-14T15:09:46Z", 20 * time.Second, true},
		{"2026-03-14T16:09:46+01:00", 20 * time.Second, true},
		{"2026-03-14T15:09:26.250Z", 250 * time.Millisecond, true},
		{"2026-03-14T15:00:00Z", 0, true},
		{"Sat, 14 Mar 2026 15:09:46 GMT", 0, false},
		{"", 0, false},
	} {
		got, ok := llm.ParseResetTime(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseResetTime(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestStandardRetryAfter(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	if _, ok := llm.StandardRetryAfter(h, now); ok {
		t.Error("hint found in empty headers")
	}
	h.Set("Retry-After", "4")
	if d, _ := llm.StandardRetryAfter(h, now); d != 4*time.Second {
		t.Errorf("retry-after: got %v", d)
	}
	h.Set("Retry-After-Ms", "120")
	if d, _ := llm.StandardRetryAfter(h, now); d != 120*time.Millisecond {
		t.Errorf("retry-after-ms should win: got %v", d)
	}
}

func TestWindowRetryAfter(t *testing.T) {
	t.Parallel()
	windows := []llm.RateWindow{
		{Reset: "Reset-Requests", Remaining: "Remaining-Requests"},
		{Reset: "Reset-Tokens", Remaining: "Remaining-Tokens"},
	}
	for _, tc := range []struct {
		name string
		h    map[string]string
		want time.Duration
		ok   bool
	}{
		{"none", nil, 0, false},
		{"exhausted window wins over a later one", map[string]string{
			"Reset-Requests": "1m", "Remaining-Requests": "3", "Reset-Tokens": "2s", "Remaining-Tokens": "0"}, 2 * time.Second, true},
		{"latest of exhausted", map[string]string{
			"Reset-Requests": "1m", "Remaining-Requests": "0", "Reset-Tokens": "2s", "Remaining-Tokens": "0"}, time.Minute, true},
		{"unknown remaining: latest reset", map[string]string{"Reset-Requests": "1m", "Reset-Tokens": "2s"}, time.Minute, true},
		{"unparsable reset ignored", map[string]string{"Reset-Requests": "soon", "Reset-Tokens": "2s"}, 2 * time.Second, true},
	} {
		h := http.Header{}
		for k, v := range tc.h {
			h.Set(k, v)
		}
		got, ok := llm.WindowRetryAfter(h, llm.ParseResetDuration, windows...)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: got %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"7", "1.5", "Wed, 21 Oct 2015 07:28:00 GMT", "1h2m3.5s", "2026-03-14T15:09:46Z", "-1", "1e309"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, d := range []time.Duration{
			must(llm.ParseRetryAfter(s, now)), must(llm.ParseRetryAfterMillis(s)),
			must(llm.ParseResetDuration(s)), must(llm.ParseResetTime(s, now)),
		} {
			if d < 0 || d > llm.MaxRetryAfter {
				t.Fatalf("%q gave %v, outside [0, %v]", s, d, llm.MaxRetryAfter)
			}
		}
	})
}

func must(d time.Duration, _ bool) time.Duration { return d }
