package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/pricing"
)

const cacheTiers = "tiers:\n  simple: [sim/small]\n  moderate: [sim/small]\n  complex: [sim/small]\n"

// TestRoutesCacheKey: cache: {ttl: ...} takes days, weeks and Go
// durations; without the key the cache is off.
func TestRoutesCacheKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		yaml string
		want time.Duration
	}{
		{"", 0},
		{"cache: {ttl: 30d}\n", 30 * 24 * time.Hour},
		{"cache:\n  ttl: 2w\n", 14 * 24 * time.Hour},
		{"cache: {ttl: 90m}\n", 90 * time.Minute},
	} {
		rt, err := config.ParseRoutes("r.yaml", strings.NewReader(cacheTiers+tc.yaml), pricing.Builtin())
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if rt.Cache.TTL != tc.want {
			t.Errorf("%q: ttl = %v, want %v", tc.yaml, rt.Cache.TTL, tc.want)
		}
	}
}

// TestRoutesCacheErrors: a bad cache key or ttl is one file:line error.
func TestRoutesCacheErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ yaml, want string }{
		{"cache: {ttl: soon}\n", `r.yaml:5: cache.ttl: "soon": want a whole number of days (90d), weeks (12w) or a duration (36h)`},
		{"cache:\n  ttl: 0d\n", `r.yaml:6: cache.ttl: "0d": must be more than zero`},
		{"cache: {ttl: -3h}\n", `r.yaml:5: cache.ttl: "-3h": must be more than zero`},
		{"cache: {ttl: [30d]}\n", `r.yaml:5: cache.ttl: want an age like "30d" or "12h", got a list`},
		{"cache: {tll: 30d}\n", "r.yaml:5: cache: unknown key \"tll\" (did you mean \"ttl\"?)\nr.yaml:5: cache.ttl: required (e.g. ttl: 30d)"},
		{"cache: {}\n", `r.yaml:5: cache.ttl: required (e.g. ttl: 30d)`},
		{"cache: 30d\n", `r.yaml:5: cache: want a mapping of keys, got "30d"`},
	} {
		_, err := config.ParseRoutes("r.yaml", strings.NewReader(cacheTiers+tc.yaml), pricing.Builtin())
		if err == nil {
			t.Errorf("%q: no error; want %q", tc.yaml, tc.want)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("%q: error = %q\nwant %q", tc.yaml, err, tc.want)
		}
	}
}
