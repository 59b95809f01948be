package core

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/utils/ptr"
)

func trig(name string, value, target float64) TriggerInput {
	return TriggerInput{Name: name, Value: value, Target: target}
}

func failing(name string) TriggerInput {
	return TriggerInput{Name: name, Target: 10, Err: errors.New("connection refused")}
}

// baseSO is a ScaledObject created an hour ago with KEDA's defaults (min 0, max 100, cooldown 300s).
func baseSO(current int32, triggers ...TriggerInput) ScaledObjectInput {
	return ScaledObjectInput{
		CurrentReplicas: current, MinReplicas: 0, MaxReplicas: 100,
		CooldownPeriod: DefaultCooldownPeriod, CreatedAt: testNow.Add(-time.Hour), Triggers: triggers,
	}
}

func TestDecide(t *testing.T) {
	longAgo := testNow.Add(-time.Hour)
	recently := testNow.Add(-time.Minute)
	cases := []struct {
		name        string
		in          ScaledObjectInput
		want        int32
		wantReason  Reason
		wantActive  bool
		wantFB      bool
		wantLimited string
	}{
		{name: "scale from zero on activity", in: baseSO(0, trig("q", 5, 10)), want: 1, wantReason: ReasonActivated, wantActive: true},
		{name: "scale from zero to minReplicaCount", in: func() ScaledObjectInput { s := baseSO(0, trig("q", 5, 10)); s.MinReplicas = 3; return s }(),
			want: 3, wantReason: ReasonActivated, wantActive: true},
		{name: "no activity below the activation threshold", in: func() ScaledObjectInput {
			s := baseSO(0, trig("q", 5, 10))
			s.Triggers[0].ActivationTarget = 5
			return s
		}(), want: 0, wantReason: ReasonInactive},
		{name: "scaler's own activity verdict wins", in: func() ScaledObjectInput {
			s := baseSO(0, trig("cron", 0, 1))
			s.Triggers[0].Active = ptr.To(true)
			return s
		}(), want: 1, wantReason: ReasonActivated, wantActive: true},
		{name: "active: HPA math with AverageValue (default scale-up rules: +max(4 pods, 100%))", in: baseSO(2, trig("q", 100, 10)),
			want: 6, wantReason: ReasonHPA, wantActive: true, wantLimited: ReasonScaleUpLimit},
		{name: "active: HPA math with Value target", in: func() ScaledObjectInput {
			s := baseSO(2, trig("q", 30, 10))
			s.Triggers[0].MetricType = autoscalingv2.ValueMetricType
			s.Pods = podSet{count: 2}.build()
			return s
		}(), want: 6, wantReason: ReasonHPA, wantActive: true},
		{name: "active: several triggers take the largest proposal", in: baseSO(4, trig("a", 4, 10), trig("b", 60, 10)),
			want: 6, wantReason: ReasonHPA, wantActive: true},
		{name: "active: maxReplicaCount clamps", in: func() ScaledObjectInput {
			s := baseSO(10, trig("q", 1000, 10))
			s.MaxReplicas = 12
			return s
		}(), want: 12, wantReason: ReasonHPA, wantActive: true, wantLimited: ReasonTooManyReplicas},
		{name: "inactive past cooldown scales to zero", in: func() ScaledObjectInput {
			s := baseSO(3, trig("q", 0, 10))
			s.State.LastActiveTime = &longAgo
			return s
		}(), want: 0, wantReason: ReasonScaleToZero},
		{name: "inactive inside cooldown keeps replicas (HPA stabilization)", in: func() ScaledObjectInput {
			s := baseSO(3, trig("q", 0, 10))
			s.State.LastActiveTime = &recently
			return s
		}(), want: 3, wantReason: ReasonCooldown},
		{name: "inactive inside cooldown follows the HPA down to 1", in: func() ScaledObjectInput {
			s := baseSO(3, trig("q", 0, 10))
			s.State.LastActiveTime = &recently
			s.State.HPA.Initialized = true
			return s
		}(), want: 1, wantReason: ReasonCooldown, wantLimited: ReasonTooFewReplicas},
		{name: "initial cooldown blocks scale to zero", in: func() ScaledObjectInput {
			s := baseSO(3, trig("q", 0, 10))
			s.CreatedAt = testNow.Add(-time.Minute)
			s.InitialCooldownPeriod = 10 * time.Minute
			return s
		}(), want: 3, wantReason: ReasonInitialCooldown},
		{name: "inactive past cooldown scales to idle", in: func() ScaledObjectInput {
			s := baseSO(4, trig("q", 0, 10))
			s.MinReplicas, s.IdleReplicas = 2, ptr.To(int32(0))
			s.State.LastActiveTime = &longAgo
			return s
		}(), want: 0, wantReason: ReasonScaleToIdle},
		{name: "active at idle scales to minReplicaCount", in: func() ScaledObjectInput {
			s := baseSO(0, trig("q", 20, 10))
			s.MinReplicas, s.IdleReplicas = 2, ptr.To(int32(0))
			return s
		}(), want: 2, wantReason: ReasonActivated, wantActive: true},
		{name: "inactive below minReplicaCount scales to it", in: func() ScaledObjectInput {
			s := baseSO(1, trig("q", 0, 10))
			s.MinReplicas = 3
			return s
		}(), want: 3, wantReason: ReasonScaleToMin},
		{name: "paused-replicas pins the count", in: func() ScaledObjectInput {
			s := baseSO(3, trig("q", 1000, 10))
			s.PausedReplicas = ptr.To(int32(7))
			return s
		}(), want: 7, wantReason: ReasonPaused},
		{name: "paused holds the current count", in: func() ScaledObjectInput {
			s := baseSO(3, trig("q", 1000, 10))
			s.Paused = true
			return s
		}(), want: 3, wantReason: ReasonPaused},
		{name: "errors without fallback hold the count", in: func() ScaledObjectInput {
			s := baseSO(3, failing("q"))
			s.State.LastActiveTime = &longAgo
			return s
		}(), want: 3, wantReason: ReasonTriggerError},
		{name: "errors never scale to zero even with an inactive healthy trigger", in: func() ScaledObjectInput {
			s := baseSO(3, failing("q"), trig("r", 0, 10))
			s.State.LastActiveTime = &longAgo
			return s
		}(), want: 3, wantReason: ReasonTriggerError},
		{name: "errors at zero stay at zero", in: baseSO(0, failing("q")), want: 0, wantReason: ReasonTriggerError},
		{name: "fallback below the failure threshold holds", in: func() ScaledObjectInput {
			s := baseSO(3, failing("q"))
			s.Fallback = &Fallback{FailureThreshold: 3, Replicas: 6}
			s.State.Triggers = []TriggerHealth{{Name: "q", ConsecutiveFailures: 2}}
			return s
		}(), want: 3, wantReason: ReasonTriggerError},
		{name: "fallback after the failure threshold", in: func() ScaledObjectInput {
			s := baseSO(3, failing("q"))
			s.Fallback = &Fallback{FailureThreshold: 3, Replicas: 6}
			s.State.Triggers = []TriggerHealth{{Name: "q", ConsecutiveFailures: 3}}
			return s
		}(), want: 6, wantReason: ReasonFallback, wantFB: true},
		{name: "fallback currentReplicasIfHigher keeps a higher count", in: func() ScaledObjectInput {
			s := baseSO(8, failing("q"))
			s.Fallback = &Fallback{FailureThreshold: 0, Replicas: 6, Behavior: FallbackCurrentReplicasIfHigher}
			s.State.HPA.Initialized = true
			return s
		}(), want: 8, wantReason: ReasonFallback, wantFB: true},
		{name: "fallback static goes down to fallback.replicas", in: func() ScaledObjectInput {
			s := baseSO(8, failing("q"))
			s.Fallback = &Fallback{FailureThreshold: 0, Replicas: 6}
			s.State.HPA.Initialized = true
			return s
		}(), want: 6, wantReason: ReasonFallback, wantFB: true},
		{name: "fallback is clamped by maxReplicaCount", in: func() ScaledObjectInput {
			s := baseSO(3, failing("q"))
			s.MaxReplicas = 5
			s.Fallback = &Fallback{FailureThreshold: 0, Replicas: 50}
			return s
		}(), want: 5, wantReason: ReasonFallback, wantFB: true, wantLimited: ReasonTooManyReplicas},
		{name: "fallback with zero replicas never scales to zero", in: func() ScaledObjectInput {
			s := baseSO(3, failing("q"))
			s.Fallback = &Fallback{FailureThreshold: 0, Replicas: 0}
			s.State.HPA.Initialized = true
			return s
		}(), want: 1, wantReason: ReasonFallback, wantFB: true, wantLimited: ReasonTooFewReplicas},
		{name: "fallback does not scale from zero", in: func() ScaledObjectInput {
			s := baseSO(0, failing("q"))
			s.Fallback = &Fallback{FailureThreshold: 0, Replicas: 6}
			return s
		}(), want: 0, wantReason: ReasonTriggerError},
		{name: "an active trigger outweighs a fallback", in: func() ScaledObjectInput {
			s := baseSO(4, failing("q"), trig("r", 100, 10))
			s.Fallback = &Fallback{FailureThreshold: 0, Replicas: 2}
			return s
		}(), want: 8, wantReason: ReasonFallback, wantActive: true, wantFB: true, wantLimited: ReasonScaleUpLimit},
		{name: "scalingModifiers composite drives the HPA", in: func() ScaledObjectInput {
			s := baseSO(2, trig("a", 15, 1), trig("b", 25, 1))
			s.Modifiers = &ScalingModifiers{Formula: "a + b", Target: 10}
			return s
		}(), want: 4, wantReason: ReasonHPA, wantActive: true},
		{name: "scalingModifiers activation target", in: func() ScaledObjectInput {
			s := baseSO(0, trig("a", 1, 1), trig("b", 2, 1))
			s.Modifiers = &ScalingModifiers{Formula: "a + b", Target: 10, ActivationTarget: 5}
			return s
		}(), want: 0, wantReason: ReasonInactive},
		{name: "scalingModifiers activation overrides trigger activity", in: func() ScaledObjectInput {
			s := baseSO(0, trig("a", 100, 1), trig("b", 100, 1))
			s.Modifiers = &ScalingModifiers{Formula: "a - b", Target: 10, ActivationTarget: 1}
			return s
		}(), want: 0, wantReason: ReasonInactive},
		{name: "scalingModifiers with a failing trigger holds", in: func() ScaledObjectInput {
			s := baseSO(3, trig("a", 0, 1), failing("b"))
			s.Modifiers = &ScalingModifiers{Formula: "a + b", Target: 10}
			s.State.LastActiveTime = &longAgo
			return s
		}(), want: 3, wantReason: ReasonTriggerError},
		{name: "scalingModifiers falls back as one metric", in: func() ScaledObjectInput {
			s := baseSO(3, trig("a", 0, 1), failing("b"))
			s.Modifiers = &ScalingModifiers{Formula: "a + b", Target: 10}
			s.Fallback = &Fallback{FailureThreshold: 0, Replicas: 5}
			return s
		}(), want: 5, wantReason: ReasonFallback, wantFB: true},
		{name: "scalingModifiers formula overflow is a trigger error", in: func() ScaledObjectInput {
			s := baseSO(3, trig("a", math.MaxFloat64, 1), trig("b", math.MaxFloat64, 1))
			s.Modifiers = &ScalingModifiers{Formula: "a + b", Target: 10}
			s.State.LastActiveTime = &longAgo
			return s
		}(), want: 3, wantReason: ReasonTriggerError},
		{name: "behavior scale-down policy applies", in: func() ScaledObjectInput {
			s := baseSO(10, trig("q", 10, 10))
			s.MinReplicas = 1
			s.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: rules(2, 60, 0, 0, 0)}
			s.State.HPA.Initialized = true
			return s
		}(), want: 8, wantReason: ReasonHPA, wantActive: true, wantLimited: ReasonScaleDownLimit},
		{name: "resource metrics take part in the HPA math", in: func() ScaledObjectInput {
			s := baseSO(2, trig("q", 1, 10))
			s.Pods = podSet{count: 2}.build()
			samples, _ := samplesFor(2, []int64{900, 900}, testNow, time.Minute)
			s.ResourceMetrics = []Metric{{Spec: cpuUtilizationSpec(30), Samples: samples, Requests: []int64{1000, 1000}}}
			return s
		}(), want: 6, wantReason: ReasonHPA, wantActive: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Decide(tc.in, testNow)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if d.DesiredReplicas != tc.want || d.Reason != tc.wantReason || d.Active != tc.wantActive || d.FallbackActive != tc.wantFB {
				t.Fatalf("got desired=%d reason=%s active=%v fallback=%v, want %d %s %v %v (conditions %+v, triggers %+v)",
					d.DesiredReplicas, d.Reason, d.Active, d.FallbackActive, tc.want, tc.wantReason, tc.wantActive, tc.wantFB, d.Conditions, d.Triggers)
			}
			if tc.wantLimited != "" {
				found := false
				for _, c := range d.Conditions {
					if c.Type == autoscalingv2.ScalingLimited {
						found = c.Reason == tc.wantLimited
					}
				}
				if !found {
					t.Fatalf("ScalingLimited reason != %s: %+v", tc.wantLimited, d.Conditions)
				}
			}
			if tc.wantActive && (d.NewState.LastActiveTime == nil || !d.NewState.LastActiveTime.Equal(testNow)) {
				t.Fatalf("active decision did not record LastActiveTime: %+v", d.NewState.LastActiveTime)
			}
		})
	}
}

