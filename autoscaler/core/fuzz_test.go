package core

import (
	"math"
	"math/rand"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// FuzzFormula compiles and evaluates arbitrary formulas over arbitrary values: it may fail, never panic, and a
// successful result is a finite non-negative number.
func FuzzFormula(f *testing.F) {
	for _, s := range []string{"a + b", "(a + b) / 2", "max(a, b) * 3", "a > b ? a : b", "a / 0", "a ** 400", "-a",
		`"x"`, "a > 1", "len([1,2,3])", "a +", "unknown", "a % 0", "int(a) % 0", "1e308 * 10", "[a, b]", "nil", "abs(-a)"} {
		f.Add(s, 3.0, 4.5)
	}
	f.Add("a * b", math.MaxFloat64, math.MaxFloat64)
	f.Add("a - b", math.NaN(), math.Inf(-1))
	f.Fuzz(func(t *testing.T, formula string, a, b float64) {
		fm, err := CompileFormula(formula, []string{"a", "b"})
		if err != nil {
			return
		}
		v, err := fm.Eval(map[string]float64{"a": a, "b": b})
		if err != nil {
			return
		}
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			t.Fatalf("formula %q gave %v", formula, v)
		}
	})
}

// FuzzComputeHPA runs the replica calculation on inputs derived from the fuzzer's numbers: it may reject the
// input, never panic, and a result respects min/max.
func FuzzComputeHPA(f *testing.F) {
	f.Add(int64(1), int32(3), int32(1), int32(10), int64(500), int64(100), uint8(0))
	f.Add(int64(2), int32(0), int32(0), int32(1), int64(math.MaxInt64), int64(1), uint8(3))
	f.Add(int64(3), int32(math.MaxInt32), int32(1), int32(math.MaxInt32), int64(1e18), int64(math.MaxInt64), uint8(5))
	f.Add(int64(4), int32(-1), int32(-5), int32(0), int64(-1), int64(0), uint8(1))
	f.Fuzz(func(t *testing.T, seed int64, current, minR, maxR int32, value, target int64, kind uint8) {
		r := rand.New(rand.NewSource(seed))
		in := genHPA(r)
		in.SpecReplicas, in.StatusReplicas, in.MinReplicas, in.MaxReplicas = current, current, minR, maxR
		var m Metric
		switch kind % 6 {
		case 0:
			m = Metric{Spec: cpuUtilizationSpec(int32(target)), Samples: make([]PodSample, len(in.Pods)), Requests: make([]int64, len(in.Pods))}
			for i := range m.Samples {
				m.Samples[i] = PodSample{Value: value, Present: i%3 != 0}
				m.Requests[i] = target
			}
		case 1:
			m = Metric{Spec: podsSpec("x", target), Samples: make([]PodSample, len(in.Pods)), Unmatched: []int64{value}}
		case 2:
			m = Metric{Spec: objectSpec("x", autoscalingv2.ValueMetricType, target), Value: value}
		case 3:
			m = Metric{Spec: objectSpec("x", autoscalingv2.AverageValueMetricType, target), Value: value}
		case 4:
			m = Metric{Spec: externalSpec("x", autoscalingv2.ValueMetricType, target), Values: []int64{value, value}}
		default:
			m = Metric{Spec: externalSpec("x", autoscalingv2.AverageValueMetricType, target), Values: []int64{value}}
		}
		in.Metrics = append(in.Metrics, m)
		res, err := ComputeHPA(in, testNow)
		if err != nil {
			return
		}
		if res.Rescale && current > 0 && (res.DesiredReplicas < minR || res.DesiredReplicas > maxR) {
			t.Fatalf("desired %d outside [%d, %d]", res.DesiredReplicas, minR, maxR)
		}
	})
}

// FuzzDecide runs whole ScaledObject decisions on fuzzed numbers and formulas.
func FuzzDecide(f *testing.F) {
	f.Add(int64(1), int32(0), int32(0), int32(10), 5.0, 1.0, 0.0, "a * 2", int64(30))
	f.Add(int64(2), int32(5), int32(2), int32(4), 1e18, 1e-9, -1.0, "a / 0", int64(-1))
	f.Add(int64(3), int32(3), int32(1), int32(3), math.NaN(), math.Inf(1), math.NaN(), "", int64(1<<40))
	f.Fuzz(func(t *testing.T, seed int64, current, minR, maxR int32, value, target, activation float64, formula string, ageSeconds int64) {
		r := rand.New(rand.NewSource(seed))
		in := genSO(r)
		in.CurrentReplicas, in.MinReplicas, in.MaxReplicas = current, minR, maxR
		in.Triggers[0].Value, in.Triggers[0].Target, in.Triggers[0].ActivationTarget = value, target, activation
		if formula != "" {
			in.Modifiers = &ScalingModifiers{Formula: formula, Target: target}
		}
		in.CreatedAt = testNow.Add(-time.Duration(ageSeconds) * time.Second)
		d, err := Decide(in, testNow)
		if err != nil {
			return
		}
		if d.DesiredReplicas < 0 || (in.PausedReplicas == nil && d.DesiredReplicas > maxR) {
			t.Fatalf("desired %d with max %d", d.DesiredReplicas, maxR)
		}
	})
}
