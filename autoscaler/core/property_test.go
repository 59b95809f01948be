package core

import (
	"errors"
	"math"
	"math/rand"
	"testing"
	"testing/quick"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// genHPA draws an arbitrary but valid HPA input, including extreme values (no pods, 1e18 samples, huge targets).
func genHPA(r *rand.Rand) HPAInput {
	maxR := int32(1 + r.Intn(200))
	if r.Intn(10) == 0 {
		maxR = math.MaxInt32
	}
	minR := int32(r.Intn(int(min(maxR, 50)) + 1))
	spec := int32(r.Intn(300))
	status := spec
	if r.Intn(4) == 0 {
		status = int32(r.Intn(300))
	}
	npods := r.Intn(20)
	if r.Intn(8) == 0 {
		npods = 0
	}
	pods := make([]PodInfo, npods)
	phases := []corev1.PodPhase{corev1.PodRunning, corev1.PodRunning, corev1.PodRunning, corev1.PodPending, corev1.PodFailed}
	for i := range pods {
		st := testNow.Add(-time.Duration(r.Intn(600)) * time.Second)
		pods[i] = PodInfo{Name: "p", Phase: phases[r.Intn(len(phases))], Deleting: r.Intn(10) == 0, StartTime: &st,
			Ready: &PodReadiness{Status: []corev1.ConditionStatus{T, F, corev1.ConditionUnknown}[r.Intn(3)], LastTransitionTime: st}}
		if r.Intn(10) == 0 {
			pods[i].Ready = nil
		}
	}
	value := func() int64 {
		switch r.Intn(6) {
		case 0:
			return 0
		case 1:
			return int64(1e18) + r.Int63n(int64(1e18))
		case 2:
			return math.MaxInt64
		}
		return r.Int63n(100000)
	}
	target := func() int64 {
		if r.Intn(10) == 0 {
			return math.MaxInt64 / 1000
		}
		return 1 + r.Int63n(50000)
	}
	samples := func() []PodSample {
		s := make([]PodSample, npods)
		for i := range s {
			s[i] = PodSample{Value: value(), Present: r.Intn(5) != 0}
		}
		return s
	}
	requests := func() []int64 {
		q := make([]int64, npods)
		for i := range q {
			q[i] = r.Int63n(4000)
			if r.Intn(20) == 0 {
				q[i] = math.MaxInt64
			}
		}
		return q
	}
	var metrics []Metric
	for range 1 + r.Intn(4) {
		var m Metric
		switch r.Intn(6) {
		case 0:
			m = Metric{Spec: cpuUtilizationSpec(int32(1 + r.Intn(300))), Samples: samples(), Requests: requests()}
			if r.Intn(2) == 0 {
				m.SampleTimes = make([]SampleTime, npods)
				for i := range m.SampleTimes {
					m.SampleTimes[i] = SampleTime{Timestamp: testNow.Add(-time.Duration(r.Intn(120)) * time.Second), Window: time.Minute}
				}
			}
		case 1:
			m = Metric{Spec: podsSpec("qps", target()), Samples: samples(), Unmatched: []int64{value()}}
		case 2:
			m = Metric{Spec: objectSpec("qps", autoscalingv2.ValueMetricType, target()), Value: value()}
		case 3:
			m = Metric{Spec: objectSpec("qps", autoscalingv2.AverageValueMetricType, target()), Value: value()}
		case 4:
			m = Metric{Spec: externalSpec("qps", autoscalingv2.ValueMetricType, target()), Values: []int64{value(), value()}}
		default:
			m = Metric{Spec: externalSpec("qps", autoscalingv2.AverageValueMetricType, target()), Values: []int64{value()}}
		}
		if r.Intn(8) == 0 {
			m.Err = errors.New("unavailable")
		}
		metrics = append(metrics, m)
	}
	var b *autoscalingv2.HorizontalPodAutoscalerBehavior
	if r.Intn(3) != 0 {
		genRules := func() *autoscalingv2.HPAScalingRules {
			if r.Intn(4) == 0 {
				return nil
			}
			sel := []autoscalingv2.ScalingPolicySelect{autoscalingv2.MaxChangePolicySelect, autoscalingv2.MinChangePolicySelect, autoscalingv2.DisabledPolicySelect}[r.Intn(3)]
			return &autoscalingv2.HPAScalingRules{
				StabilizationWindowSeconds: ptr.To(int32(r.Intn(600))),
				SelectPolicy:               &sel,
				Policies: []autoscalingv2.HPAScalingPolicy{
					{Type: autoscalingv2.PodsScalingPolicy, Value: int32(1 + r.Intn(100)), PeriodSeconds: int32(1 + r.Intn(1800))},
					{Type: autoscalingv2.PercentScalingPolicy, Value: int32(1 + r.Intn(1000)), PeriodSeconds: int32(1 + r.Intn(1800))},
				},
			}
		}
		b = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: genRules(), ScaleDown: genRules()}
	}
	var h History
	h.Initialized = r.Intn(2) == 0
	for range r.Intn(6) {
		h.Recommendations = append(h.Recommendations, Recommendation{Replicas: int32(r.Intn(300)), Time: testNow.Add(-time.Duration(r.Intn(900)) * time.Second)})
		h.ScaleUpEvents = append(h.ScaleUpEvents, ScaleEvent{Change: int32(r.Intn(50)), Time: testNow.Add(-time.Duration(r.Intn(900)) * time.Second)})
		h.ScaleDownEvents = append(h.ScaleDownEvents, ScaleEvent{Change: int32(r.Intn(50)), Time: testNow.Add(-time.Duration(r.Intn(900)) * time.Second)})
	}
	h.ScaledToZero = r.Intn(4) == 0
	return HPAInput{SpecReplicas: spec, StatusReplicas: status, MinReplicas: minR, MaxReplicas: maxR,
		Behavior: b, Metrics: metrics, Pods: pods, History: h}
}

