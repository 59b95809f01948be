package scalers

import (
	"fmt"
	"strconv"
	"time"
)

// ParseHTTPTimeout parses KEDA's per-trigger HTTP timeout metadata (metrics-api, prometheus): a number of
// milliseconds from 1 to 3600000, or a Go duration such as "5s" of at most 1h. The error does not name the field;
// the caller wraps it with the metadata key.
func ParseHTTPTimeout(s string) (time.Duration, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms <= 0 || ms > int64(time.Hour/time.Millisecond) {
			return 0, fmt.Errorf("want milliseconds between 1 and 3600000, got %q", s)
		}
		return time.Duration(ms) * time.Millisecond, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > time.Hour {
		return 0, fmt.Errorf("want a number of milliseconds or a duration such as 5s (at most 1h), got %q", s)
	}
	return d, nil
}
