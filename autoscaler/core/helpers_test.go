package core

import (
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

// testNow is the fixed "now" of every table test.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// The upstream tests call a pod "hot" when it started now (inside the CPU initialization period) and "cool" when
// it started three minutes ago.
func hot() time.Time  { return testNow }
func cool() time.Time { return testNow.Add(-3 * time.Minute) }

const (
	T = corev1.ConditionTrue
	F = corev1.ConditionFalse
)

// upstreamTestConfig is the configuration upstream's tests run the controller with (scale-up limit factor 8, CPU
// initialization period 2m, initial readiness delay 10s).
func upstreamTestConfig() *Config {
	c := DefaultConfig()
	c.CPUInitializationPeriod = 2 * time.Minute
	c.InitialReadinessDelay = 10 * time.Second
	c.ScaleUpLimitFactor = 8
	return &c
}

// podSet describes pods the way upstream's fixtures do: defaults are Running, Ready=True, a non-nil zero start
// time. transitionAtStart copies the start time into the Ready condition's transition time (horizontal_test's
// fixture); otherwise the transition time is zero (replica_calculator_test's fixture).
type podSet struct {
	count             int
	readiness         []corev1.ConditionStatus
	start             []time.Time
	phase             []corev1.PodPhase
	deleting          []bool
	transitionAtStart bool
}

func (s podSet) build() []PodInfo {
	n := s.count
	if len(s.phase) > n {
		n = len(s.phase)
	}
	pods := make([]PodInfo, n)
	for i := range pods {
		st := time.Time{}
		if i < len(s.start) {
			st = s.start[i]
		}
		ready := PodReadiness{Status: T}
		if i < len(s.readiness) {
			ready.Status = s.readiness[i]
		}
		if s.transitionAtStart {
			ready.LastTransitionTime = st
		}
		phase := corev1.PodRunning
		if i < len(s.phase) {
			phase = s.phase[i]
		}
		pods[i] = PodInfo{
			Name:      "test-pod-" + string(rune('a'+i%26)),
			Phase:     phase,
			Deleting:  i < len(s.deleting) && s.deleting[i],
			StartTime: &st,
			Ready:     &ready,
		}
	}
	return pods
}

// absent in a levels list means "no sample for this pod".
const absent = -1

// samplesFor aligns levels with pods: levels[i] belongs to pod i; levels beyond the pod list are unmatched.
// missing lists pod indexes without a sample even though levels covers them.
func samplesFor(pods int, levels []int64, ts time.Time, window time.Duration) ([]PodSample, []int64) {
	samples := make([]PodSample, pods)
	var unmatched []int64
	for i, v := range levels {
		if v == absent {
			continue
		}
		if i < pods {
			samples[i] = PodSample{Value: v, Present: true}
		} else {
			unmatched = append(unmatched, v)
		}
	}
	return samples, unmatched
}

func milli(v int64) *resource.Quantity { return resource.NewMilliQuantity(v, resource.DecimalSI) }

func cpuUtilizationSpec(target int32) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{
			Name:   corev1.ResourceCPU,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(target)},
		},
	}
}

func podsSpec(name string, averageMilli int64) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.PodsMetricSourceType,
		Pods: &autoscalingv2.PodsMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: name},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: milli(averageMilli)},
		},
	}
}

// metricTarget is a Value or AverageValue target of milliTarget milli-units.
func metricTarget(t autoscalingv2.MetricTargetType, milliTarget int64) autoscalingv2.MetricTarget {
	target := autoscalingv2.MetricTarget{Type: t}
	if t == autoscalingv2.ValueMetricType {
		target.Value = milli(milliTarget)
	} else {
		target.AverageValue = milli(milliTarget)
	}
	return target
}

func objectSpec(name string, t autoscalingv2.MetricTargetType, milliTarget int64) autoscalingv2.MetricSpec {
	target := metricTarget(t, milliTarget)
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ObjectMetricSourceType,
		Object: &autoscalingv2.ObjectMetricSource{
			DescribedObject: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "some-deployment", APIVersion: "apps/v1"},
			Metric:          autoscalingv2.MetricIdentifier{Name: name},
			Target:          target,
		},
	}
}

func externalSpec(name string, t autoscalingv2.MetricTargetType, milliTarget int64) autoscalingv2.MetricSpec {
	target := metricTarget(t, milliTarget)
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ExternalMetricSourceType,
		External: &autoscalingv2.ExternalMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: name},
			Target: target,
		},
	}
}

// rules builds scaling rules like upstream's generateScalingRules: a Pods and/or Percent policy (0 omits it),
// selectPolicy Max, and a stabilization window.
func rules(pods, podsPeriod, percent, percentPeriod, window int32) *autoscalingv2.HPAScalingRules {
	r := &autoscalingv2.HPAScalingRules{
		StabilizationWindowSeconds: ptr.To(window),
		SelectPolicy:               ptr.To(autoscalingv2.MaxChangePolicySelect),
	}
	if pods != 0 {
		r.Policies = append(r.Policies, autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PodsScalingPolicy, Value: pods, PeriodSeconds: podsPeriod})
	}
	if percent != 0 {
		r.Policies = append(r.Policies, autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PercentScalingPolicy, Value: percent, PeriodSeconds: percentPeriod})
	}
	return r
}

// uniformEvents spreads scale events over periodSeconds like upstream's generateEventsUniformDistribution.
func uniformEvents(changes []int32, periodSeconds int) []ScaleEvent {
	events := make([]ScaleEvent, len(changes))
	segment := float64(periodSeconds) / float64(len(changes))
	for i, c := range changes {
		boundary := time.Duration(float64(periodSeconds) - segment*float64(i+1) + segment/2)
		events[i] = ScaleEvent{Change: c, Time: testNow.Add(-time.Second * boundary)}
	}
	return events
}

func rs(s ...corev1.ConditionStatus) []corev1.ConditionStatus { return s }

func ts(t ...time.Time) []time.Time { return t }

func phasesOf(p ...string) []corev1.PodPhase {
	out := make([]corev1.PodPhase, len(p))
	for i, v := range p {
		out[i] = corev1.PodPhase(v)
	}
	return out
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// timesFor gives every one of n samples the same timestamp and window.
func timesFor(n int, ts time.Time, window time.Duration) []SampleTime {
	out := make([]SampleTime, n)
	for i := range out {
		out[i] = SampleTime{Timestamp: ts, Window: window}
	}
	return out
}
