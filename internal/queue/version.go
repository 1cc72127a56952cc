package queue

import (
	"fmt"
	"strconv"
	"strings"
)

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
