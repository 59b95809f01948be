package core

import (
	"errors"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// hpaCase restates one of upstream's horizontal_test.go reconcile scenarios. Pods follow upstream's fixture:
// status replicas pods (or one per request when requests are listed), 1 CPU each by default, the readiness
// transition at the start time, CPU samples taken now over a one minute window.
type hpaCase struct {
	name                   string
	minR, maxR             int32
	spec, status           int32
	cpuTarget              int32
	metrics                []autoscalingv2.MetricSpec
	levels                 []int64
	requests               []int64
	pods                   podSet
	up, down               *autoscalingv2.HPAScalingRules
	recs                   []Recommendation
	initialized            bool // upstream's "recommendations: []timestampedRecommendation{}"
	scaledToZero           bool
	invalidMetric          bool // add a metric that fails
	want                   int32
	wantLimited            string
	wantAble               string
	wantActive             string
	wantScaledToZeroReason string
}

func (tc hpaCase) input() HPAInput {
	ps := tc.pods
	ps.transitionAtStart = true
	ps.count = int(tc.status)
	if tc.requests != nil {
		ps.count = len(tc.requests)
	}
	pods := ps.build()
	requests := make([]int64, len(pods))
	for i := range requests {
		requests[i] = 1000
		if i < len(tc.requests) {
			requests[i] = tc.requests[i]
		}
	}
	specs := tc.metrics
	if tc.cpuTarget > 0 {
		specs = append([]autoscalingv2.MetricSpec{cpuUtilizationSpec(tc.cpuTarget)}, specs...)
	}
	var metrics []Metric
	for _, s := range specs {
		m := Metric{Spec: s}
		switch s.Type {
		case autoscalingv2.ResourceMetricSourceType, autoscalingv2.PodsMetricSourceType:
			m.Samples, m.Unmatched = samplesFor(len(pods), tc.levels, testNow, time.Minute)
			m.SampleTimes = timesFor(len(pods), testNow, time.Minute)
			m.Requests = requests
		case autoscalingv2.ObjectMetricSourceType:
			m.Value = tc.levels[0]
		case autoscalingv2.ExternalMetricSourceType:
			m.Values = tc.levels
		}
		metrics = append(metrics, m)
	}
	if tc.invalidMetric {
		metrics = append(metrics, Metric{Spec: podsSpec("broken", 1000), Err: errors.New("metrics API unavailable")})
	}
	var b *autoscalingv2.HorizontalPodAutoscalerBehavior
	if tc.up != nil || tc.down != nil {
		b = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: tc.up, ScaleDown: tc.down}
	}
	return HPAInput{
		SpecReplicas: tc.spec, StatusReplicas: tc.status, MinReplicas: tc.minR, MaxReplicas: tc.maxR,
		Behavior: b, Metrics: metrics, Pods: pods, Config: upstreamTestConfig(),
		History: History{Initialized: tc.initialized, Recommendations: tc.recs, ScaledToZero: tc.scaledToZero},
	}
}

func (tc hpaCase) run(t *testing.T) {
	t.Helper()
	res, err := ComputeHPA(tc.input(), testNow)
	if err != nil {
		t.Fatalf("ComputeHPA: %v", err)
	}
	if res.DesiredReplicas != tc.want {
		t.Fatalf("desired = %d, want %d (metrics %+v, conditions %+v, err %v)", res.DesiredReplicas, tc.want, res.Metrics, res.Conditions, res.MetricsErr)
	}
	if res.Rescale != (tc.want != tc.spec) {
		t.Fatalf("rescale = %v with desired %d and spec %d", res.Rescale, tc.want, tc.spec)
	}
	for _, c := range []struct {
		t    autoscalingv2.HorizontalPodAutoscalerConditionType
		want string
	}{{autoscalingv2.ScalingLimited, tc.wantLimited}, {autoscalingv2.AbleToScale, tc.wantAble},
		{autoscalingv2.ScalingActive, tc.wantActive}, {autoscalingv2.ScaledToZero, tc.wantScaledToZeroReason}} {
		if c.want == "" {
			continue
		}
		got, ok := res.Condition(c.t)
		if !ok || got.Reason != c.want {
			t.Fatalf("condition %s = %+v, want reason %s (all: %+v)", c.t, got, c.want, res.Conditions)
		}
	}
}

