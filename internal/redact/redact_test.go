package redact

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestKnownSecrets(t *testing.T) {
	t.Parallel()
	r := New("sk-abc/def+ghi", "", "ab", "sk-abc/def+ghi-longer")
	for in, want := range map[string]string{
		"key sk-abc/def+ghi here":           "key [REDACTED] here",
		"longer sk-abc/def+ghi-longer done": "longer [REDACTED] done",
		"escaped sk-abc%2Fdef%2Bghi in URL": "escaped [REDACTED] in URL",
		"short ab stays":                    "short ab stays",
		"nothing":                           "nothing",
	} {
		if got := r.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestErrorKeepsChain(t *testing.T) {
	t.Parallel()
	r := New("topsecret")
	err := r.Error(fmt.Errorf("calling with topsecret: %w", context.DeadlineExceeded))
	if err.Error() != "calling with [REDACTED]: context deadline exceeded" {
		t.Errorf("Error() = %q", err.Error())
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("redacted error lost its chain")
	}
	base := errors.New("nothing secret")
	if r.Error(base) != base {
		t.Error("an error without secrets should be returned unchanged")
	}
	if r.Error(nil) != nil {
		t.Error("Error(nil) != nil")
	}
}

func TestURLSecrets(t *testing.T) {
	t.Parallel()
	if got := URLSecrets("https://u:p4ssw0rd@host/"); len(got) != 1 || got[0] != "p4ssw0rd" {
		t.Errorf("URLSecrets = %q", got)
	}
	if got := URLSecrets("https://host/"); got != nil {
		t.Errorf("URLSecrets without userinfo = %q", got)
	}
}

func TestURL(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://alice:s3cret@127.0.0.1:4222", "nats://alice:[REDACTED]@127.0.0.1:4222"},
		{"nats://s3cretToken@host:4222", "nats://[REDACTED]@host:4222"},
		{"tls://u:p@ss/w@rd@host:4222", "tls://u:[REDACTED]@host:4222"},
		{"alice:s3cret@host:4222", "alice:[REDACTED]@host:4222"},
		{"nats://a:x1@h1:4222, nats://b:y2@h2:4222", "nats://a:[REDACTED]@h1:4222, nats://b:[REDACTED]@h2:4222"},
		{"nats://a:p w%zz@host", "nats://a:[REDACTED]@host"}, // not a valid URL, still redacted
		{"", ""},
	}
	for _, c := range cases {
		if got := URL(c.in); got != c.want {
			t.Errorf("URL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// Whatever the source of the text, URL credentials and credential-like
// tokens are masked; look-alikes in ordinary words are not.
func TestStringMasksURLsAndTokens(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`dial https://bob:hunter22@proxy:8080/v1 failed`:    `dial https://bob:[REDACTED]@proxy:8080/v1 failed`,
		`"url": "nats://tok3n99@h:4222"`:                    `"url": "nats://[REDACTED]@h:4222"`,
		"Incorrect API key provided: sk-proj-ABCDEF123456.": "Incorrect API key provided: sk-[REDACTED]",
		"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9 denied": "Authorization: Bearer [REDACTED] denied",
		"GET /v1beta/models?key=AIzaSyD-1234567890abc":      "GET /v1beta/models?key=AIza[REDACTED]",
		"gsk_abcdef123456 and xai-abcdefgh12":               "gsk_[REDACTED] and xai-[REDACTED]",
		"task-runner monkey=banana key=1 sk-abc ask-me":     "task-runner monkey=banana key=1 sk-abc ask-me",
		"https://example.com/path?q=1 stays":                "https://example.com/path?q=1 stays",
	} {
		if got := String(in); got != want {
			t.Errorf("String(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}

func TestNoFalsePositivesInWords(t *testing.T) {
	t.Parallel()
	const in = "task-1234567890 and risk-assessment-report"
	if got := String(in); got != in {
		t.Errorf("String(%q) = %q", in, got)
	}
}

// A known secret under 4 bytes is masked where it stands as a credential's
// value, and nowhere else: it is part of too many ordinary words.
func TestShortKnownSecrets(t *testing.T) {
	t.Parallel()
	r := New("ab", "x1")
	for in, want := range map[string]string{
		// Masked: the value of a credential key, or user:secret@host.
		"connect: NATS_PASSWORD=ab rejected":    "connect: NATS_PASSWORD=[REDACTED] rejected",
		`{"user":"alice","password":"ab"}`:      `{"user":"alice","password":"[REDACTED]"}`,
		"host=db user=root password=ab sslmode": "host=db user=root password=[REDACTED] sslmode",
		"Password: ab, token = 'x1'":            "Password: [REDACTED], token = '[REDACTED]'",
		"dial alice:ab@127.0.0.1:4222 failed":   "dial alice:[REDACTED]@127.0.0.1:4222 failed",
		"nats://alice:ab@h:4222":                "nats://alice:[REDACTED]@h:4222",
		// Left alone: the same bytes in ordinary text, inside a word, or
		// a credential key with another value.
		"short ab stays":                 "short ab stays",
		"about the absolute tab, x1 ok":  "about the absolute tab, x1 ok",
		"password=abc and password=xab":  "password=abc and password=xab",
		"password ab (no separator)":     "password ab (no separator)",
		"ratio=ab: version x1":           "ratio=ab: version x1",
		"key: x1y and pass:ab1 and :ab:": "key: x1y and pass:ab1 and :ab:",
	} {
		if got := r.String(in); got != want {
			t.Errorf("String(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}
