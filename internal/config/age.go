package config

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// ParseAge reads an age or time to live: 90d, 12w, or any Go duration
// (36h, 90m); it must be more than zero and at most 100 years.
func ParseAge(s string) (time.Duration, error) {
	var d time.Duration
	switch {
	case strings.HasSuffix(s, "d"), strings.HasSuffix(s, "w"):
		n, err := strconv.Atoi(s[:len(s)-1])
		if err != nil {
			return 0, errors.New("want a whole number of days (90d), weeks (12w) or a duration (36h)")
		}
		unit := 24 * time.Hour
		if strings.HasSuffix(s, "w") {
			unit *= 7
		}
		if n > 100*366 {
			return 0, errors.New("more than 100 years")
		}
		d = time.Duration(n) * unit
	default:
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, errors.New("want a whole number of days (90d), weeks (12w) or a duration (36h)")
		}
	}
	if d <= 0 {
		return 0, errors.New("must be more than zero")
	}
	return d, nil
}
