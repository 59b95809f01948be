package core

import (
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/utils/ptr"
)

// Restates upstream's TestConvertDesiredReplicasWithRules (behavior nil; upstream's factor 2, minimum 4).
func TestConvertWithRules(t *testing.T) {
	cfg := DefaultConfig()
	cases := []struct {
		name                         string
		current, desired, minR, maxR int32
		wantReplicas                 int32
		wantReason                   string
	}{
		{"prenormalized desired replicas within range", 5, 7, 3, 8, 7, ReasonDesiredWithinRange},
		{"prenormalized desired replicas < minReplicas", 3, 1, 2, 8, 2, ReasonTooFewReplicas},
		{"prenormalized desired zeroed replicas within range", 1, 0, 0, 10, 0, ReasonDesiredWithinRange},
		{"maxReplicas is the limit because maxReplicas < scaleUpLimit", 20, 1000, 1, 10, 10, ReasonTooManyReplicas},
		{"scaleUpLimit is the limit because scaleUpLimit < maxReplicas", 3, 1000, 1, 2000, 6, ReasonScaleUpLimit},
		{"scaleUpLimit minimum of 4 applies to small counts", 1, 1000, 1, 2000, 4, ReasonScaleUpLimit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := convertWithRules(tc.current, tc.desired, tc.minR, tc.maxR, &cfg)
			if got.replicas != tc.wantReplicas || got.reason != tc.wantReason {
				t.Fatalf("got %d/%s, want %d/%s", got.replicas, got.reason, tc.wantReplicas, tc.wantReason)
			}
		})
	}
}

