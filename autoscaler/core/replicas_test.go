package core

import (
	"math"
	"strings"
	"testing"
	"time"
)

// The cases below restate upstream's replica_calculator_test.go scenarios with our own fixtures. Upstream's pods
// have two containers each reporting the listed level, so a pod's sample is twice the level and its request twice
// the per-container request (x2 below); ContainerResource cases use the one container's numbers.

func x2(levels ...int64) []int64 {
	out := make([]int64, len(levels))
	for i, l := range levels {
		out[i] = 2 * l
	}
	return out
}

func repeat(n int, v int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

var defaultTol = Tolerances{ScaleDown: DefaultTolerance, ScaleUp: DefaultTolerance}

type utilizationCase struct {
	name     string
	current  int32
	pods     podSet
	levels   []int64 // per-pod samples; beyond the pod list they are unmatched
	requests []int64 // per-pod requests
	target   int32
	tol      *Tolerances

	wantReplicas    int32
	wantUtilization int32
	wantRaw         int64
	wantErr         string
}

func (tc utilizationCase) run(t *testing.T) {
	t.Helper()
	ps := tc.pods
	if ps.count == 0 {
		ps.count = int(tc.current)
	}
	pods := ps.build()
	samples, unmatched := samplesFor(len(pods), tc.levels, time.Time{}, time.Minute)
	requests := make([]int64, len(pods))
	for i := range requests {
		requests[i] = 2000
		if i < len(tc.requests) {
			requests[i] = tc.requests[i]
		}
	}
	tol := defaultTol
	if tc.tol != nil {
		tol = *tc.tol
	}
	cfg := upstreamTestConfig()
	got, err := ResourceUtilizationReplicas(PodMetricInput{
		CurrentReplicas: tc.current, Resource: "cpu", Pods: pods, Samples: samples, Requests: requests,
		SampleTimes: timesFor(len(pods), time.Time{}, time.Minute),
		Unmatched:   unmatched, Tolerances: tol, CPUInitializationPeriod: cfg.CPUInitializationPeriod,
		InitialReadinessDelay: cfg.InitialReadinessDelay, Now: testNow,
	}, tc.target)
	if tc.wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if got.Replicas != tc.wantReplicas || got.Utilization != tc.wantUtilization || got.Usage != tc.wantRaw {
		t.Fatalf("got replicas=%d utilization=%d raw=%d, want %d/%d/%d",
			got.Replicas, got.Utilization, got.Usage, tc.wantReplicas, tc.wantUtilization, tc.wantRaw)
	}
}

func TestResourceUtilizationReplicas(t *testing.T) {
	cases := []utilizationCase{
		{name: "scale up", current: 3, levels: x2(300, 500, 700), target: 30, wantReplicas: 5, wantUtilization: 50, wantRaw: 1000},
		{name: "scale up: container metric", current: 3, levels: []int64{300, 500, 700}, requests: repeat(3, 1000), target: 30,
			wantReplicas: 5, wantUtilization: 50, wantRaw: 500},
		{name: "scale up: unready pod scales less", current: 3, pods: podSet{readiness: rs(F, T, T)},
			levels: x2(300, 500, 700), target: 30, wantReplicas: 4, wantUtilization: 60, wantRaw: 1200},
		{name: "scale up: hot-CPU container scales less", current: 3, pods: podSet{start: ts(hot(), cool(), cool())},
			levels: []int64{300, 500, 700}, requests: repeat(3, 1000), target: 30, wantReplicas: 4, wantUtilization: 60, wantRaw: 600},
		{name: "scale up: hot-CPU pod scales less", current: 3, pods: podSet{start: ts(hot(), cool(), cool())},
			levels: x2(300, 500, 700), target: 30, wantReplicas: 4, wantUtilization: 60, wantRaw: 1200},
		{name: "no scale: unready pods ignored", current: 3, pods: podSet{readiness: rs(T, F, F)},
			levels: x2(400, 500, 700), target: 30, wantReplicas: 3, wantUtilization: 40, wantRaw: 800},
		{name: "no scale: hot-CPU pods ignored", current: 3, pods: podSet{readiness: rs(T, F, F), start: ts(cool(), hot(), hot())},
			levels: x2(400, 500, 700), target: 30, wantReplicas: 3, wantUtilization: 40, wantRaw: 800},
		{name: "scale up: failed pods ignored", current: 2,
			pods:   podSet{readiness: rs(T, T, F, F), phase: phasesOf("Running", "Running", "Failed", "Failed")},
			levels: x2(500, 700), target: 30, wantReplicas: 4, wantUtilization: 60, wantRaw: 1200},
		{name: "scale up: failed pods ignored with missing container metric", current: 2,
			pods:   podSet{readiness: rs(T, T, F, F), phase: phasesOf("Running", "Running", "Failed", "Failed")},
			levels: []int64{500, 700}, requests: repeat(4, 1000), target: 30, wantReplicas: 4, wantUtilization: 60, wantRaw: 600},
		{name: "scale up: pods being deleted are ignored", current: 2,
			pods:   podSet{readiness: rs(T, T, F, F), phase: phasesOf("Running", "Running", "Running", "Running"), deleting: []bool{false, false, true, true}},
			levels: x2(500, 700), target: 30, wantReplicas: 4, wantUtilization: 60, wantRaw: 1200},
		{name: "scale down", current: 5, levels: x2(100, 300, 500, 250, 250), target: 50, wantReplicas: 3, wantUtilization: 28, wantRaw: 560},
		{name: "scale down: container metric", current: 5, levels: []int64{100, 300, 500, 250, 250}, requests: repeat(5, 1000),
			target: 50, wantReplicas: 3, wantUtilization: 28, wantRaw: 280},
		{name: "scale down: exclude unready pods", current: 5, pods: podSet{readiness: rs(T, T, T, F, F)},
			levels: x2(100, 300, 500, 250, 250), target: 50, wantReplicas: 2, wantUtilization: 30, wantRaw: 600},
		{name: "scale down: container metric excludes unready pods", current: 5, pods: podSet{readiness: rs(T, T, T, F, F)},
			levels: []int64{100, 300, 500, 250, 250}, requests: repeat(5, 1000), target: 50, wantReplicas: 2, wantUtilization: 30, wantRaw: 300},
		{name: "scale down: exclude unscheduled pods", current: 5,
			pods:   podSet{readiness: rs(T, F, F, F, F), phase: phasesOf("Running", "Pending", "Pending", "Pending", "Pending")},
			levels: x2(100), target: 50, wantReplicas: 1, wantUtilization: 10, wantRaw: 200},
		{name: "scale down: container metric excludes unscheduled pods", current: 5,
			pods:   podSet{readiness: rs(T, F, F, F, F), phase: phasesOf("Running", "Pending", "Pending", "Pending", "Pending")},
			levels: []int64{100, 300, 500, 250, 250}, requests: repeat(5, 1000), target: 50, wantReplicas: 1, wantUtilization: 10, wantRaw: 100},
		{name: "scale down: ignore hot-CPU pods", current: 5, pods: podSet{start: ts(cool(), cool(), cool(), hot(), hot())},
			levels: x2(100, 300, 500, 250, 250), target: 50, wantReplicas: 2, wantUtilization: 30, wantRaw: 600},
		{name: "scale down: container metric ignores hot-CPU pods", current: 5, pods: podSet{start: ts(cool(), cool(), cool(), hot(), hot())},
			levels: []int64{100, 300, 500, 1000, 1000}, requests: repeat(5, 1000), target: 50, wantReplicas: 2, wantUtilization: 30, wantRaw: 300},
		{name: "scale down: failed pods ignored", current: 5,
			pods:   podSet{readiness: rs(T, T, T, T, T, F, F), phase: phasesOf("Running", "Running", "Running", "Running", "Running", "Failed", "Failed")},
			levels: x2(100, 300, 500, 250, 250), target: 50, wantReplicas: 3, wantUtilization: 28, wantRaw: 560},
		{name: "scale down: pods being deleted are ignored", current: 5,
			pods: podSet{readiness: rs(T, T, T, T, T, F, F), phase: phasesOf("Running", "Running", "Running", "Running", "Running", "Running", "Running"),
				deleting: []bool{false, false, false, false, false, true, true}},
			levels: x2(100, 300, 500, 250, 250), target: 50, wantReplicas: 3, wantUtilization: 28, wantRaw: 560},
		{name: "scale down: still-running pods being deleted are ignored (container)", current: 5,
			pods: podSet{readiness: rs(T, T, T, T, T, F, F), phase: phasesOf("Running", "Running", "Running", "Running", "Running", "Running", "Running"),
				deleting: []bool{false, false, false, false, false, true, true}},
			levels: []int64{100, 300, 500, 250, 250}, requests: repeat(7, 1000), target: 50, wantReplicas: 3, wantUtilization: 28, wantRaw: 280},

		// Tolerance (requests 0.9/1.0/1.1 per container).
		{name: "tolerance: within default tolerance", current: 3, levels: x2(1010, 1030, 1020), requests: x2(900, 1000, 1100),
			target: 100, wantReplicas: 3, wantUtilization: 102, wantRaw: 2040},
		{name: "tolerance: outside 0% tolerance", current: 3, tol: &Tolerances{}, levels: x2(909, 1010, 1111), requests: x2(900, 1000, 1100),
			target: 100, wantReplicas: 4, wantUtilization: 101, wantRaw: 2020},
		{name: "tolerance: within 200% scale-up tolerance", current: 3, tol: &Tolerances{ScaleDown: DefaultTolerance, ScaleUp: 2},
			levels: x2(1890, 1910, 1900), requests: x2(900, 1000, 1100), target: 100, wantReplicas: 3, wantUtilization: 190, wantRaw: 3800},
		{name: "tolerance: outside 8% scale-up tolerance (superfluous scale-down tolerance)", current: 3, tol: &Tolerances{ScaleDown: 2, ScaleUp: .08},
			levels: x2(1100, 1080, 1090), requests: x2(900, 1000, 1100), target: 100, wantReplicas: 4, wantUtilization: 109, wantRaw: 2180},
		{name: "tolerance: within 36% scale-down tolerance", current: 3, tol: &Tolerances{ScaleDown: .36, ScaleUp: DefaultTolerance},
			levels: x2(660, 640, 650), requests: x2(900, 1000, 1100), target: 100, wantReplicas: 3, wantUtilization: 65, wantRaw: 1300},
		{name: "tolerance: outside 34% scale-down tolerance", current: 3, tol: &Tolerances{ScaleDown: .34, ScaleUp: DefaultTolerance},
			levels: x2(660, 640, 650), requests: x2(900, 1000, 1100), target: 100, wantReplicas: 2, wantUtilization: 65, wantRaw: 1300},

		// Missing, superfluous and partial metrics.
		{name: "missing: superfluous metrics counted", current: 4, levels: x2(4000, 9500, 3000, 7000, 3200, 2000),
			target: 100, wantReplicas: 24, wantUtilization: 587, wantRaw: 11750},
		{name: "missing: some pods missing metrics scales down", current: 4, levels: x2(400, 95),
			target: 100, wantReplicas: 3, wantUtilization: 24, wantRaw: 495},
		{name: "missing: no change, metric equal to target", current: 2, levels: x2(1000), target: 100, wantReplicas: 2, wantUtilization: 100, wantRaw: 2000},
		{name: "missing: no change, metric above target", current: 2, levels: x2(1900), target: 100, wantReplicas: 2, wantUtilization: 190, wantRaw: 3800},
		{name: "missing: no change, metric below target", current: 2, levels: x2(600), target: 100, wantReplicas: 2, wantUtilization: 60, wantRaw: 1200},
		{name: "missing: no change, unready pod metric missing", current: 3, pods: podSet{readiness: rs(F, T, T)},
			levels: x2(100, 450), target: 50, wantReplicas: 3, wantUtilization: 45, wantRaw: 900},
		{name: "missing: no change, hot-CPU pod metric missing", current: 3, pods: podSet{start: ts(hot(), cool(), cool())},
			levels: x2(100, 450), target: 50, wantReplicas: 3, wantUtilization: 45, wantRaw: 900},
		{name: "missing: scale up, unready pod metric missing", current: 3, pods: podSet{readiness: rs(F, T, T)},
			levels: x2(100, 2000), target: 50, wantReplicas: 4, wantUtilization: 200, wantRaw: 4000},
		{name: "missing: scale up, hot-CPU pod metric missing", current: 3, pods: podSet{readiness: rs(F, T, T), start: ts(hot(), cool(), cool())},
			levels: x2(100, 2000), target: 50, wantReplicas: 4, wantUtilization: 200, wantRaw: 4000},
		{name: "missing: scale down, unready pod metric missing", current: 4, pods: podSet{readiness: rs(F, T, T, T)},
			levels: x2(100, 100, 100), target: 50, wantReplicas: 3, wantUtilization: 10, wantRaw: 200},
		{name: "missing: scale down, target over 100", current: 4, pods: podSet{readiness: rs(F, T, T, T)},
			levels: x2(200, 100, 100), requests: x2(1000, 1000, 2000, 2000), target: 300, wantReplicas: 2, wantUtilization: 6, wantRaw: 200},
		{name: "missing: rolling update with maxSurge, extra pod missing metric", current: 2,
			pods:   podSet{phase: phasesOf("Running", "Running", "Running")},
			levels: x2(100, 100), target: 50, wantReplicas: 2, wantUtilization: 10, wantRaw: 200},
		{name: "error: disjoint pod and metric names", current: 1, levels: []int64{absent, 200}, target: 100,
			wantErr: "no metrics returned matched known pods"},
		{name: "error: no metrics at all", current: 4, levels: nil, target: 100, wantErr: "did not receive metrics"},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

// TestResourceToleranceAlgorithm restates upstream's TestReplicaCalcComputedToleranceAlgImplementation: a target
// just past the tolerance scales down by the computed amount; a target just inside it does not scale.
func TestResourceToleranceAlgorithm(t *testing.T) {
	const startPods = 10
	totalUsed := int64(startPods * 150)
	totalRequested := 2 * totalUsed
	requestedToUsed := float64(totalRequested / totalUsed)
	perPod := totalRequested / startPods
	requests := []int64{perPod + 100, perPod - 100, perPod + 10, perPod - 10, perPod + 2, perPod - 2, perPod + 1, perPod - 1, perPod, perPod}
	levels := repeat(startPods, totalUsed/10)

	target := math.Abs(1/(requestedToUsed*(1-DefaultTolerance))) + .01
	wantPods := int32(math.Ceil(float64(totalUsed) / (float64(totalRequested) * target) * startPods))
	for _, tc := range []struct {
		name   string
		target float64
		want   int32
	}{
		{name: "just outside tolerance scales down", target: target, want: wantPods},
		{name: "just inside tolerance keeps replicas", target: math.Abs(1/(requestedToUsed*(1-DefaultTolerance))) + .004, want: startPods},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pods := podSet{count: startPods}.build()
			samples, _ := samplesFor(len(pods), levels, time.Time{}, time.Minute)
			got, err := ResourceUtilizationReplicas(PodMetricInput{
				CurrentReplicas: startPods, Resource: "cpu", Pods: pods, Samples: samples, Requests: requests,
				Tolerances: defaultTol, Now: testNow,
			}, int32(tc.target*100))
			if err != nil {
				t.Fatal(err)
			}
			if got.Replicas != tc.want || got.Utilization != int32(totalUsed*100/totalRequested) {
				t.Fatalf("got %d replicas at %d%%, want %d at %d%%", got.Replicas, got.Utilization, tc.want, totalUsed*100/totalRequested)
			}
		})
	}
}

type averageCase struct {
	name    string
	current int32
	pods    podSet
	levels  []int64
	target  int64
	tol     *Tolerances

	wantReplicas int32
	wantUsage    int64
}

func TestAverageValueReplicas(t *testing.T) {
	onePercentUp := &Tolerances{ScaleDown: DefaultTolerance, ScaleUp: .01}
	cases := []averageCase{
		{name: "pods: scale up", current: 3, levels: []int64{20000, 10000, 30000}, target: 15000, wantReplicas: 4, wantUsage: 20000},
		{name: "pods: scale up, unready hot-CPU pod scales less", current: 3,
			pods: podSet{readiness: rs(T, T, F), start: ts(cool(), cool(), hot())}, levels: []int64{50000, 10000, 30000},
			target: 15000, wantReplicas: 6, wantUsage: 30000},
		{name: "pods: scale up, unready hot-CPU pods avoid scale-down", current: 3,
			pods: podSet{readiness: rs(F, T, F), start: ts(hot(), cool(), hot())}, levels: []int64{50000, 15000, 30000},
			target: 15000, wantReplicas: 7, wantUsage: 31666},
		{name: "pods: scale down", current: 5, levels: repeat(5, 12000), target: 20000, wantReplicas: 3, wantUsage: 12000},
		{name: "pods: within default tolerance", current: 3, levels: []int64{20000, 21000, 21000}, target: 20000, wantReplicas: 3, wantUsage: 20666},
		{name: "pods: outside configurable 1% tolerance", current: 3, tol: onePercentUp, levels: []int64{20000, 21000, 21000},
			target: 20000, wantReplicas: 4, wantUsage: 20666},
		{name: "pods: no change with missing metrics", current: 5, levels: []int64{20000, 19000, 21000}, target: 20000, wantReplicas: 5, wantUsage: 20000},
		{name: "pods: rolling update with maxSurge, extra pod missing metric", current: 2,
			pods: podSet{phase: phasesOf("Running", "Running", "Running")}, levels: []int64{10000, 10000}, target: 17000,
			wantReplicas: 2, wantUsage: 10000},
		{name: "pods: missing metrics on scale down assume target", current: 4, levels: []int64{1000, 1000}, target: 10000,
			wantReplicas: 3, wantUsage: 1000}, // (2*1000 + 2*10000)/4 = 5500 -> ceil(0.55*4)
		{name: "pods: superfluous samples are counted", current: 2, levels: []int64{10000, 10000, 40000}, target: 10000,
			wantReplicas: 4, wantUsage: 20000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := tc.pods
			if ps.count == 0 {
				ps.count = int(tc.current)
			}
			pods := ps.build()
			samples, unmatched := samplesFor(len(pods), tc.levels, time.Time{}, time.Minute)
			tol := defaultTol
			if tc.tol != nil {
				tol = *tc.tol
			}
			got, err := AverageValueReplicas(PodMetricInput{
				CurrentReplicas: tc.current, Pods: pods, Samples: samples, Unmatched: unmatched, Tolerances: tol, Now: testNow,
			}, tc.target)
			if err != nil {
				t.Fatal(err)
			}
			if got.Replicas != tc.wantReplicas || got.Usage != tc.wantUsage {
				t.Fatalf("got replicas=%d usage=%d, want %d/%d", got.Replicas, got.Usage, tc.wantReplicas, tc.wantUsage)
			}
		})
	}
}

