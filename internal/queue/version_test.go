package queue

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestConfigPrintsWithoutSecrets(t *testing.T) {
	t.Parallel()
	cfg := Config{URL: "nats://bob:hunter22@h:4222,nats://tok3n99@h2", Password: "pw-hunter22", Token: "tok-hunter22"}
	log, logs := newLogger()
	log.Info("config", "cfg", cfg)
	for _, out := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%v", &cfg), logs.String()} {
		if strings.Contains(out, "hunter22") || strings.Contains(out, "tok3n99") {
			t.Errorf("secret printed: %s", out)
		}
		if !strings.Contains(out, "h:4222") {
			t.Errorf("URL host missing: %s", out)
		}
	}
}

func TestCheckServerVersion(t *testing.T) {
	t.Parallel()
	const at = "nats://127.0.0.1:4222"
	cases := []struct {
		version string
		ok      bool
	}{
		{"2.9.10", false},
		{"2.9.25", false},
		{"1.4.1", false},
		{"2.10.0-beta.1", false}, // a pre-release of the minimum is older than it
		{"2.10.0", true},
		{"2.10.29", true},
		{"2.11.0-beta", true},
		{"2.12.1", true},
		{"v2.12.1", true},
		{"2.15.2+build.7", true},
		{"3.0.0", true},
		{"2.10", true},
	}
	for _, c := range cases {
		err := checkServerVersion(c.version, at)
		if c.ok {
			if err != nil {
				t.Errorf("%s: unexpected error %v", c.version, err)
			}
			continue
		}
		var ve *ServerVersionError
		if !errors.As(err, &ve) {
			t.Errorf("%s: got %v, want *ServerVersionError", c.version, err)
			continue
		}
		msg := err.Error()
		for _, want := range []string{c.version, at, ">= 2.10", "2.12+ recommended"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: message %q lacks %q", c.version, msg, want)
			}
		}
	}
	want := "nats-server 2.9.10 at nats://127.0.0.1:4222 is too old: promptcascade needs >= 2.10 (2.12+ recommended)"
	if got := checkServerVersion("2.9.10", at).Error(); got != want {
		t.Errorf("message\n got %q\nwant %q", got, want)
	}
	for _, bad := range []string{"", "two.ten", "2", "2.x.1", "2.10.0.1"} {
		err := checkServerVersion(bad, at)
		if err == nil {
			t.Errorf("%q: accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), ">= 2.10") {
			t.Errorf("%q: message %q does not say what is needed", bad, err)
		}
	}
}