// TestPropertyHPABounds: the HPA result always lies in [min, max] (or stays at zero when scaling is disabled at
// zero), never moves beyond what the policies allow, and every proposal is a sane number.
func TestPropertyHPABounds(t *testing.T) {
	prop := func(seed int64) bool {
		r := rand.New(rand.NewSource(seed))
		in := genHPA(r)
		res, err := ComputeHPA(in, testNow)
		if err != nil {
			t.Logf("seed %d: unexpected error %v", seed, err)
			return false
		}
		d, cur := res.DesiredReplicas, in.SpecReplicas
		if d < 0 {
			t.Logf("seed %d: negative desired %d", seed, d)
			return false
		}
		for _, m := range res.Metrics {
			if m.Err == nil && (m.Replicas < 0 || m.Usage < 0 || m.Utilization < 0) {
				t.Logf("seed %d: bad proposal %+v", seed, m)
				return false
			}
		}
		if !res.Rescale {
			return d == cur
		}
		if cur == 0 {
			return d >= in.MinReplicas && d <= in.MaxReplicas
		}
		if d < in.MinReplicas || d > in.MaxReplicas {
			t.Logf("seed %d: desired %d outside [%d, %d] (current %d)", seed, d, in.MinReplicas, in.MaxReplicas, cur)
			return false
		}
		if cur < in.MinReplicas || cur > in.MaxReplicas || in.Behavior == nil {
			return true
		}
		var up, down scalingRules
		cfg := DefaultConfig()
		resolveRules(in.Behavior.ScaleUp, true, cfg.DownscaleStabilizationWindow, &up)
		resolveRules(in.Behavior.ScaleDown, false, cfg.DownscaleStabilizationWindow, &down)
		if d > cur {
			if limit := max(cur, scaleUpLimit(cur, in.History.ScaleUpEvents, in.History.ScaleDownEvents, &up, testNow)); d > limit {
				t.Logf("seed %d: scale up to %d beyond policy limit %d", seed, d, limit)
				return false
			}
		} else if limit := min(cur, scaleDownLimit(cur, in.History.ScaleUpEvents, in.History.ScaleDownEvents, &down, testNow)); d < max(limit, in.MinReplicas) {
			t.Logf("seed %d: scale down to %d beyond policy limit %d", seed, d, limit)
			return false
		}
		return true
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 3000}); err != nil {
		t.Fatal(err)
	}
}