func TestValueReplicas(t *testing.T) {
	onePercentUp := Tolerances{ScaleDown: DefaultTolerance, ScaleUp: .01}
	cases := []struct {
		name         string
		current      int32
		pods         podSet
		usage        int64
		target       int64
		tol          Tolerances
		wantReplicas int32
		wantErr      string
	}{
		{name: "object: scale up", current: 3, usage: 20000, target: 15000, tol: defaultTol, wantReplicas: 4},
		{name: "object: very large metric saturates to MaxInt32", current: 3, usage: math.MaxInt64, target: 1, tol: defaultTol, wantReplicas: math.MaxInt32},
		{name: "object: scale up counts only ready pods", current: 3, pods: podSet{readiness: rs(F, T, F)}, usage: 50000, target: 10000,
			tol: defaultTol, wantReplicas: 5},
		{name: "object: scale down", current: 5, usage: 12000, target: 20000, tol: defaultTol, wantReplicas: 3},
		{name: "object: within default tolerance", current: 3, usage: 20666, target: 20000, tol: defaultTol, wantReplicas: 3},
		{name: "object: outside configurable 1% tolerance", current: 3, usage: 20666, target: 20000, tol: onePercentUp, wantReplicas: 4},
		{name: "external: scale down ignores unready pods", current: 3, pods: podSet{readiness: rs(F, T, F)}, usage: 8600, target: 4400,
			tol: defaultTol, wantReplicas: 2},
		{name: "external: scale down", current: 5, usage: 8600, target: 14334, tol: defaultTol, wantReplicas: 3},
		{name: "external: within default tolerance", current: 3, usage: 8600, target: 8888, tol: defaultTol, wantReplicas: 3},
		{name: "external: outside configurable 1% tolerance", current: 3, usage: 8900, target: 8800, tol: onePercentUp, wantReplicas: 4},
		{name: "external: usage saturated at MaxInt64 against a huge target", current: 3, usage: math.MaxInt64, target: math.MaxInt64,
			tol: defaultTol, wantReplicas: 3},
		{name: "from zero ignores tolerance", current: 0, usage: 1000, target: 1000, tol: defaultTol, wantReplicas: 1},
		{name: "from zero proposes ceil(usage/target)", current: 0, usage: 20000, target: 15000, tol: defaultTol, wantReplicas: 2},
		{name: "no pods outside tolerance is an error", current: 3, pods: podSet{count: -1}, usage: 90000, target: 1000, tol: defaultTol,
			wantErr: "no pods returned"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := tc.pods
			if ps.count == 0 {
				ps.count = int(tc.current)
			}
			if ps.count < 0 {
				ps.count = 0
			}
			got, err := ValueReplicas(tc.current, tc.usage, tc.target, tc.tol, ps.build())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Replicas != tc.wantReplicas || got.Usage != tc.usage {
				t.Fatalf("got %+v, want replicas %d usage %d", got, tc.wantReplicas, tc.usage)
			}
		})
	}
}