// Restates upstream's TestScalingWithRules (convertDesiredReplicasWithBehaviorRate).
func TestConvertWithBehaviorRate(t *testing.T) {
	cases := []struct {
		name             string
		upEvents         []ScaleEvent
		downEvents       []ScaleEvent
		minR, maxR       int32
		up, down         *autoscalingv2.HPAScalingRules
		current, desired int32
		wantReplicas     int32
		wantReason       string
	}{
		{name: "prenormalized desired replicas within range", current: 5, desired: 7, minR: 3, maxR: 8, wantReplicas: 7, wantReason: ReasonDesiredWithinRange},
		{name: "prenormalized desired replicas < minReplicas", current: 3, desired: 1, minR: 2, maxR: 8, wantReplicas: 2, wantReason: ReasonTooFewReplicas},
		{name: "within range when minReplicas is 0", current: 1, desired: 0, minR: 0, maxR: 10, wantReplicas: 0, wantReason: ReasonDesiredWithinRange},
		{name: "maxReplicas is the limit because maxReplicas < scaleUpLimit", current: 20, desired: 1000, minR: 1, maxR: 10, wantReplicas: 10, wantReason: ReasonTooManyReplicas},
		{name: "desired replica count is more than the maximum replica count", current: 100, desired: 1000, minR: 100, maxR: 150, wantReplicas: 150, wantReason: ReasonTooManyReplicas},
		{name: "scaleUpLimit < maxReplicas with user policies", up: rules(0, 0, 1, 60, 0), current: 3, desired: 1000, minR: 1, maxR: 2000,
			wantReplicas: 4, wantReason: ReasonScaleUpLimit},
		{name: "scaleUp with default behavior", current: 10, desired: 50, minR: 1, maxR: 1000, wantReplicas: 20, wantReason: ReasonScaleUpLimit},
		{name: "scaleUp with pods policy larger than percent policy", up: rules(100, 60, 100, 60, 0), current: 10, desired: 500, minR: 1, maxR: 1000,
			wantReplicas: 110, wantReason: ReasonScaleUpLimit},
		{name: "scaleUp with percent policy larger than pods policy", up: rules(2, 60, 100, 60, 0), current: 10, desired: 500, minR: 1, maxR: 1000,
			wantReplicas: 20, wantReason: ReasonScaleUpLimit},
		{name: "scaleUp with spec MaxReplicas limitation with large pod policy", up: rules(100, 60, 0, 0, 0), current: 10, desired: 50, minR: 1, maxR: 1000,
			wantReplicas: 50, wantReason: ReasonDesiredWithinRange},
		{name: "scaleUp with spec MaxReplicas limitation with large percent policy", up: rules(10000, 60, 0, 0, 0), current: 10, desired: 50, minR: 1, maxR: 1000,
			wantReplicas: 50, wantReason: ReasonDesiredWithinRange},
		{name: "scaleUp with pod policy limitation", up: rules(30, 60, 0, 0, 0), current: 10, desired: 50, minR: 1, maxR: 1000,
			wantReplicas: 40, wantReason: ReasonScaleUpLimit},
		{name: "scaleUp with percent policy limitation", up: rules(0, 0, 200, 60, 0), current: 10, desired: 50, minR: 1, maxR: 1000,
			wantReplicas: 30, wantReason: ReasonScaleUpLimit},
		{name: "scaleDown with percent policy larger than pod policy", down: rules(20, 60, 1, 60, 300), current: 100, desired: 2, minR: 1, maxR: 1000,
			wantReplicas: 80, wantReason: ReasonScaleDownLimit},
		{name: "scaleDown with pod policy larger than percent policy", down: rules(2, 60, 1, 60, 300), current: 100, desired: 2, minR: 1, maxR: 1000,
			wantReplicas: 98, wantReason: ReasonScaleDownLimit},
		{name: "scaleDown with spec MinReplicas limitation with large pod policy", down: rules(100, 60, 0, 0, 300), current: 10, desired: 0, minR: 1, maxR: 1000,
			wantReplicas: 1, wantReason: ReasonTooFewReplicas},
		{name: "scaleDown with spec MinReplicas limitation with large percent policy", down: rules(0, 0, 100, 60, 300), current: 10, desired: 2, minR: 5, maxR: 1000,
			wantReplicas: 5, wantReason: ReasonTooFewReplicas},
		{name: "scaleDown with pod policy limitation", down: rules(5, 60, 0, 0, 300), current: 10, desired: 2, minR: 1, maxR: 1000,
			wantReplicas: 5, wantReason: ReasonScaleDownLimit},
		{name: "scaleDown with percent policy limitation", down: rules(0, 0, 50, 60, 300), current: 10, desired: 5, minR: 1, maxR: 1000,
			wantReplicas: 5, wantReason: ReasonDesiredWithinRange},
		{name: "scaleUp with spec MaxReplicas limitation with large pod policy and events", upEvents: uniformEvents([]int32{1, 5, 9}, 120),
			up: rules(300, 60, 0, 0, 0), current: 100, desired: 500, minR: 1, maxR: 200, wantReplicas: 200, wantReason: ReasonTooManyReplicas},
		{name: "scaleUp with spec MaxReplicas limitation with large percent policy and events", upEvents: uniformEvents([]int32{1, 5, 9}, 120),
			up: rules(0, 0, 10000, 60, 0), current: 100, desired: 500, minR: 1, maxR: 200, wantReplicas: 200, wantReason: ReasonTooManyReplicas},
		{name: "scaleUp limited to current by many recent scale up events", upEvents: uniformEvents([]int32{1, 5, 9}, 120),
			up: rules(5, 120, 0, 0, 0), current: 100, desired: 500, minR: 1, maxR: 1000, wantReplicas: 100, wantReason: ReasonScaleUpLimit},
		{name: "scaleUp with pod policy and previous scale up events", upEvents: uniformEvents([]int32{1, 5, 9}, 120),
			up: rules(150, 120, 0, 0, 0), current: 100, desired: 500, minR: 1, maxR: 1000, wantReplicas: 235, wantReason: ReasonScaleUpLimit},
		{name: "scaleUp with percent policy and previous scale up events", upEvents: uniformEvents([]int32{1, 5, 9}, 120),
			up: rules(0, 0, 200, 120, 0), current: 100, desired: 500, minR: 1, maxR: 1000, wantReplicas: 255, wantReason: ReasonScaleUpLimit},
		{name: "scaleUp with percent policy and previous scale up and down events", upEvents: uniformEvents([]int32{4}, 120),
			downEvents: uniformEvents([]int32{2}, 120), up: rules(0, 0, 300, 300, 0), current: 6, desired: 24, minR: 1, maxR: 1000,
			wantReplicas: 16, wantReason: ReasonScaleUpLimit},
		{name: "scaleDown with default policy and previous events", downEvents: uniformEvents([]int32{1, 5, 9}, 120),
			current: 10, desired: 5, minR: 1, maxR: 1000, wantReplicas: 5, wantReason: ReasonDesiredWithinRange},
		{name: "scaleDown with MinReplicas limitation with large pod policy and previous events", downEvents: uniformEvents([]int32{1, 5, 9}, 120),
			down: rules(115, 120, 0, 0, 300), current: 100, desired: 0, minR: 1, maxR: 1000, wantReplicas: 1, wantReason: ReasonTooFewReplicas},
		{name: "scaleDown with MinReplicas 5 limitation with large pod policy and previous events", downEvents: uniformEvents([]int32{1, 5, 9}, 120),
			down: rules(130, 120, 0, 0, 300), current: 100, desired: 0, minR: 5, maxR: 1000, wantReplicas: 5, wantReason: ReasonTooFewReplicas},
		{name: "scaleDown with MinReplicas limitation with large percent policy and previous events", downEvents: uniformEvents([]int32{1, 5, 9}, 120),
			down: rules(0, 0, 100, 120, 300), current: 100, desired: 2, minR: 5, maxR: 1000, wantReplicas: 5, wantReason: ReasonTooFewReplicas},
		{name: "scaleDown with pod policy limitation and previous events", downEvents: uniformEvents([]int32{1, 5, 9}, 120),
			down: rules(5, 120, 0, 0, 300), current: 100, desired: 2, minR: 1, maxR: 1000, wantReplicas: 100, wantReason: ReasonScaleDownLimit},
		{name: "scaleDown with percent policy limitation and previous events", downEvents: uniformEvents([]int32{2, 4, 6}, 120),
			down: rules(0, 0, 50, 120, 300), current: 100, desired: 0, minR: 1, maxR: 1000, wantReplicas: 56, wantReason: ReasonScaleDownLimit},
		{name: "scaleDown with percent policy and previous scale up and down events", upEvents: uniformEvents([]int32{2}, 120),
			downEvents: uniformEvents([]int32{4}, 120), down: rules(0, 0, 50, 180, 0), current: 10, desired: 1, minR: 1, maxR: 1000,
			wantReplicas: 6, wantReason: ReasonScaleDownLimit},
		{name: "scaleDown with previous events preventing further scale down", downEvents: uniformEvents([]int32{10, 10, 10}, 120),
			down: rules(0, 0, 10, 120, 300), current: 100, desired: 0, minR: 1, maxR: 1000, wantReplicas: 100, wantReason: ReasonScaleDownLimit},
		{name: "scaleDown with previous events still allowing more scale down", downEvents: uniformEvents([]int32{10, 10, 10}, 120),
			down: rules(0, 0, 1000, 120, 300), current: 10, desired: 5, minR: 1, maxR: 1000, wantReplicas: 5, wantReason: ReasonDesiredWithinRange},
		{name: "outdated events, one policy, up", upEvents: uniformEvents([]int32{8, 12, 9, 11}, 120),
			up: rules(1000, 60, 0, 0, 0), current: 100, desired: 200, minR: 1, maxR: 1000, wantReplicas: 200, wantReason: ReasonDesiredWithinRange},
		{name: "events not outdated for two policies, up", upEvents: uniformEvents([]int32{8, 12, 9, 11}, 120),
			up: rules(1000, 120, 100, 60, 0), current: 100, desired: 200, minR: 1, maxR: 1000, wantReplicas: 200, wantReason: ReasonDesiredWithinRange},
		{name: "events outdated for two policies, up", upEvents: uniformEvents([]int32{8, 12, 9, 11}, 120),
			up: rules(1000, 30, 100, 60, 0), current: 100, desired: 200, minR: 1, maxR: 1000, wantReplicas: 200, wantReason: ReasonDesiredWithinRange},
		{name: "outdated events, one policy, down", downEvents: uniformEvents([]int32{8, 12, 9, 11}, 120),
			down: rules(1000, 60, 0, 0, 300), current: 100, desired: 5, minR: 1, maxR: 1000, wantReplicas: 5, wantReason: ReasonDesiredWithinRange},
		{name: "events not outdated for two policies, down", downEvents: uniformEvents([]int32{8, 12, 9, 11}, 120),
			down: rules(1000, 120, 100, 60, 300), current: 100, desired: 5, minR: 1, maxR: 1000, wantReplicas: 5, wantReason: ReasonDesiredWithinRange},
		{name: "events outdated for two policies, down", downEvents: uniformEvents([]int32{8, 12, 9, 11}, 120),
			down: rules(1000, 30, 100, 60, 300), current: 100, desired: 5, minR: 1, maxR: 1000, wantReplicas: 5, wantReason: ReasonDesiredWithinRange},
		{name: "selectPolicy Disabled blocks scale up", up: &autoscalingv2.HPAScalingRules{SelectPolicy: ptr.To(autoscalingv2.DisabledPolicySelect)},
			current: 10, desired: 50, minR: 1, maxR: 1000, wantReplicas: 10, wantReason: ReasonScaleUpLimit},
		{name: "selectPolicy Disabled blocks scale down", down: &autoscalingv2.HPAScalingRules{SelectPolicy: ptr.To(autoscalingv2.DisabledPolicySelect)},
			current: 10, desired: 2, minR: 1, maxR: 1000, wantReplicas: 10, wantReason: ReasonScaleDownLimit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var up, down scalingRules
			resolveRules(tc.up, true, 5*time.Minute, &up)
			resolveRules(tc.down, false, 5*time.Minute, &down)
			h := History{ScaleUpEvents: tc.upEvents, ScaleDownEvents: tc.downEvents}
			got := h.convertWithBehaviorRate(tc.current, tc.desired, tc.minR, tc.maxR, &up, &down, testNow)
			if got.replicas != tc.wantReplicas || got.reason != tc.wantReason {
				t.Fatalf("got %d/%s, want %d/%s", got.replicas, got.reason, tc.wantReplicas, tc.wantReason)
			}
		})
	}
}

