package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/pricing"
)

const cooldownRoutesHead = `
tiers:
  simple: [openai/gpt-4o-mini]
  moderate: [openai/gpt-4o-mini]
  complex: [openai/gpt-4o-mini]
`

func TestRoutesCooldownShareKeys(t *testing.T) {
	t.Parallel()
	rt, err := config.ParseRoutes("test.yaml", strings.NewReader(cooldownRoutesHead+`
cooldown:
  failures: 4
  period: 20s
  window: 2m
  max_failure_share: 0.25
  min_calls: 12
`), pricing.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	want := config.Cooldown{Failures: 4, Period: 20 * time.Second, Window: 2 * time.Minute, MaxFailureShare: 0.25, MinCalls: 12}
	if rt.Cooldown != want {
		t.Errorf("cooldown = %+v, want %+v", rt.Cooldown, want)
	}

	// The share alone (no consecutive-failure trigger) is enough.
	rt, err = config.ParseRoutes("test.yaml", strings.NewReader(cooldownRoutesHead+`
cooldown: {period: 1m, window: 1m, max_failure_share: 0.5}
`), pricing.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	if want := (config.Cooldown{Period: time.Minute, Window: time.Minute, MaxFailureShare: 0.5}); rt.Cooldown != want {
		t.Errorf("cooldown = %+v, want %+v", rt.Cooldown, want)
	}
}

func TestRoutesCooldownShareErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ cooldown, want string }{
		{`{period: 1m, window: 1m, max_failure_share: 1}`, "test.yaml:6: cooldown.max_failure_share: must be > 0 and < 1"},
		{`{period: 1m, window: 1m, max_failure_share: -0.5}`, "cooldown.max_failure_share"},
		{`{period: 1m, window: 1m}`, "cooldown.max_failure_share"},
		{`{period: 1m, min_calls: 5}`, "cooldown.max_failure_share"},
		{`{period: 1m, max_failure_share: 0.5}`, "cooldown.window: must be > 0"},
		{`{period: 1m, window: -1m, max_failure_share: 0.5}`, "cooldown.window"},
		{`{window: 1m, max_failure_share: 0.5}`, "cooldown.period: must be > 0"},
		{`{period: 1m, window: 1m, max_failure_share: 0.5, min_calls: -3}`, "cooldown.min_calls"},
		{`{period: 1m, window: soon, max_failure_share: 0.5}`, `invalid duration "soon"`},
		{`{period: 1m, max_failure_rate: 0.5}`, "max_failure_rate"},
	}
	for _, tt := range tests {
		_, err := config.ParseRoutes("test.yaml", strings.NewReader(cooldownRoutesHead+"cooldown: "+tt.cooldown+"\n"), pricing.Builtin())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("cooldown: %s: err = %v, want it to contain %q", tt.cooldown, err, tt.want)
		}
	}
}
