package store

import (
	"context"
	"strings"
	"testing"
)

// TestOpenNamesTheBadDSNParameter (issue 7): a connection string pgx
// refuses is reported by the parameter at fault, and never with the
// password.
func TestOpenNamesTheBadDSNParameter(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-canary"
	for _, tc := range []struct{ dsn, want string }{
		{"postgres://app:" + secret + "@localhost:5432/db?sslmode=verify-nothing", `parameter sslmode: invalid value "verify-nothing"`},
		{"postgres://app:" + secret + "@localhost/db?sslmode=disable&connect_timeout=soon", `parameter connect_timeout: invalid value "soon"`},
		{"postgres://app:" + secret + "@localhost/db?pool_max_conns=many", `parameter pool_max_conns: invalid value "many"`},
		{"postgres://app:" + secret + "@localhost:54x2/db", `parameter port: invalid value "54x2"`},
		{"host=localhost user=app password='" + secret + " with space' port=fifty", `parameter port: invalid value "fifty"`},
		{"host=localhost password=" + secret + " target_session_attrs=sometimes", `parameter target_session_attrs: invalid value "sometimes"`},
		{"host=localhost password='" + secret, "parameter password: unterminated quoted value"},
		{"postgres://app:" + secret + "%zz@localhost/db", "not a valid URL"},
		{"just-a-word-" + secret, "want key=value pairs"},
	} {
		_, err := Open(context.Background(), tc.dsn)
		if err == nil {
			t.Errorf("%q: no error", tc.want)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.want) || !strings.HasPrefix(msg, "store: invalid database connection string (DATABASE_URL)") {
			t.Errorf("error = %q\nwant it to contain %q", msg, tc.want)
		}
		if strings.Contains(msg, secret) || strings.Contains(msg, "canary") {
			t.Errorf("error shows the password: %q", msg)
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("error is not one line: %q", msg)
		}
	}
}