func TestComputeHPACPU(t *testing.T) {
	cases := []hpaCase{
		{name: "scale up", minR: 2, maxR: 6, spec: 3, status: 3, cpuTarget: 30, levels: []int64{300, 500, 700}, want: 5,
			wantLimited: ReasonDesiredWithinRange, wantActive: "ValidMetricFound"},
		{name: "scale up with unready pods results in less scale", minR: 2, maxR: 6, spec: 3, status: 3, cpuTarget: 30,
			levels: []int64{300, 500, 700}, pods: podSet{readiness: rs(F, T, T)}, want: 4},
		{name: "scale up with hot cpu pods results in less scale", minR: 2, maxR: 6, spec: 3, status: 3, cpuTarget: 30,
			levels: []int64{300, 500, 700}, pods: podSet{start: ts(hot(), cool(), cool())}, want: 4},
		{name: "scale up ignores failed pods", minR: 2, maxR: 6, spec: 2, status: 2, cpuTarget: 30, levels: []int64{500, 700},
			requests: repeat(4, 1000), pods: podSet{readiness: rs(T, T, F, F), phase: phasesOf("Running", "Running", "Failed", "Failed")}, want: 4},
		{name: "scale up ignores deletion pods", minR: 2, maxR: 6, spec: 2, status: 2, cpuTarget: 30, levels: []int64{500, 700},
			requests: repeat(4, 1000), pods: podSet{readiness: rs(T, T, F, F), deleting: []bool{false, false, true, true}}, want: 4},
		{name: "no scale up when all unready pods bring utilization within target", minR: 2, maxR: 6, spec: 3, status: 3, cpuTarget: 30,
			levels: []int64{400, 500, 700}, pods: podSet{readiness: rs(T, F, F)}, want: 3},
		{name: "scale down", minR: 2, maxR: 6, spec: 5, status: 5, cpuTarget: 50, levels: []int64{100, 300, 500, 250, 250},
			initialized: true, want: 3},
		{name: "scale down includes unready pods", minR: 2, maxR: 6, spec: 5, status: 5, cpuTarget: 50, levels: []int64{100, 300, 500, 250, 250},
			pods: podSet{readiness: rs(T, T, T, F, F)}, initialized: true, want: 2},
		{name: "scale down ignores hot cpu pods", minR: 2, maxR: 6, spec: 5, status: 5, cpuTarget: 50, levels: []int64{100, 300, 500, 250, 250},
			pods: podSet{start: ts(cool(), cool(), cool(), hot(), hot())}, initialized: true, want: 2},
		{name: "scale down ignores failed pods", minR: 2, maxR: 6, spec: 5, status: 5, cpuTarget: 50, levels: []int64{100, 300, 500, 250, 250},
			requests: repeat(7, 1000), pods: podSet{readiness: rs(T, T, T, T, T, F, F), phase: phasesOf("Running", "Running", "Running", "Running", "Running", "Failed", "Failed")},
			initialized: true, want: 3},
		{name: "scale down ignores deletion pods", minR: 2, maxR: 6, spec: 5, status: 5, cpuTarget: 50, levels: []int64{100, 300, 500, 250, 250},
			requests: repeat(7, 1000), pods: podSet{readiness: rs(T, T, T, T, T, F, F), deleting: []bool{false, false, false, false, false, true, true}},
			initialized: true, want: 3},
		{name: "scale down is stabilized on the first decision (initial size recorded)", minR: 2, maxR: 6, spec: 5, status: 5, cpuTarget: 50,
			levels: []int64{100, 300, 500, 250, 250}, want: 5, wantAble: ReasonScaleDownStabilized},
		{name: "scale up with one invalid metric", minR: 2, maxR: 6, spec: 3, status: 3, cpuTarget: 30, levels: []int64{300, 400, 500},
			invalidMetric: true, want: 4},
		{name: "no scale down with one invalid metric", minR: 2, maxR: 6, spec: 5, status: 5, cpuTarget: 50, levels: []int64{100, 300, 500, 250, 250},
			invalidMetric: true, initialized: true, want: 5, wantActive: "FailedGetPodsMetric"},
		{name: "from zero with invalid metric stays at zero", minR: 0, maxR: 6, spec: 0, status: 0, cpuTarget: 30, levels: []int64{300, 400, 500},
			requests: repeat(3, 1000), invalidMetric: true, initialized: true, want: 0, wantActive: "ScalingDisabled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

func TestComputeHPACustomMetrics(t *testing.T) {
	averageValue := podsSpec("qps", 15000)
	cases := []hpaCase{
		{name: "scale up custom metric", minR: 2, maxR: 6, spec: 3, status: 3, metrics: []autoscalingv2.MetricSpec{averageValue},
			levels: []int64{20000, 10000, 30000}, want: 4},
		{name: "unready and hot cpu pods do not reduce scale for custom metric", minR: 2, maxR: 6, spec: 3, status: 3,
			metrics: []autoscalingv2.MetricSpec{averageValue}, levels: []int64{50000, 10000, 30000},
			pods: podSet{readiness: rs(T, T, F), start: ts(cool(), cool(), hot())}, want: 6},
		{name: "unready and hot cpu pods scale to max with scaling limited condition", minR: 2, maxR: 6, spec: 3, status: 3,
			metrics: []autoscalingv2.MetricSpec{averageValue}, levels: []int64{50000, 15000, 30000},
			pods: podSet{readiness: rs(F, T, F), start: ts(hot(), cool(), hot())}, want: 6, wantLimited: ReasonTooManyReplicas},
		{name: "scale up external metric with value target", minR: 2, maxR: 6, spec: 3, status: 3,
			metrics: []autoscalingv2.MetricSpec{externalSpec("qps", autoscalingv2.ValueMetricType, 6666)}, levels: []int64{8600}, want: 4},
		{name: "scale up external metric with per-pod average value target", minR: 2, maxR: 6, spec: 3, status: 3,
			metrics: []autoscalingv2.MetricSpec{externalSpec("qps", autoscalingv2.AverageValueMetricType, 2222)}, levels: []int64{8600}, want: 4},
		{name: "scale up object metric with value target", minR: 2, maxR: 6, spec: 3, status: 3,
			metrics: []autoscalingv2.MetricSpec{objectSpec("qps", autoscalingv2.ValueMetricType, 15000)}, levels: []int64{20000}, want: 4},
		{name: "scale up from zero after the HPA scaled to zero", minR: 0, maxR: 6, spec: 0, status: 0, scaledToZero: true,
			metrics: []autoscalingv2.MetricSpec{objectSpec("qps", autoscalingv2.ValueMetricType, 15000)}, levels: []int64{20000}, want: 2},
		{name: "no scale up from zero when the HPA did not scale to zero", minR: 0, maxR: 6, spec: 0, status: 0,
			metrics: []autoscalingv2.MetricSpec{objectSpec("qps", autoscalingv2.ValueMetricType, 15000)}, levels: []int64{20000}, want: 0,
			wantActive: "ScalingDisabled"},
		{name: "scale up from zero ignores tolerance", minR: 0, maxR: 6, spec: 0, status: 0, scaledToZero: true,
			metrics: []autoscalingv2.MetricSpec{objectSpec("qps", autoscalingv2.ValueMetricType, 1000)}, levels: []int64{1000}, want: 1},
		{name: "scale up per-pod object metric with average value target", minR: 2, maxR: 6, spec: 3, status: 3,
			metrics: []autoscalingv2.MetricSpec{objectSpec("qps", autoscalingv2.AverageValueMetricType, 10000)}, levels: []int64{40000}, want: 4},
		{name: "scale down pods metric", minR: 2, maxR: 6, spec: 5, status: 5, metrics: []autoscalingv2.MetricSpec{podsSpec("qps", 20000)},
			levels: repeat(5, 12000), initialized: true, want: 3},
		{name: "scale down object metric with value target", minR: 2, maxR: 6, spec: 5, status: 5,
			metrics: []autoscalingv2.MetricSpec{objectSpec("qps", autoscalingv2.ValueMetricType, 20000)}, levels: []int64{12000}, initialized: true, want: 3},
		{name: "scale down to zero object metric", minR: 0, maxR: 6, spec: 5, status: 5,
			metrics: []autoscalingv2.MetricSpec{objectSpec("qps", autoscalingv2.ValueMetricType, 20000)}, levels: []int64{0}, initialized: true, want: 0,
			wantScaledToZeroReason: "ScaledToZero"},
		{name: "scale down per-pod object metric with average value target", minR: 2, maxR: 6, spec: 5, status: 5,
			metrics: []autoscalingv2.MetricSpec{objectSpec("qps", autoscalingv2.AverageValueMetricType, 20000)}, levels: []int64{60000}, initialized: true, want: 3},
		{name: "scale down external metric with value target", minR: 2, maxR: 6, spec: 5, status: 5,
			metrics: []autoscalingv2.MetricSpec{externalSpec("qps", autoscalingv2.ValueMetricType, 14400)}, levels: []int64{8600}, initialized: true, want: 3},
		{name: "scale down to zero external metric", minR: 0, maxR: 6, spec: 5, status: 5,
			metrics: []autoscalingv2.MetricSpec{externalSpec("qps", autoscalingv2.ValueMetricType, 14400)}, levels: []int64{0}, initialized: true, want: 0,
			wantScaledToZeroReason: "ScaledToZero"},
		{name: "scale down per-pod external metric with average value target", minR: 2, maxR: 6, spec: 5, status: 5,
			metrics: []autoscalingv2.MetricSpec{externalSpec("qps", autoscalingv2.AverageValueMetricType, 3000)}, levels: []int64{8600}, initialized: true, want: 3},
		{name: "several metrics: the largest proposal wins", minR: 1, maxR: 10, spec: 3, status: 3, cpuTarget: 30,
			metrics: []autoscalingv2.MetricSpec{externalSpec("qps", autoscalingv2.ValueMetricType, 100)}, levels: []int64{300, 500, 700}, want: 10,
			wantLimited: ReasonTooManyReplicas},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

func TestComputeHPAToleranceAndLimits(t *testing.T) {
	mixed := []int64{900, 1000, 1100}
	cases := []hpaCase{
		{name: "CPU resource metric within tolerance", minR: 1, maxR: 5, spec: 3, status: 3, cpuTarget: 100, levels: []int64{1010, 1030, 1020},
			requests: mixed, want: 3, wantAble: ReasonReadyForNewScale},
		{name: "pods metric within tolerance", minR: 1, maxR: 5, spec: 3, status: 3, metrics: []autoscalingv2.MetricSpec{podsSpec("qps", 20000)},
			levels: []int64{20000, 20001, 21000}, requests: mixed, want: 3},
		{name: "object metric with value target within tolerance", minR: 1, maxR: 5, spec: 3, status: 3,
			metrics: []autoscalingv2.MetricSpec{objectSpec("qps", autoscalingv2.ValueMetricType, 20000)}, levels: []int64{20050}, requests: mixed, want: 3},
		{name: "external metric with value target within tolerance", minR: 2, maxR: 6, spec: 4, status: 4,
			metrics: []autoscalingv2.MetricSpec{externalSpec("qps", autoscalingv2.ValueMetricType, 8666)}, levels: []int64{8600}, want: 4},
		{name: "per-pod object metric with average value target within tolerance", minR: 2, maxR: 6, spec: 4, status: 4,
			metrics: []autoscalingv2.MetricSpec{objectSpec("qps", autoscalingv2.AverageValueMetricType, 2200)}, levels: []int64{8600}, want: 4},
		{name: "per-pod external metric with average value target within tolerance", minR: 2, maxR: 6, spec: 4, status: 4,
			metrics: []autoscalingv2.MetricSpec{externalSpec("qps", autoscalingv2.AverageValueMetricType, 2200)}, levels: []int64{8600}, want: 4},
		{name: "scaling up because of a 1% configurable tolerance", minR: 1, maxR: 5, spec: 3, status: 3, cpuTarget: 100,
			up: &autoscalingv2.HPAScalingRules{Tolerance: milli(10)}, levels: []int64{1010, 1030, 1020}, requests: mixed, want: 4},
		{name: "no scale-down because of a 90% configurable tolerance", minR: 1, maxR: 5, spec: 3, status: 3, cpuTarget: 100,
			down: &autoscalingv2.HPAScalingRules{Tolerance: milli(900)}, levels: []int64{300, 300, 300}, want: 3, wantAble: ReasonReadyForNewScale},
		{name: "no scaling because of the large default tolerance", minR: 1, maxR: 5, spec: 3, status: 3, cpuTarget: 100,
			levels: []int64{1010, 1030, 1020}, requests: mixed, want: 3},
		{name: "scale down clamped to min replicas", minR: 2, maxR: 5, spec: 3, status: 3, cpuTarget: 90, levels: []int64{10, 95, 10},
			requests: mixed, initialized: true, want: 2, wantLimited: ReasonTooFewReplicas},
		{name: "scale down to zero when min replicas is zero", minR: 0, maxR: 5, spec: 3, status: 3, cpuTarget: 90, levels: []int64{0, 0, 0},
			requests: mixed, initialized: true, want: 0, wantLimited: ReasonDesiredWithinRange},
		{name: "scale down clamped to min when desired is zero", minR: 2, maxR: 5, spec: 3, status: 3, cpuTarget: 90, levels: []int64{0, 0, 0},
			requests: mixed, initialized: true, want: 2, wantLimited: ReasonTooFewReplicas},
		{name: "no scaling when spec replicas is zero", minR: 3, maxR: 5, spec: 0, status: 0, cpuTarget: 90, requests: []int64{}, want: 0,
			wantActive: "ScalingDisabled"},
		{name: "scale up to min when below min replicas", minR: 3, maxR: 5, spec: 2, status: 2, cpuTarget: 90, requests: []int64{}, want: 3},
		{name: "scale down to max when above max replicas", minR: 3, maxR: 5, spec: 10, status: 10, cpuTarget: 90, requests: []int64{}, want: 5},
		{name: "scale up clamped to max replicas", minR: 2, maxR: 5, spec: 3, status: 3, cpuTarget: 90, levels: []int64{8000, 9500, 1000},
			requests: mixed, want: 5, wantLimited: ReasonTooManyReplicas},
		{name: "scale up to min immediately", minR: 2, maxR: 6, spec: 1, status: 1, cpuTarget: 90, levels: []int64{0, 0, 0, 0},
			requests: repeat(4, 1000), want: 2},
		{name: "scale down to max immediately", minR: 2, maxR: 5, spec: 6, status: 6, cpuTarget: 50, levels: []int64{8000, 9500, 1000},
			requests: mixed, want: 5},
		{name: "superfluous metrics reported", minR: 2, maxR: 6, spec: 4, status: 4, cpuTarget: 100,
			levels: []int64{4000, 9500, 3000, 7000, 3200, 2000}, requests: repeat(4, 1000), want: 6, wantLimited: ReasonTooManyReplicas},
		{name: "missing metrics from some pods", minR: 2, maxR: 6, spec: 4, status: 4, cpuTarget: 100, levels: []int64{400, 95},
			requests: repeat(4, 1000), initialized: true, want: 3},
		{name: "empty metrics from all pods", minR: 2, maxR: 6, spec: 4, status: 4, cpuTarget: 100, levels: []int64{},
			requests: repeat(4, 1000), want: 4, wantActive: "FailedGetResourceMetric"},
		{name: "no pods for the metrics", minR: 1, maxR: 5, spec: 1, status: 1, cpuTarget: 100, levels: []int64{200}, requests: []int64{},
			want: 1, wantActive: "FailedGetResourceMetric"},
		{name: "missing reports from some pods scales down", minR: 1, maxR: 5, spec: 4, status: 4, cpuTarget: 50, levels: []int64{200},
			requests: []int64{200}, initialized: true, want: 2},
		{name: "more replicas than spec no scale", minR: 1, maxR: 8, spec: 4, status: 5, cpuTarget: 50, levels: repeat(5, 500),
			requests: repeat(5, 1000), want: 4, wantAble: ReasonReadyForNewScale},
		{name: "event created: scale up from one", minR: 1, maxR: 5, spec: 1, status: 1, cpuTarget: 50, levels: []int64{200},
			requests: []int64{200}, want: 2},
		{name: "event not created: within tolerance", minR: 1, maxR: 5, spec: 2, status: 2, cpuTarget: 50, levels: []int64{200, 200},
			requests: []int64{400, 400}, want: 2},
		{name: "upscale cap by percent policy", minR: 1, maxR: 100, spec: 3, status: 3, cpuTarget: 10, up: rules(0, 0, 700, 60, 0),
			levels: []int64{100, 200, 300}, requests: repeat(3, 100), want: 24, wantLimited: ReasonScaleUpLimit},
		{name: "upscale cap greater than max replicas", minR: 1, maxR: 20, spec: 3, status: 3, cpuTarget: 10, up: rules(0, 0, 700, 60, 0),
			levels: []int64{100, 200, 300}, requests: repeat(3, 100), want: 20, wantLimited: ReasonTooManyReplicas},
		{name: "legacy scale-up limit (factor 8 in upstream tests)", minR: 1, maxR: 100, spec: 3, status: 3, cpuTarget: 10,
			levels: []int64{100, 200, 300}, requests: repeat(3, 100), want: 24, wantLimited: ReasonScaleUpLimit},
		{name: "stabilized downscale with behavior keeps a recent higher recommendation", minR: 1, maxR: 5, spec: 4, status: 4, cpuTarget: 50,
			levels: repeat(4, 100), down: rules(0, 0, 100, 15, 300),
			recs:        []Recommendation{{Replicas: 4, Time: testNow.Add(-time.Minute)}, {Replicas: 3, Time: testNow.Add(-30 * time.Second)}},
			initialized: true, want: 4, wantAble: ReasonScaleDownStabilized},
		{name: "legacy stabilized downscale", minR: 1, maxR: 5, spec: 4, status: 4, cpuTarget: 50, levels: repeat(4, 100),
			recs:        []Recommendation{{Replicas: 4, Time: testNow.Add(-time.Minute)}, {Replicas: 1, Time: testNow.Add(-10 * time.Minute)}},
			initialized: true, want: 4, wantAble: ReasonScaleDownStabilized},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

func TestComputeHPAHistory(t *testing.T) {
	tc := hpaCase{minR: 1, maxR: 10, spec: 2, status: 2, cpuTarget: 50, levels: []int64{1000, 1000}, up: rules(0, 0, 100, 60, 0)}
	in := tc.input()
	first, err := ComputeHPA(in, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if first.DesiredReplicas != 4 || len(first.History.ScaleUpEvents) != 1 || first.History.ScaleUpEvents[0].Change != 2 {
		t.Fatalf("first decision: desired %d, events %+v", first.DesiredReplicas, first.History.ScaleUpEvents)
	}
	if len(in.History.Recommendations) != 0 || len(in.History.ScaleUpEvents) != 0 {
		t.Fatal("ComputeHPA modified the caller's history")
	}
	// Same load ten seconds later on the new size: 100% per 60s counts from 2 (the size at the start of the
	// period), so 4 is already the limit.
	tc2 := tc
	tc2.spec, tc2.status, tc2.levels = 4, 4, []int64{2000, 2000, 2000, 2000}
	in2 := tc2.input()
	in2.History = first.History
	second, err := ComputeHPA(in2, testNow.Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if second.DesiredReplicas != 4 {
		t.Fatalf("second decision: desired %d, want 4 (rate limited)", second.DesiredReplicas)
	}
	if c, _ := second.Condition(autoscalingv2.ScalingLimited); c.Reason != ReasonScaleUpLimit {
		t.Fatalf("second decision ScalingLimited = %+v", c)
	}
}

func TestComputeHPAValidation(t *testing.T) {
	base := hpaCase{minR: 1, maxR: 5, spec: 2, status: 2, cpuTarget: 50, levels: []int64{100, 100}}
	cases := []struct {
		name   string
		mutate func(*HPAInput)
		want   string
	}{
		{"negative spec replicas", func(in *HPAInput) { in.SpecReplicas = -1 }, "specReplicas"},
		{"no metrics", func(in *HPAInput) { in.Metrics = nil }, "metrics: at least one metric"},
		{"min above max", func(in *HPAInput) { in.MinReplicas = 9 }, "minReplicas: 9 is greater than maxReplicas 5"},
		{"zero max", func(in *HPAInput) { in.MaxReplicas = 0 }, "maxReplicas"},
		{"negative sample", func(in *HPAInput) { in.Metrics[0].Samples[1].Value = -3 }, "metrics[0]: samples[1]"},
		{"misaligned samples", func(in *HPAInput) { in.Metrics[0].Samples = in.Metrics[0].Samples[:1] }, "metrics[0]: samples: have 1"},
		{"zero target", func(in *HPAInput) { in.Metrics[0].Spec.Resource.Target.AverageUtilization = ptr.To(int32(0)) }, "metrics[0]: target.averageUtilization"},
		{"negative tolerance config", func(in *HPAInput) { c := DefaultConfig(); c.Tolerance = -1; in.Config = &c }, "config.tolerance"},
		{"bad behavior", func(in *HPAInput) {
			in.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: rules(4, -1, 0, 0, 0)}
		}, "behavior.scaleUp.policies[0].periodSeconds"},
		{"pods metric without target", func(in *HPAInput) {
			in.Metrics = append(in.Metrics, Metric{Spec: autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{}}})
		}, "metrics[1]: pods.target.averageValue"},
		{"negative object value", func(in *HPAInput) {
			in.Metrics = append(in.Metrics, Metric{Spec: objectSpec("x", autoscalingv2.ValueMetricType, 10), Value: -1})
		}, "metrics[1]: value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := base.input()
			tc.mutate(&in)
			_, err := ComputeHPA(in, testNow)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestComputeHPAUnknownMetricType(t *testing.T) {
	in := hpaCase{minR: 1, maxR: 5, spec: 2, status: 2}.input()
	in.Metrics = []Metric{{Spec: autoscalingv2.MetricSpec{Type: "Bogus"}}}
	res, err := ComputeHPA(in, testNow)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := res.Condition(autoscalingv2.ScalingActive)
	if res.Rescale || c.Reason != "InvalidMetricSourceType" || c.Status != corev1.ConditionFalse {
		t.Fatalf("result %+v", res)
	}
}