// Restates upstream's TestCalculateScaleUpLimitWithScalingRules and TestCalculateScaleDownLimitWithBehaviors
// (selectPolicy Min).
func TestMinChangePolicyLimits(t *testing.T) {
	r := &autoscalingv2.HPAScalingRules{
		StabilizationWindowSeconds: ptr.To(int32(300)),
		SelectPolicy:               ptr.To(autoscalingv2.MinChangePolicySelect),
		Policies: []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PodsScalingPolicy, Value: 2, PeriodSeconds: 60},
			{Type: autoscalingv2.PercentScalingPolicy, Value: 50, PeriodSeconds: 60},
		},
	}
	var up, down scalingRules
	resolveRules(r, true, 0, &up)
	resolveRules(r, false, 0, &down)
	t.Run("scale up from 1 picks the smaller change", func(t *testing.T) {
		if got := scaleUpLimit(1, nil, nil, &up, testNow); got != 2 {
			t.Fatalf("scaleUpLimit = %d, want 2", got)
		}
	})
	t.Run("scale down from 5 picks the smaller change", func(t *testing.T) {
		if got := scaleDownLimit(5, nil, nil, &down, testNow); got != 3 {
			t.Fatalf("scaleDownLimit = %d, want 3", got)
		}
	})
}

// Restates upstream's TestNormalizeDesiredReplicas (legacy stabilization, 5 minute window).
func TestStabilizeLegacy(t *testing.T) {
	rec := func(r int32, ago time.Duration) Recommendation {
		return Recommendation{Replicas: r, Time: testNow.Add(-ago)}
	}
	cases := []struct {
		name    string
		recs    []Recommendation
		desired int32
		want    int32
		wantLen int
	}{
		{"empty log", nil, 5, 5, 1},
		{"stabilize", []Recommendation{rec(4, 2*time.Minute), rec(5, time.Minute)}, 3, 5, 3},
		{"no stabilize", []Recommendation{rec(1, 2*time.Minute), rec(2, time.Minute)}, 3, 3, 3},
		{"no stabilize - old recommendations", []Recommendation{rec(10, 10*time.Minute), rec(9, 9*time.Minute)}, 3, 3, 2},
		{"stabilize - old recommendations", []Recommendation{rec(10, 10*time.Minute), rec(4, time.Minute), rec(5, 2*time.Minute), rec(9, 9*time.Minute)}, 3, 5, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := History{Recommendations: tc.recs}
			if got := h.stabilizeLegacy(tc.desired, 5*time.Minute, testNow); got != tc.want {
				t.Fatalf("stabilized = %d, want %d", got, tc.want)
			}
			if len(h.Recommendations) != tc.wantLen {
				t.Fatalf("log has %d entries, want %d", len(h.Recommendations), tc.wantLen)
			}
		})
	}
}

