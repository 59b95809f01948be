package core

import (
	"math"
	"math/bits"
)

// addSat adds two non-negative int64 values, saturating at math.MaxInt64 instead of wrapping.
func addSat(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// mulDivSat returns a*b/c for non-negative a, b and positive c, computed with 128-bit intermediates so that the
// result is exact whenever it fits, and saturated at math.MaxInt64 when it does not.
func mulDivSat(a, b, c int64) int64 {
	if a <= 0 || b <= 0 || c <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi >= uint64(c) {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, uint64(c))
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

// clampInt32 converts a non-negative int64 to int32, saturating at math.MaxInt32.
func clampInt32(v int64) int32 {
	switch {
	case v > math.MaxInt32:
		return math.MaxInt32
	case v < math.MinInt32:
		return math.MinInt32
	}
	return int32(v)
}

// ceilInt32 is int32(math.Ceil(f)) without the undefined behaviour of converting an out-of-range float: values
// beyond the int32 range saturate, NaN becomes 0.
func ceilInt32(f float64) int32 { return saturateInt32(math.Ceil(f)) }

// truncInt32 is int32(f) (truncation toward zero) with saturation, as used by upstream's Percent scale-down policy.
func truncInt32(f float64) int32 { return saturateInt32(math.Trunc(f)) }

// saturateInt32 converts a whole f to int32: beyond the int32 range it saturates, NaN becomes 0.
func saturateInt32(f float64) int32 {
	switch {
	case math.IsNaN(f):
		return 0
	case f >= math.MaxInt32:
		return math.MaxInt32
	case f <= math.MinInt32:
		return math.MinInt32
	}
	return int32(f)
}

// floatToMilli converts a float64 metric value to milli-units the way KEDA does (int64(v*1000)), saturating
// instead of overflowing. Callers reject NaN and negative values before calling it.
func floatToMilli(v float64) int64 {
	m := v * 1000
	if m >= math.MaxInt64 {
		return math.MaxInt64
	}
	if m <= 0 {
		return 0
	}
	return int64(m)
}

// saturatingAdd32 adds two int32 values, saturating at the int32 limits.
func saturatingAdd32(a, b int32) int32 {
	return clampInt32(int64(a) + int64(b))
}

// satSum accumulates non-negative int64 values without branches, remembering whether the total overflowed; its
// value saturates at math.MaxInt64.
type satSum struct {
	v, carry uint64
}

func (s *satSum) add(x int64) {
	var c uint64
	s.v, c = bits.Add64(s.v, uint64(x), 0)
	s.carry |= c
}

func (s *satSum) value() int64 {
	if s.carry != 0 || s.v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(s.v)
}