// genSO draws an arbitrary valid ScaledObject input.
func genSO(r *rand.Rand) ScaledObjectInput {
	maxR := int32(1 + r.Intn(100))
	minR := int32(r.Intn(int(maxR) + 1))
	in := ScaledObjectInput{
		CurrentReplicas: int32(r.Intn(150)), MinReplicas: minR, MaxReplicas: maxR,
		CooldownPeriod: time.Duration(r.Intn(600)) * time.Second, InitialCooldownPeriod: time.Duration(r.Intn(600)) * time.Second,
		CreatedAt: testNow.Add(-time.Duration(r.Intn(3600)) * time.Second),
	}
	if minR > 0 && r.Intn(3) == 0 {
		in.IdleReplicas = ptr.To(int32(r.Intn(int(minR))))
	}
	names := []string{"a", "b", "c"}
	for _, n := range names[:1+r.Intn(3)] {
		t := TriggerInput{Name: n, Target: []float64{1e-3, 1, 10, 1e18}[r.Intn(4)], ActivationTarget: float64(r.Intn(5)),
			Value: []float64{0, 0.5, 3, 100, 1e18, math.MaxFloat64}[r.Intn(6)]}
		if r.Intn(2) == 0 {
			t.MetricType = autoscalingv2.ValueMetricType
		}
		if r.Intn(4) == 0 {
			t.Err = errors.New("boom")
		}
		in.Triggers = append(in.Triggers, t)
	}
	if r.Intn(3) == 0 {
		in.Fallback = &Fallback{FailureThreshold: int32(r.Intn(3)), Replicas: int32(r.Intn(200)),
			Behavior: []FallbackBehavior{"", FallbackCurrentReplicas, FallbackCurrentReplicasIfHigher, FallbackCurrentReplicasIfLower}[r.Intn(4)]}
	}
	if r.Intn(4) == 0 {
		in.Modifiers = &ScalingModifiers{Formula: in.Triggers[0].Name + " * 2", Target: 5, ActivationTarget: 1}
	}
	if r.Intn(10) == 0 {
		in.PausedReplicas = ptr.To(int32(r.Intn(10)))
	}
	if r.Intn(2) == 0 {
		lt := testNow.Add(-time.Duration(r.Intn(900)) * time.Second)
		in.State.LastActiveTime = &lt
	}
	in.State.Triggers = []TriggerHealth{{Name: "a", ConsecutiveFailures: int32(r.Intn(5))}}
	in.Pods = podSet{count: r.Intn(5)}.build()
	if r.Intn(2) == 0 {
		in.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: rules(int32(1+r.Intn(5)), 60, 0, 0, int32(r.Intn(300)))}
	}
	return in
}

// TestPropertyDecide: a ScaledObject decision is within [min, max], at zero, or at the idle count; a paused
// object gets its paused count; a failing, inactive object with replicas is never scaled to zero.
func TestPropertyDecide(t *testing.T) {
	prop := func(seed int64) bool {
		r := rand.New(rand.NewSource(seed))
		in := genSO(r)
		d, err := Decide(in, testNow)
		if err != nil {
			t.Logf("seed %d: unexpected error %v", seed, err)
			return false
		}
		got := d.DesiredReplicas
		if in.PausedReplicas != nil {
			return got == *in.PausedReplicas
		}
		inRange := got >= in.MinReplicas && got <= in.MaxReplicas && got >= 1
		atRest := got == 0 || (in.IdleReplicas != nil && got == *in.IdleReplicas)
		if !inRange && !atRest {
			t.Logf("seed %d: desired %d outside [%d, %d] (idle %v, reason %s)", seed, got, in.MinReplicas, in.MaxReplicas, in.IdleReplicas, d.Reason)
			return false
		}
		anyErr := false
		for _, tr := range in.Triggers {
			anyErr = anyErr || tr.Err != nil
		}
		if anyErr && !d.Active && in.CurrentReplicas > 0 && atRest && got < in.CurrentReplicas {
			t.Logf("seed %d: errors scaled %d -> %d (reason %s)", seed, in.CurrentReplicas, got, d.Reason)
			return false
		}
		return true
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 3000}); err != nil {
		t.Fatal(err)
	}
}

// TestPropertyNegativeInputsRejected: any negative sample, request or trigger value is an error, never a result.
func TestPropertyNegativeInputsRejected(t *testing.T) {
	prop := func(seed int64, neg int64) bool {
		if neg >= 0 {
			neg = -neg - 1
		}
		r := rand.New(rand.NewSource(seed))
		in := genSO(r)
		in.PausedReplicas = nil
		in.Triggers[0].Err = nil
		in.Triggers[0].Value = float64(neg)
		if _, err := Decide(in, testNow); err == nil {
			return false
		}
		pods := podSet{count: 3}.build()
		samples := []PodSample{{Value: 1, Present: true}, {Value: neg, Present: r.Intn(2) == 0}, {Value: 2, Present: true}}
		h := HPAInput{SpecReplicas: 3, StatusReplicas: 3, MinReplicas: 1, MaxReplicas: 10, Pods: pods,
			Metrics: []Metric{{Spec: cpuUtilizationSpec(50), Samples: samples, Requests: []int64{100, 100, 100}}}}
		_, err := ComputeHPA(h, testNow)
		return err != nil
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 500}); err != nil {
		t.Fatal(err)
	}
}