// Restates upstream's TestNormalizeDesiredReplicasWithBehavior (stabilizeRecommendationWithBehaviors).
func TestStabilizeWithBehaviors(t *testing.T) {
	rec := func(r int32, ago time.Duration) Recommendation {
		return Recommendation{Replicas: r, Time: testNow.Add(-ago)}
	}
	cases := []struct {
		name             string
		recs             []Recommendation
		current, desired int32
		upWindow         time.Duration
		downWindow       time.Duration
		want             int32
		wantLog          []int32
	}{
		{name: "empty recommendations for scaling down", current: 100, desired: 5, want: 5, wantLog: []int32{5}},
		{name: "simple scale down stabilization", recs: []Recommendation{rec(4, 2*time.Minute), rec(5, time.Minute)},
			current: 100, desired: 3, downWindow: 3 * time.Minute, want: 5, wantLog: []int32{4, 5, 3}},
		{name: "simple scale up stabilization", recs: []Recommendation{rec(4, 2*time.Minute), rec(5, time.Minute)},
			current: 1, desired: 7, upWindow: 5 * time.Minute, want: 4, wantLog: []int32{4, 5, 7}},
		{name: "no scale down stabilization", recs: []Recommendation{rec(1, 2*time.Minute), rec(2, time.Minute)},
			current: 100, desired: 3, upWindow: 5 * time.Minute, want: 3, wantLog: []int32{1, 2, 3}},
		{name: "no scale up stabilization", recs: []Recommendation{rec(4, 2*time.Minute), rec(5, time.Minute)},
			current: 1, desired: 3, downWindow: 5 * time.Minute, want: 3, wantLog: []int32{4, 5, 3}},
		{name: "no scale down stabilization, reuse recommendation element", recs: []Recommendation{rec(10, 10*time.Minute), rec(9, 9*time.Minute)},
			current: 100, desired: 3, want: 3, wantLog: []int32{10, 3}},
		{name: "no scale up stabilization, reuse recommendation element", recs: []Recommendation{rec(10, 10*time.Minute), rec(9, 9*time.Minute)},
			current: 1, desired: 100, want: 100, wantLog: []int32{10, 100}},
		{name: "scale down stabilization, reuse one of obsolete recommendation element",
			recs:    []Recommendation{rec(10, 10*time.Minute), rec(4, time.Minute), rec(5, 2*time.Minute), rec(9, 9*time.Minute)},
			current: 100, desired: 3, downWindow: 3 * time.Minute, want: 5, wantLog: []int32{10, 4, 5, 3}},
		{name: "scale up stabilization, reuse one of obsolete recommendation element",
			recs:    []Recommendation{rec(10, 100*time.Minute), rec(6, time.Minute), rec(5, 2*time.Minute), rec(9, 3*time.Minute)},
			current: 1, desired: 100, upWindow: 5 * time.Minute, want: 5, wantLog: []int32{100, 6, 5, 9}},
		{name: "scale up and down stabilization, do not scale up when prenormalized rec goes down",
			recs:    []Recommendation{rec(2, 100*time.Minute), rec(3, 3*time.Minute)},
			current: 2, desired: 1, upWindow: 5 * time.Minute, downWindow: 5 * time.Minute, want: 2},
		{name: "scale up and down stabilization, do not scale down when prenormalized rec goes up",
			recs:    []Recommendation{rec(2, 100*time.Minute), rec(1, 3*time.Minute)},
			current: 2, desired: 3, upWindow: 5 * time.Minute, downWindow: 5 * time.Minute, want: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := History{Recommendations: tc.recs}
			up := scalingRules{window: tc.upWindow}
			down := scalingRules{window: tc.downWindow}
			got := h.stabilizeWithBehaviors(tc.current, tc.desired, &up, &down, testNow)
			if got.replicas != tc.want {
				t.Fatalf("stabilized = %d, want %d", got.replicas, tc.want)
			}
			if tc.wantLog == nil {
				return
			}
			if len(h.Recommendations) != len(tc.wantLog) {
				t.Fatalf("log %v, want %v", h.Recommendations, tc.wantLog)
			}
			for i, r := range h.Recommendations {
				if r.Replicas != tc.wantLog[i] {
					t.Fatalf("log[%d] = %d, want %d", i, r.Replicas, tc.wantLog[i])
				}
			}
		})
	}
}

