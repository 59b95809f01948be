// Package tablefmt formats the cells tidalctl's tables and reports share: an unset value shows as "-", an age
// as kubectl's AGE column does, and a message on one line.
package tablefmt

import (
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Age is the time from t to now like kubectl's AGE column ("5m", "2d3h"); "-" when t is unset, "0s" when t is
// after now.
func Age(t *metav1.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return duration.HumanDuration(max(now.Sub(t.Time), 0))
}

// Int is *p, or "-" when p is nil.
func Int(p *int32) string {
	if p == nil {
		return "-"
	}
	return strconv.Itoa(int(*p))
}

// Dash is s, or "-" when s is empty.
func Dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// OneLine folds s's white space, newlines included, into single spaces: errors may carry newlines from their
// source, and a table row must stay on one line.
func OneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