func TestDecideTriggerHealth(t *testing.T) {
	in := baseSO(3, failing("q"), trig("r", 1, 10))
	in.State.Triggers = []TriggerHealth{{Name: "q", ConsecutiveFailures: 4}, {Name: "gone", ConsecutiveFailures: 9}}
	d, err := Decide(in, testNow)
	if err != nil {
		t.Fatal(err)
	}
	want := []TriggerHealth{{Name: "q", ConsecutiveFailures: 5}, {Name: "r", ConsecutiveFailures: 0}}
	if !reflect.DeepEqual(d.NewState.Triggers, want) {
		t.Fatalf("health = %+v, want %+v", d.NewState.Triggers, want)
	}
	if in.State.Triggers[0].ConsecutiveFailures != 4 {
		t.Fatal("Decide modified the caller's state")
	}
	if d.Triggers[0].Err == nil || d.Triggers[1].Proposal == nil {
		t.Fatalf("trigger results %+v", d.Triggers)
	}
}

func TestDecideStateRoundTrip(t *testing.T) {
	in := baseSO(2, trig("q", 100, 10))
	in.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: rules(1, 60, 0, 0, 0)}
	first, err := Decide(in, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if first.DesiredReplicas != 3 {
		t.Fatalf("first desired = %d, want 3 (1 pod per 60s)", first.DesiredReplicas)
	}
	raw, err := json.Marshal(first.NewState)
	if err != nil {
		t.Fatal(err)
	}
	var restored State
	if err := json.Unmarshal(raw, &restored); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(restored, first.NewState) {
		t.Fatalf("state did not survive JSON:\n%s\n%+v\n%+v", raw, restored, first.NewState)
	}
	in.CurrentReplicas, in.State = 3, restored
	second, err := Decide(in, testNow.Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if second.DesiredReplicas != 3 {
		t.Fatalf("second desired = %d, want 3 (rate limited by the persisted scale event)", second.DesiredReplicas)
	}
	third, err := Decide(in, testNow.Add(61*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if third.DesiredReplicas != 4 {
		t.Fatalf("third desired = %d, want 4 once the period has passed", third.DesiredReplicas)
	}
}

func TestDecideValidation(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*ScaledObjectInput)
		want   string
	}{
		{"negative current", func(s *ScaledObjectInput) { s.CurrentReplicas = -1 }, "currentReplicas"},
		{"min above max", func(s *ScaledObjectInput) { s.MinReplicas = 200 }, "minReplicaCount: 200 is greater than maxReplicaCount 100"},
		{"zero max", func(s *ScaledObjectInput) { s.MaxReplicas = 0 }, "maxReplicaCount"},
		{"idle not below min", func(s *ScaledObjectInput) { s.MinReplicas, s.IdleReplicas = 1, ptr.To(int32(1)) }, "idleReplicaCount"},
		{"negative cooldown", func(s *ScaledObjectInput) { s.CooldownPeriod = -time.Second }, "cooldownPeriod"},
		{"negative paused replicas", func(s *ScaledObjectInput) { s.PausedReplicas = ptr.To(int32(-2)) }, "paused-replicas"},
		{"no triggers", func(s *ScaledObjectInput) { s.Triggers = nil }, "at least one trigger"},
		{"negative value", func(s *ScaledObjectInput) { s.Triggers[0].Value = -1 }, `triggers[0] ("q").value`},
		{"NaN value", func(s *ScaledObjectInput) { s.Triggers[0].Value = math.NaN() }, `triggers[0] ("q").value`},
		{"infinite value", func(s *ScaledObjectInput) { s.Triggers[0].Value = math.Inf(1) }, `triggers[0] ("q").value`},
		{"zero target", func(s *ScaledObjectInput) { s.Triggers[0].Target = 0 }, `triggers[0] ("q").target`},
		{"target below milli resolution", func(s *ScaledObjectInput) { s.Triggers[0].Target = 1e-9 }, `triggers[0] ("q").target`},
		{"NaN activation target", func(s *ScaledObjectInput) { s.Triggers[0].ActivationTarget = math.NaN() }, "activationTarget"},
		{"unknown metric type", func(s *ScaledObjectInput) { s.Triggers[0].MetricType = "Utilization" }, "metricType"},
		{"empty trigger name", func(s *ScaledObjectInput) { s.Triggers[0].Name = "" }, "triggers[0].name"},
		{"duplicate trigger name", func(s *ScaledObjectInput) { s.Triggers = append(s.Triggers, trig("q", 1, 1)) }, "duplicate trigger name"},
		{"bad fallback", func(s *ScaledObjectInput) { s.Fallback = &Fallback{Replicas: -1} }, "fallback.replicas"},
		{"unknown formula trigger", func(s *ScaledObjectInput) { s.Modifiers = &ScalingModifiers{Formula: "q + z", Target: 1} }, "unknown name z"},
		{"non-numeric formula", func(s *ScaledObjectInput) { s.Modifiers = &ScalingModifiers{Formula: "q > 1", Target: 1} }, "scalingModifiers.formula"},
		{"modifiers target", func(s *ScaledObjectInput) { s.Modifiers = &ScalingModifiers{Formula: "q", Target: 0} }, "scalingModifiers.target"},
		{"negative failure count", func(s *ScaledObjectInput) { s.State.Triggers = []TriggerHealth{{Name: "q", ConsecutiveFailures: -1}} }, "consecutiveFailures"},
		{"bad behavior", func(s *ScaledObjectInput) {
			s.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: rules(-1, 10, 0, 0, 0)}
		}, "behavior.scaleDown.policies[0].value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := baseSO(2, trig("q", 1, 10))
			tc.mutate(&in)
			_, err := Decide(in, testNow)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestDecidePrecompiledFormula(t *testing.T) {
	f, err := CompileFormula("a * 2", []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	in := baseSO(1, trig("a", 10, 1))
	in.Modifiers = &ScalingModifiers{Formula: "a * 2", Target: 5, Compiled: f}
	d, err := Decide(in, testNow)
	if err != nil {
		t.Fatal(err)
	}
	// 20 / (5 * 1 pod) = 4 replicas.
	if d.DesiredReplicas != 4 || d.Triggers[len(d.Triggers)-1].Name != CompositeTriggerName {
		t.Fatalf("decision %+v", d)
	}
}

// TestDecideDefaultScaleUpPaced: with no behavior set, Decide (called on every sample) paces scale-up like the
// HPA's default rules over 15s periods, instead of doubling on every call (10 → 20 → 40 → 50 within a second).
func TestDecideDefaultScaleUpPaced(t *testing.T) {
	in := baseSO(10, trig("q", 10000, 10))
	in.MaxReplicas = 200
	now := testNow
	steps := []struct {
		after time.Duration
		want  int32
	}{
		{0, 20},                // 100% of 10
		{time.Second, 20},      // same 15s period: held
		{10 * time.Second, 20}, // still inside it
		{16 * time.Second, 40}, // a new period: 100% of 20
	}
	for _, s := range steps {
		d, err := Decide(in, now.Add(s.after))
		if err != nil {
			t.Fatal(err)
		}
		if d.DesiredReplicas != s.want {
			t.Fatalf("after %s: desired %d, want %d", s.after, d.DesiredReplicas, s.want)
		}
		in.CurrentReplicas, in.State = d.DesiredReplicas, d.NewState
	}
}

// paused-scale-in and paused-scale-out hold the count in their direction only, on the activation steps and on
// the HPA path, and leave the other direction alone.
func TestDecidePausedDirections(t *testing.T) {
	longAgo := testNow.Add(-time.Hour)
	inactive := func(current int32) ScaledObjectInput {
		s := baseSO(current, trig("q", 0, 10))
		s.State.LastActiveTime = &longAgo
		return s
	}
	cases := []struct {
		name              string
		in                ScaledObjectInput
		scaleIn, scaleOut bool
		want              int32
		wantReason        Reason
	}{
		{name: "scale-in paused: no scale to zero", in: inactive(3), scaleIn: true, want: 3, wantReason: ReasonPausedScaleIn},
		{name: "scale-in paused: no HPA scale-down", in: func() ScaledObjectInput {
			s := baseSO(8, trig("q", 10, 10))
			s.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](0)}}
			return s
		}(), scaleIn: true, want: 8, wantReason: ReasonHPA},
		{name: "scale-in paused: scale-out still works", in: baseSO(2, trig("q", 40, 10)), scaleIn: true, want: 4, wantReason: ReasonHPA},
		{name: "scale-in paused: activation still works", in: baseSO(0, trig("q", 5, 10)), scaleIn: true, want: 1, wantReason: ReasonActivated},
		{name: "scale-out paused: no activation", in: baseSO(0, trig("q", 5, 10)), scaleOut: true, want: 0, wantReason: ReasonPausedScaleOut},
		{name: "scale-out paused: no HPA scale-up", in: baseSO(2, trig("q", 100, 10)), scaleOut: true, want: 2, wantReason: ReasonHPA},
		{name: "scale-out paused: scale to zero still works", in: inactive(3), scaleOut: true, want: 0, wantReason: ReasonScaleToZero},
		{name: "both paused: nothing moves up", in: baseSO(2, trig("q", 100, 10)), scaleIn: true, scaleOut: true, want: 2, wantReason: ReasonHPA},
		{name: "both paused: nothing moves down", in: inactive(2), scaleIn: true, scaleOut: true, want: 2, wantReason: ReasonPausedScaleIn},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			free, err := Decide(tc.in, testNow)
			if err != nil {
				t.Fatal(err)
			}
			moves := free.DesiredReplicas != tc.in.CurrentReplicas
			tc.in.PausedScaleIn, tc.in.PausedScaleOut = tc.scaleIn, tc.scaleOut
			behaviorBefore := tc.in.Behavior
			d, err := Decide(tc.in, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if d.DesiredReplicas != tc.want || d.Reason != tc.wantReason {
				t.Errorf("got %d (%s), want %d (%s)", d.DesiredReplicas, d.Reason, tc.want, tc.wantReason)
			}
			// Each case moves the count when nothing is paused; a held case shows the pause did it.
			if !moves {
				t.Fatalf("without pause the count stays at %d: the case tests nothing", tc.in.CurrentReplicas)
			}
			if tc.in.Behavior != behaviorBefore {
				t.Error("Decide changed the caller's behavior")
			}
		})
	}
}

func TestDisablePausedDirections(t *testing.T) {
	window := int32(60)
	b := &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &window}}
	if got := DisablePausedDirections(b, false, false); got != b {
		t.Error("nothing paused: want the behavior unchanged")
	}
	got := DisablePausedDirections(b, true, false)
	if got == b || b.ScaleDown.SelectPolicy != nil {
		t.Fatal("changed the caller's behavior")
	}
	if p := got.ScaleDown.SelectPolicy; p == nil || *p != autoscalingv2.DisabledPolicySelect || *got.ScaleDown.StabilizationWindowSeconds != 60 {
		t.Errorf("scale-down rules = %+v, want Disabled keeping the window", got.ScaleDown)
	}
	if got.ScaleUp != nil {
		t.Errorf("scale-up rules = %+v, want untouched", got.ScaleUp)
	}
	got = DisablePausedDirections(nil, false, true)
	if p := got.ScaleUp.SelectPolicy; p == nil || *p != autoscalingv2.DisabledPolicySelect || got.ScaleDown != nil {
		t.Errorf("behavior = %+v, want scale-up Disabled only", got)
	}
}