func TestPerPodValueReplicas(t *testing.T) {
	onePercentUp := Tolerances{ScaleDown: DefaultTolerance, ScaleUp: .01}
	cases := []struct {
		name         string
		status       int32
		usage        int64
		target       int64
		tol          Tolerances
		wantReplicas int32
		wantUsage    int64
	}{
		{name: "object: scale up", status: 3, usage: 20000, target: 5000, tol: defaultTol, wantReplicas: 4, wantUsage: 6667},
		{name: "object: scale down", status: 5, usage: 6000, target: 2000, tol: defaultTol, wantReplicas: 3, wantUsage: 1200},
		{name: "object: within default tolerance", status: 4, usage: 20166, target: 5000, tol: defaultTol, wantReplicas: 4, wantUsage: 5042},
		{name: "object: outside configurable 1% tolerance", status: 4, usage: 20208, target: 5000, tol: onePercentUp, wantReplicas: 5, wantUsage: 5052},
		{name: "external: replica count overflow saturates to MaxInt32", status: 1, usage: math.MaxInt64, target: 1, tol: defaultTol,
			wantReplicas: math.MaxInt32, wantUsage: math.MaxInt64},
		{name: "external: usage overflow with huge target leaves replicas unchanged", status: 1, usage: math.MaxInt64, target: math.MaxInt64,
			tol: defaultTol, wantReplicas: 1, wantUsage: math.MaxInt64},
		{name: "external: scale up", status: 3, usage: 8600, target: 2150, tol: defaultTol, wantReplicas: 4, wantUsage: 2867},
		{name: "external: scale down", status: 5, usage: 8600, target: 2867, tol: defaultTol, wantReplicas: 3, wantUsage: 1720},
		{name: "external: within default tolerance", status: 3, usage: 8600, target: 2900, tol: defaultTol, wantReplicas: 3, wantUsage: 2867},
		{name: "external: outside configurable 1% tolerance", status: 3, usage: 8600, target: 2800, tol: onePercentUp, wantReplicas: 4, wantUsage: 2867},
		{name: "zero status replicas", status: 0, usage: 8600, target: 2800, tol: defaultTol, wantReplicas: 4, wantUsage: 8600},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PerPodValueReplicas(tc.status, tc.usage, tc.target, tc.tol)
			if err != nil {
				t.Fatal(err)
			}
			if got.Replicas != tc.wantReplicas || got.Usage != tc.wantUsage {
				t.Fatalf("got %+v, want replicas %d usage %d", got, tc.wantReplicas, tc.wantUsage)
			}
		})
	}
}

