package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// Latency is a distribution of durations.
type Latency struct {
	// Kind is "fixed" (Value), "uniform" (Min..Max) or "lognormal" (Median, P99).
	Kind     string
	Value    time.Duration
	Min, Max time.Duration
	Median   time.Duration
	P99      time.Duration
}

// z99 is the standard normal quantile of 0.99.
const z99 = 2.3263478740408408

// Sample draws one duration.
func (l Latency) Sample(r *rand.Rand) time.Duration {
	switch l.Kind {
	case "uniform":
		if l.Max <= l.Min {
			return l.Min
		}
		return l.Min + time.Duration(r.Int64N(int64(l.Max-l.Min)))
	case "lognormal":
		if l.Median <= 0 {
			return 0
		}
		mu := math.Log(float64(l.Median))
		sigma := 0.0
		if l.P99 > l.Median {
			sigma = (math.Log(float64(l.P99)) - mu) / z99
		}
		return time.Duration(math.Exp(mu + sigma*r.NormFloat64()))
	default:
		return l.Value
	}
}

// String formats l in the syntax ParseLatency reads.
func (l Latency) String() string {
	switch l.Kind {
	case "uniform":
		return fmt.Sprintf("uniform:%s-%s", l.Min, l.Max)
	case "lognormal":
		return fmt.Sprintf("lognormal:%s,%s", l.Median, l.P99)
	default:
		return l.Value.String()
	}
}

// ParseLatency reads "50ms" (fixed), "uniform:10ms-100ms" or "lognormal:50ms,200ms" (median, p99). Errors
// name the field.
func ParseLatency(field, s string) (Latency, error) {
	s = strings.TrimSpace(s)
	kind, rest, found := strings.Cut(s, ":")
	if !found {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return Latency{}, fmt.Errorf("%s: want a duration, uniform:MIN-MAX or lognormal:MEDIAN,P99, got %q", field, s)
		}
		return Latency{Kind: "fixed", Value: d}, nil
	}
	two := func(sep string) (time.Duration, time.Duration, error) {
		a, b, ok := strings.Cut(rest, sep)
		if !ok {
			return 0, 0, fmt.Errorf("%s: %s: want two durations separated by %q, got %q", field, kind, sep, rest)
		}
		x, err1 := time.ParseDuration(strings.TrimSpace(a))
		y, err2 := time.ParseDuration(strings.TrimSpace(b))
		if err1 != nil || err2 != nil || x < 0 || y < x {
			return 0, 0, fmt.Errorf("%s: %s: want two non-negative increasing durations, got %q", field, kind, rest)
		}
		return x, y, nil
	}
	switch kind {
	case "fixed":
		return ParseLatency(field, rest)
	case "uniform":
		lo, hi, err := two("-")
		return Latency{Kind: "uniform", Min: lo, Max: hi}, err
	case "lognormal":
		med, p99, err := two(",")
		return Latency{Kind: "lognormal", Median: med, P99: p99}, err
	default:
		return Latency{}, fmt.Errorf("%s: unknown distribution %q (want fixed, uniform or lognormal)", field, kind)
	}
}
