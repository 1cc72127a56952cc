package llm

import (
	"net/url"
	"strings"
)

// Redacted replaces every secret that Redactor finds.
const Redacted = "[REDACTED]"

// minSecretLen is the shortest value a Redactor treats as a secret. Shorter
// values are not real credentials, and replacing them would mangle ordinary
// text ("a", "sk").
const minSecretLen = 4

// Redactor removes known secrets (API keys, passwords in base URLs) from text
// before it reaches an error, a log line or a table. The zero value removes
// nothing. It is safe for concurrent use.
type Redactor struct {
	secrets []string
}

// NewRedactor returns a Redactor for the given secrets. Empty and very short
// values (under 4 bytes) are ignored. Each secret is also matched in its
// URL-escaped form, since servers sometimes echo a request URL or form value.
func NewRedactor(secrets ...string) Redactor {
	var r Redactor
	seen := make(map[string]bool)
	add := func(s string) {
		if len(s) < minSecretLen || seen[s] {
			return
		}
		seen[s] = true
		r.secrets = append(r.secrets, s)
	}
	for _, s := range secrets {
		add(s)
		add(url.QueryEscape(s))
		add(url.PathEscape(s))
	}
	// Longest first, so that a secret containing another is replaced whole.
	for i := 1; i < len(r.secrets); i++ {
		for j := i; j > 0 && len(r.secrets[j]) > len(r.secrets[j-1]); j-- {
			r.secrets[j], r.secrets[j-1] = r.secrets[j-1], r.secrets[j]
		}
	}
	return r
}

// URLSecrets returns the password of a URL's userinfo ("https://user:pw@host"),
// for NewRedactor. It returns nil when the URL has none or does not parse.
func URLSecrets(rawURL string) []string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return nil
	}
	if pw, ok := u.User.Password(); ok {
		return []string{pw}
	}
	return nil
}

// String returns s with every secret replaced by Redacted.
func (r Redactor) String(s string) string {
	for _, secret := range r.secrets {
		if strings.Contains(s, secret) {
			s = strings.ReplaceAll(s, secret, Redacted)
		}
	}
	return s
}

// Error returns err with a redacted message. The result still unwraps to err,
// so errors.Is and errors.As keep working (context.DeadlineExceeded,
// *net.OpError, ...). It returns nil for a nil err.
func (r Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{msg: r.String(err.Error()), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