func TestSumValuesSaturates(t *testing.T) {
	got, err := SumValues([]int64{math.MaxInt64/2 + 1, math.MaxInt64/2 + 1})
	if err != nil || got != math.MaxInt64 {
		t.Fatalf("SumValues = %d, %v; want MaxInt64", got, err)
	}
	if _, err := SumValues([]int64{1, -1}); err == nil || !strings.Contains(err.Error(), "values[1]") {
		t.Fatalf("negative value error = %v, want one naming values[1]", err)
	}
}

func TestPodMetricInputErrors(t *testing.T) {
	pods := podSet{count: 2}.build()
	cases := []struct {
		name string
		in   PodMetricInput
		want string
	}{
		{name: "no pods", in: PodMetricInput{}, want: "no pods returned"},
		{name: "misaligned samples", in: PodMetricInput{Pods: pods, Samples: make([]PodSample, 1)}, want: "samples: have 1"},
		{name: "negative sample", in: PodMetricInput{Pods: pods, Samples: []PodSample{{Value: -1, Present: true}, {}}}, want: "samples[0]"},
		{name: "negative unmatched", in: PodMetricInput{Pods: pods, Samples: make([]PodSample, 2), Unmatched: []int64{-5}}, want: "unmatched[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := AverageValueReplicas(tc.in, 100)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := ResourceUtilizationReplicas(PodMetricInput{Pods: pods, Samples: make([]PodSample, 2), Requests: []int64{1}}, 50); err == nil ||
		!strings.Contains(err.Error(), "requests: have 1") {
		t.Fatalf("misaligned requests error = %v", err)
	}
	if _, err := ResourceUtilizationReplicas(PodMetricInput{Pods: pods}, 0); err == nil || !strings.Contains(err.Error(), "target utilization") {
		t.Fatalf("zero target error = %v", err)
	}
}
