package core

import (
	"fmt"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
)

// benchHPA builds a decision over 1,000 pods: a realistic mix of ready, unready, hot and missing pods, and
// `podMetrics` pod-based metrics (CPU utilization, memory average value, custom pods metrics) plus object and
// external metrics up to 10 in total.
func benchHPA(podMetrics int) HPAInput {
	const n = 1000
	pods := make([]PodInfo, n)
	for i := range pods {
		st := testNow.Add(-10 * time.Minute)
		if i%50 == 0 {
			st = testNow.Add(-30 * time.Second) // inside the CPU initialization period
		}
		status := corev1.ConditionTrue
		if i%40 == 0 {
			status = corev1.ConditionFalse
		}
		phase := corev1.PodRunning
		if i%100 == 0 {
			phase = corev1.PodPending
		}
		pods[i] = PodInfo{Name: fmt.Sprintf("pod-%d", i), Phase: phase, StartTime: &st,
			Ready: &PodReadiness{Status: status, LastTransitionTime: st.Add(5 * time.Second)}}
	}
	requests := make([]int64, n)
	for i := range requests {
		requests[i] = 500
	}
	samples := func(base int64) []PodSample {
		s := make([]PodSample, n)
		for i := range s {
			s[i] = PodSample{Value: base + int64(i%97), Present: i%30 != 0}
		}
		return s
	}
	times := make([]SampleTime, n)
	for i := range times {
		times[i] = SampleTime{Timestamp: testNow.Add(-10 * time.Second), Window: 30 * time.Second}
	}
	var metrics []Metric
	for i := range podMetrics {
		switch i % 3 {
		case 0:
			metrics = append(metrics, Metric{Spec: cpuUtilizationSpec(60), Samples: samples(350), SampleTimes: times, Requests: requests})
		case 1:
			metrics = append(metrics, Metric{Spec: autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceMemory,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: milli(300 << 30)}}},
				Samples: samples(250 << 30)})
		default:
			metrics = append(metrics, Metric{Spec: podsSpec(fmt.Sprintf("qps-%d", i), 10000), Samples: samples(12000)})
		}
	}
	for i := podMetrics; i < 10; i++ {
		if i%2 == 0 {
			metrics = append(metrics, Metric{Spec: objectSpec("rps", autoscalingv2.ValueMetricType, 100000), Value: 150000})
		} else {
			metrics = append(metrics, Metric{Spec: externalSpec("lag", autoscalingv2.AverageValueMetricType, 5000), Values: []int64{4000000}})
		}
	}
	return HPAInput{
		SpecReplicas: n, StatusReplicas: n, MinReplicas: 1, MaxReplicas: 5000, Metrics: metrics, Pods: pods,
		Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: rules(10, 60, 10, 60, 300)},
		History: History{Initialized: true, Recommendations: []Recommendation{{Replicas: n, Time: testNow.Add(-time.Minute)}},
			ScaleUpEvents: []ScaleEvent{{Change: 10, Time: testNow.Add(-30 * time.Second)}}},
	}
}

// BenchmarkComputeHPA measures one decision with 10 metrics over 1,000 pods: all 10 pod-based (worst case) and a
// mix of 6 pod-based plus 4 object/external metrics.
func BenchmarkComputeHPA(b *testing.B) {
	for _, podMetrics := range []int{10, 6} {
		b.Run(fmt.Sprintf("10metrics_%dpodBased_1000pods", podMetrics), func(b *testing.B) {
			in := benchHPA(podMetrics)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ComputeHPA(in, testNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecide measures a full ScaledObject decision with 10 triggers, a behavior and 1,000 pods, with and
// without a (precompiled) scalingModifiers formula.
func BenchmarkDecide(b *testing.B) {
	build := func() ScaledObjectInput {
		in := ScaledObjectInput{CurrentReplicas: 1000, MinReplicas: 1, MaxReplicas: 5000, CooldownPeriod: DefaultCooldownPeriod,
			CreatedAt: testNow.Add(-time.Hour), Pods: benchHPA(0).Pods,
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: rules(10, 60, 10, 60, 300)}}
		for i := range 10 {
			in.Triggers = append(in.Triggers, TriggerInput{Name: fmt.Sprintf("t%d", i), Value: float64(900 + i*50), Target: 1, ActivationTarget: 0.5})
		}
		return in
	}
	b.Run("10triggers_1000pods", func(b *testing.B) {
		in := build()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decide(in, testNow); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("10triggers_formula_1000pods", func(b *testing.B) {
		in := build()
		names := make([]string, len(in.Triggers))
		for i := range in.Triggers {
			names[i] = in.Triggers[i].Name
		}
		f, err := CompileFormula("(t0 + t1 + t2 + t3 + t4 + t5 + t6 + t7 + t8 + t9) / 10", names)
		if err != nil {
			b.Fatal(err)
		}
		in.Modifiers = &ScalingModifiers{Formula: f.Source(), Target: 1, Compiled: f}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decide(in, testNow); err != nil {
				b.Fatal(err)
			}
		}
	})
}