// Restates upstream's TestStoreScaleEvents, for both directions.
func TestStoreScaleEvents(t *testing.T) {
	ev := func(c int32, ago time.Duration, outdated bool) ScaleEvent {
		return ScaleEvent{Change: c, Time: testNow.Add(-ago), Outdated: outdated}
	}
	cases := []struct {
		name       string
		change     int32
		prev       []ScaleEvent
		rules      *autoscalingv2.HPAScalingRules
		wantInLast int32 // replicas changed in the last 60s before storing
		want       []ScaleEvent
	}{
		{name: "empty entries with two-policy-behavior", change: 5, rules: rules(10, 60, 100, 60, 0), want: []ScaleEvent{ev(5, 0, false)}},
		{name: "one outdated entry to be replaced", change: 5, prev: []ScaleEvent{ev(7, 61*time.Second, false)},
			rules: rules(10, 60, 100, 60, 0), want: []ScaleEvent{ev(5, 0, false)}},
		{name: "one actual entry to be not touched", change: 5, prev: []ScaleEvent{ev(7, 58*time.Second, false)},
			rules: rules(10, 60, 100, 60, 0), wantInLast: 7, want: []ScaleEvent{ev(7, 0, false), ev(5, 0, false)}},
		{name: "two entries, one of them to be replaced", change: 5, prev: []ScaleEvent{ev(7, 61*time.Second, false), ev(6, 59*time.Second, false)},
			rules: rules(10, 60, 0, 0, 0), wantInLast: 6, want: []ScaleEvent{ev(5, 0, false), ev(6, 0, false)}},
		{name: "replace one entry, use policies with different periods", change: 5,
			prev:  []ScaleEvent{ev(8, 29*time.Second, false), ev(6, 59*time.Second, false), ev(7, 61*time.Second, false), ev(9, 61*time.Second, false)},
			rules: rules(10, 60, 100, 30, 0), wantInLast: 14,
			want: []ScaleEvent{ev(8, 0, false), ev(6, 0, false), ev(7, 0, true), ev(5, 0, false)}},
		{name: "two entries, both actual", change: 5, prev: []ScaleEvent{ev(7, 58*time.Second, false), ev(6, 59*time.Second, false)},
			rules: rules(10, 120, 100, 30, 0), wantInLast: 13, want: []ScaleEvent{ev(7, 0, false), ev(6, 0, false), ev(5, 0, false)}},
	}
	for _, tc := range cases {
		for _, dir := range []string{"up", "down"} {
			t.Run(tc.name+"/"+dir, func(t *testing.T) {
				prev := append([]ScaleEvent(nil), tc.prev...)
				if got := replicasChangePerPeriod(60, prev, testNow); got != tc.wantInLast {
					t.Fatalf("change in last 60s = %d, want %d", got, tc.wantInLast)
				}
				var up, down scalingRules
				h := History{}
				var events *[]ScaleEvent
				if dir == "up" {
					resolveRules(tc.rules, true, 0, &up)
					resolveRules(nil, false, 0, &down)
					h.ScaleUpEvents = prev
					h.storeScaleEvent(&up, &down, 10, 10+tc.change, testNow)
					events = &h.ScaleUpEvents
				} else {
					resolveRules(nil, true, 0, &up)
					resolveRules(tc.rules, false, 0, &down)
					h.ScaleDownEvents = prev
					h.storeScaleEvent(&up, &down, 10, 10-tc.change, testNow)
					events = &h.ScaleDownEvents
				}
				if len(*events) != len(tc.want) {
					t.Fatalf("events %+v, want %+v", *events, tc.want)
				}
				for i, e := range *events {
					if e.Change != tc.want[i].Change || e.Outdated != tc.want[i].Outdated {
						t.Fatalf("events[%d] = %+v, want change %d outdated %v", i, e, tc.want[i].Change, tc.want[i].Outdated)
					}
				}
			})
		}
	}
}

