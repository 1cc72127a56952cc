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

// minSecretLen is the shortest known secret that is replaced wherever it
// occurs. A shorter one ("ab") is also part of ordinary words, so it is
// replaced only where it stands as a credential's value (see shortSecrets).
const minSecretLen = 4

// Redactor masks known secrets, URL credentials and credential-like tokens.
// The zero value masks the last two only. It is safe for concurrent use.
type Redactor struct {
	secrets []string // longest first
	short   []string // known secrets under minSecretLen bytes, longest first
}

// New returns a Redactor for the given secrets; empty values are ignored.
// Each secret is also matched in its URL-escaped forms, since servers
// sometimes echo a request URL or form. A secret under 4 bytes is masked
// only as a credential's value: after a password, passwd, pass, pwd,
// secret or token key and a '=' or ':' ("password=ab", `"password": "ab"`,
// "NATS_PASSWORD=ab"), or between ':' and '@' ("alice:ab@host"), and only
// as a whole word; URLs' credentials are masked whatever their length.
func New(secrets ...string) Redactor {
	var r Redactor
	seen := make(map[string]bool)
	add := func(s string) {
		if s == "" || seen[s] {
			return
		}
		seen[s] = true
		if len(s) < minSecretLen {
			r.short = append(r.short, s)
			return
		}
		r.secrets = append(r.secrets, s)
	}
	for _, s := range secrets {
		add(s)
		add(url.QueryEscape(s))
		add(url.PathEscape(s))
	}
	// Longest first, so that a secret containing another is replaced whole.
	longestFirst(r.secrets)
	longestFirst(r.short)
	return r
}

func longestFirst(ss []string) {
	for i := 1; i < len(ss); i++ {
		for j := i; j > 0 && len(ss[j]) > len(ss[j-1]); j-- {
			ss[j], ss[j-1] = ss[j-1], ss[j]
		}
	}
}

// String returns s with every known secret, URL credential and
// credential-like token replaced by Mark.
func (r Redactor) String(s string) string {
	for _, secret := range r.secrets {
		if strings.Contains(s, secret) {
			s = strings.ReplaceAll(s, secret, Mark)
		}
	}
	for _, secret := range r.short {
		if strings.Contains(s, secret) {
			s = shortSecret(s, secret)
		}
	}
	return tokens(urls(s))
}

// credentialKeys are the keys whose value is a credential, lower case; a
// key ends with one of them ("NATS_PASSWORD", "db.pass").
var credentialKeys = []string{"password", "passwd", "pass", "pwd", "secret", "token"}

// shortSecret masks each occurrence of a short known secret in s that is a
// credential's value: a whole word (no letter or digit on either side)
// after a credential key and a '=' or ':' (with spaces and quotes around
// them), or between ':' and '@' (user:secret@host).
func shortSecret(s, secret string) string {
	for from := 0; ; {
		k := strings.Index(s[from:], secret)
		if k < 0 {
			return s
		}
		i, j := from+k, from+k+len(secret)
		if (i > 0 && isAlnum(s[i-1])) || (j < len(s) && isAlnum(s[j])) || !credentialValue(s, i, j) {
			from = i + 1
			continue
		}
		s = s[:i] + Mark + s[j:]
		from = i + len(Mark)
	}
}

// credentialValue reports whether s[i:j] stands where a credential does.
func credentialValue(s string, i, j int) bool {
	if i > 0 && s[i-1] == ':' && j < len(s) && s[j] == '@' {
		return true
	}
	// Back over quotes and spaces, one '=' or ':', quotes and spaces.
	k := i
	for k > 0 && (s[k-1] == '"' || s[k-1] == '\'' || s[k-1] == ' ') {
		k--
	}
	if k == 0 || (s[k-1] != '=' && s[k-1] != ':') {
		return false
	}
	k--
	for k > 0 && (s[k-1] == '"' || s[k-1] == '\'' || s[k-1] == ' ') {
		k--
	}
	key := strings.ToLower(s[max(k-len("password"), 0):k])
	for _, c := range credentialKeys {
		if strings.HasSuffix(key, c) {
			return true
		}
	}
	return false
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
