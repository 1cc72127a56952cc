package llm_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/promptcascade/promptcascade/internal/llm"
)

func TestRedactor(t *testing.T) {
	t.Parallel()
	r := llm.NewRedactor("sk-abc/def+ghi", "", "ab", "sk-abc/def+ghi-longer")
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
	var zero llm.Redactor
	if got := zero.String("sk-abc"); got != "sk-abc" {
		t.Errorf("zero Redactor changed text: %q", got)
	}
}

func TestRedactorErrorKeepsChain(t *testing.T) {
	t.Parallel()
	r := llm.NewRedactor("topsecret")
	err := r.Error(fmt.Errorf("calling with topsecret: %w", context.DeadlineExceeded))
	if err.Error() != "calling with [REDACTED]: context deadline exceeded" {
		t.Errorf("Error() = %q", err.Error())
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("redacted error lost its chain")
	}
	if r.Error(nil) != nil {
		t.Error("Error(nil) != nil")
	}
}

func TestURLSecrets(t *testing.T) {
	t.Parallel()
	if got := llm.URLSecrets("https://u:p4ssw0rd@host/"); len(got) != 1 || got[0] != "p4ssw0rd" {
		t.Errorf("URLSecrets = %q", got)
	}
	if got := llm.URLSecrets("https://host/"); got != nil {
		t.Errorf("URLSecrets without userinfo = %q", got)
	}
}