func TestTolerancesFor(t *testing.T) {
	b := &autoscalingv2.HorizontalPodAutoscalerBehavior{
		ScaleUp:   &autoscalingv2.HPAScalingRules{Tolerance: milli(10)},
		ScaleDown: &autoscalingv2.HPAScalingRules{Tolerance: milli(900)},
	}
	got := TolerancesFor(b, DefaultTolerance)
	if got.ScaleUp != 0.01 || got.ScaleDown != 0.9 {
		t.Fatalf("TolerancesFor = %+v", got)
	}
	if got := TolerancesFor(nil, 0.2); got.ScaleUp != 0.2 || got.ScaleDown != 0.2 {
		t.Fatalf("TolerancesFor(nil) = %+v", got)
	}
}

func TestValidateBehavior(t *testing.T) {
	cases := []struct {
		name string
		b    *autoscalingv2.HorizontalPodAutoscalerBehavior
		want string
	}{
		{"negative window", &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To(int32(-1))}},
			"behavior.scaleUp.stabilizationWindowSeconds"},
		{"unknown select policy", &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{SelectPolicy: ptr.To(autoscalingv2.ScalingPolicySelect("Most"))}},
			"behavior.scaleDown.selectPolicy"},
		{"zero policy value", &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: rules(0, 0, 0, 0, 0)}, ""},
		{"bad policy period", &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: rules(4, 0, 0, 0, 0)}, "behavior.scaleUp.policies[0].periodSeconds"},
		{"negative tolerance", &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{Tolerance: milli(-1)}}, "behavior.scaleUp.tolerance"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateBehavior(tc.b)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}
