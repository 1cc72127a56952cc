package queue

import (
	"fmt"
	"strconv"
	"strings"
)

const redactMark = "xxxxx"

// RedactURL hides credentials in a server URL, or in a comma-separated list
// of them: nats://user:secret@host becomes nats://user:xxxxx@host and
// nats://token@host becomes nats://xxxxx@host. It works on strings that do
// not parse as URLs, so it is safe on anything a user typed.
func RedactURL(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = redactOne(p)
	}
	return strings.Join(parts, ",")
}

func redactOne(s string) string {
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
		info = user + ":" + redactMark
	} else {
		info = redactMark // a lone user name is a token
	}
	return s[:start] + info + s[at:]
}

// secretError hides secrets that a lower layer put into an error message
// while keeping the error chain for errors.Is and errors.As.
type secretError struct {
	err error
	msg string
}

func (e *secretError) Error() string { return e.msg }
func (e *secretError) Unwrap() error { return e.err }

// scrub returns err with every non-empty secret replaced in its message.
func scrub(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	out := msg
	for _, s := range secrets {
		if len(s) >= 3 { // shorter strings would mangle ordinary words
			out = strings.ReplaceAll(out, s, redactMark)
		}
	}
	if out == msg {
		return err
	}
	return &secretError{err: err, msg: out}
}

// Minimum and recommended nats-server versions.
const (
	minServerMajor, minServerMinor = 2, 10
)

// ServerVersionError is returned by Connect when the server is too old.
type ServerVersionError struct {
	Version string // as reported by the server
	URL     string // redacted
}

func (e *ServerVersionError) Error() string {
	return fmt.Sprintf("nats-server %s at %s is too old: promptcascade needs >= %d.%d (2.12+ recommended)",
		e.Version, e.URL, minServerMajor, minServerMinor)
}

// checkServerVersion refuses servers older than 2.10.0. A pre-release of
// 2.10.0 itself (2.10.0-beta) counts as older, as in semantic versioning.
func checkServerVersion(version, url string) error {
	major, minor, patch, pre, err := parseVersion(version)
	if err != nil {
		return fmt.Errorf("queue: nats-server at %s reports version %q: %w; promptcascade needs >= %d.%d",
			url, version, err, minServerMajor, minServerMinor)
	}
	tooOld := major < minServerMajor ||
		(major == minServerMajor && minor < minServerMinor) ||
		(major == minServerMajor && minor == minServerMinor && patch == 0 && pre)
	if tooOld {
		return &ServerVersionError{Version: version, URL: url}
	}
	return nil
}

// parseVersion reads "[v]MAJOR.MINOR[.PATCH][-pre][+build]".
func parseVersion(v string) (major, minor, patch int, pre bool, err error) {
	s := strings.TrimPrefix(strings.TrimSpace(v), "v")
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i]
	}
	if i := strings.IndexByte(s, '-'); i >= 0 {
		s, pre = s[:i], true
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, 0, 0, false, fmt.Errorf("not a MAJOR.MINOR.PATCH version")
	}
	nums := make([]int, 3)
	for i, p := range parts {
		n, convErr := strconv.Atoi(p)
		if convErr != nil || n < 0 {
			return 0, 0, 0, false, fmt.Errorf("not a MAJOR.MINOR.PATCH version")
		}
		nums[i] = n
	}
	return nums[0], nums[1], nums[2], pre, nil
}
