// Package redact is promptcascade's one secret redactor: every error, log
// line and table column that may carry provider or broker text passes
// through it, so that API keys, tokens and passwords never appear (README,
// Security). It masks three things, each with Mark:
//
//   - known secrets (the configured API keys, passwords and tokens), in
//     their plain and URL-escaped forms;
//   - the credentials of URLs (scheme://user:password@host,
//     scheme://token@host), also in strings that do not parse as URLs;
//   - what looks like a credential whatever its source: OpenAI, Anthropic,
//     Groq and xAI keys (sk-, gsk_, xai-), Google API keys (AIza...),
//     bearer tokens and key=... query parameters.
package redact

import (
	"net/url"
	"strings"
)

// Mark replaces every secret.
const Mark = "[REDACTED]"

// minSecretLen is the shortest known secret that is replaced: shorter values
// are not real credentials, and replacing them would mangle ordinary text.
const minSecretLen = 4

// Redactor masks known secrets, URL credentials and credential-like tokens.
// The zero value masks the last two only. It is safe for concurrent use.
type Redactor struct {
	secrets []string // longest first
}

// New returns a Redactor for the given secrets. Empty and very short values
// (under 4 bytes) are ignored. Each secret is also matched in its
// URL-escaped forms, since servers sometimes echo a request URL or form.
func New(secrets ...string) Redactor {
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

// String returns s with every known secret, URL credential and
// credential-like token replaced by Mark.
func (r Redactor) String(s string) string {
	for _, secret := range r.secrets {
		if strings.Contains(s, secret) {
			s = strings.ReplaceAll(s, secret, Mark)
		}
	}
	return tokens(urls(s))
}

// Error returns err with its message redacted; the result still unwraps to
// err, so errors.Is and errors.As keep working. An error whose message
// needs no change is returned as it is, and nil stays nil.
func (r Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if out := r.String(msg); out != msg {
		return &redactedError{msg: out, err: err}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// String is the zero Redactor's String: URL credentials and
// credential-like tokens masked.
func String(s string) string { return Redactor{}.String(s) }

// URLSecrets returns the password of a URL's userinfo
// ("https://user:pw@host"), for New; nil when there is none or the URL does
// not parse.
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

// URL hides the credentials of a server URL, or of a comma-separated list
// of them: nats://user:secret@host becomes nats://user:[REDACTED]@host and
// nats://token@host becomes nats://[REDACTED]@host. It works on strings
// that do not parse as URLs, so it is safe on anything a user typed.
func URL(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = oneURL(p)
	}
	return strings.Join(parts, ",")
}

func oneURL(s string) string {
	start := 0
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + 3
	}
	// The last '@' ends the user info; a password may itself contain '@',
	// '/' or ':'. Over-redacting a URL with '@' in a path is harmless.
	at := strings.LastIndex(s[start:], "@")
	if at < 0 {
		return s
	}
	at += start
	info := s[start:at]
	if user, _, ok := strings.Cut(info, ":"); ok {
		info = user + ":" + Mark
	} else {
		info = Mark // a lone user name is a token
	}
	return s[:start] + info + s[at:]
}

// urls masks the credentials of every scheme://...@ URL inside free text.
func urls(s string) string {
	for from := 0; ; {
		k := strings.Index(s[from:], "://")
		if k < 0 {
			return s
		}
		start := from + k + 3
		end := start
		for end < len(s) && !isSpace(s[end]) && s[end] != '"' && s[end] != '\'' && s[end] != '>' {
			end++
		}
		if masked := oneURL(s[from+k : end]); masked != s[from+k:end] {
			s = s[:from+k] + masked + s[end:]
			end = from + k + len(masked)
		}
		from = end
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// tokenMarkers start strings that are credentials.
var tokenMarkers = []string{"sk-", "gsk_", "xai-", "AIza", "Bearer ", "key="}

// tokens masks what follows a token marker: "sk-abc123..." becomes
// "sk-[REDACTED]". A marker inside a word ("task-", "monkey=") or followed
// by fewer than 6 token characters ("key=1") is left alone.
func tokens(s string) string {
	for _, m := range tokenMarkers {
		for from := 0; ; {
			k := strings.Index(s[from:], m)
			if k < 0 {
				break
			}
			i := from + k
			j := i + len(m)
			if i > 0 && isAlnum(s[i-1]) {
				from = j
				continue
			}
			for j < len(s) && isTokenByte(s[j]) {
				j++
			}
			if j-(i+len(m)) < 6 || s[i+len(m):j] == Mark {
				from = j
				continue
			}
			s = s[:i+len(m)] + Mark + s[j:]
			from = i + len(m) + len(Mark)
		}
	}
	return s
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isTokenByte(c byte) bool {
	return isAlnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '+' || c == '/' || c == '='
}
