package store

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// dsnError explains why pgx refused a connection string without showing
// the string: it may hold a password. It names the parameter at fault,
// found by giving pgx each parameter on its own, and shows that
// parameter's value unless it is a secret.
func dsnError(dsn string) error {
	const prefix = "store: invalid database connection string (DATABASE_URL)"
	params, err := dsnParams(dsn)
	if err != nil {
		return fmt.Errorf("%s: %w; the value is not shown because it may contain a password", prefix, err)
	}
	for _, p := range params {
		if _, err := pgxpool.ParseConfig(p.alone); err == nil {
			continue
		}
		if secretParam(p.name) {
			return fmt.Errorf("%s: parameter %s is invalid (its value is not shown)", prefix, p.name)
		}
		return fmt.Errorf("%s: parameter %s: invalid value %q", prefix, p.name, p.value)
	}
	return fmt.Errorf("%s: its parameters do not go together; the value is not shown because it may contain a password", prefix)
}

func secretParam(name string) bool {
	switch name {
	case "password", "sslpassword", "user":
		return true
	}
	return false
}

// dsnParam is one parameter of a connection string, and a connection
// string of that parameter alone, in the same form.
type dsnParam struct {
	name, value, alone string
}

// dsnParams splits a libpq URL or key=value string into its parameters.
func dsnParams(dsn string) ([]dsnParam, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return urlParams(dsn)
	}
	return keywordParams(dsn)
}

func urlParams(dsn string) ([]dsnParam, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		// Say which part, never the text: url.Parse quotes the whole URL.
		rest := dsn[strings.Index(dsn, "://")+3:]
		if i := strings.IndexAny(rest, "/?"); i >= 0 {
			rest = rest[:i]
		}
		hostport := rest[strings.LastIndex(rest, "@")+1:]
		for _, hp := range strings.Split(hostport, ",") {
			if i := strings.LastIndex(hp, ":"); i >= 0 && !strings.HasSuffix(hp, "]") {
				if _, perr := strconv.ParseUint(hp[i+1:], 10, 16); perr != nil {
					return nil, fmt.Errorf("parameter port: invalid value %q", hp[i+1:])
				}
			}
		}
		return nil, fmt.Errorf("not a valid URL (check the user name and password escapes: %% must be written %%25)")
	}
	var out []dsnParam
	if host := u.Host; host != "" {
		out = append(out, dsnParam{name: "host", value: host, alone: "postgres://" + host + "/"})
	}
	for key, vals := range u.Query() {
		for _, v := range vals {
			out = append(out, dsnParam{name: key, value: v,
				alone: "postgres://localhost/?" + url.Values{key: {v}}.Encode()})
		}
	}
	return out, nil
}

// keywordParams splits "host=h port=5432 password='a b'" as libpq does.
func keywordParams(dsn string) ([]dsnParam, error) {
	var out []dsnParam
	s := strings.TrimSpace(dsn)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("want key=value pairs separated by spaces, or a postgres:// URL")
		}
		key := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " \t\n\r")
		var val strings.Builder
		if strings.HasPrefix(s, "'") {
			s = s[1:]
			closed := false
			for len(s) > 0 {
				c := s[0]
				s = s[1:]
				if c == '\\' && len(s) > 0 {
					val.WriteByte(s[0])
					s = s[1:]
					continue
				}
				if c == '\'' {
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return nil, fmt.Errorf("parameter %s: unterminated quoted value", key)
			}
		} else {
			end := strings.IndexAny(s, " \t\n\r")
			if end < 0 {
				end = len(s)
			}
			val.WriteString(strings.ReplaceAll(s[:end], `\`, ""))
			s = s[end:]
		}
		s = strings.TrimLeft(s, " \t\n\r")
		v := val.String()
		quoted := "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
		out = append(out, dsnParam{name: key, value: v, alone: key + "=" + quoted})
	}
	return out, nil
}
