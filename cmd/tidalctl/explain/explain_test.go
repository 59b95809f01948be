package explain

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/core"
	"github.com/tidalscale/tidal/scalers/registry"
)

var now = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// sampled is a trigger status sampled 5s before now.
func sampled(name, typ, value string, active bool, errMsg string) tidalv1alpha1.TriggerStatus {
	return tidalv1alpha1.TriggerStatus{Name: name, Type: typ, Value: value, Active: active, Error: errMsg,
		LastSampleTime: &metav1.Time{Time: now.Add(-5 * time.Second)}}
}

// redisObject is a ScaledObject with one redis trigger (listLength 5) whose status the operator wrote.
func redisObject(current int32, samples ...tidalv1alpha1.TriggerStatus) *tidalv1alpha1.ScaledObject {
	so := &tidalv1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "shop", CreationTimestamp: metav1.Time{Time: now.Add(-time.Hour)}},
		Spec: tidalv1alpha1.ScaledObjectSpec{
			ScaleTargetRef:  tidalv1alpha1.ScaleTarget{Name: "worker"},
			MinReplicaCount: ptr.To[int32](0), MaxReplicaCount: ptr.To[int32](10), CooldownPeriod: ptr.To[int32](60),
			Triggers: []tidalv1alpha1.ScaleTriggers{{Type: "redis", Name: "queue",
				Metadata: map[string]string{"address": "127.0.0.1:6379", "listName": "jobs", "listLength": "5"}}},
		},
		Status: tidalv1alpha1.ScaledObjectStatus{CurrentReplicas: &current, DesiredReplicas: &current, Triggers: samples},
	}
	return so
}

func TestExplain(t *testing.T) {
	reg := registry.New()
	cases := []struct {
		name         string
		so           *tidalv1alpha1.ScaledObject
		wantDesired  int32
		wantReason   core.Reason
		wantProposal *int32
		wantTarget   string
		wantErr      string // DecisionError
		wantNote     string
	}{
		{
			name:        "queue of 12 at one replica proposes three",
			so:          redisObject(1, sampled("queue", "redis", "12", true, "")),
			wantDesired: 3, wantReason: core.ReasonHPA, wantProposal: ptr.To[int32](3), wantTarget: "5",
		},
		{
			name:        "activation from zero",
			so:          redisObject(0, sampled("queue", "redis", "3", true, "")),
			wantDesired: 1, wantReason: core.ReasonActivated, wantTarget: "5",
		},
		{
			name: "inactive past the cooldown scales to zero",
			so: func() *tidalv1alpha1.ScaledObject {
				so := redisObject(2, sampled("queue", "redis", "0", false, ""))
				so.Status.LastActiveTime = &metav1.Time{Time: now.Add(-2 * time.Minute)}
				return so
			}(),
			wantDesired: 0, wantReason: core.ReasonScaleToZero, wantTarget: "5",
		},
		{
			name:        "failing trigger never scales to zero",
			so:          redisObject(2, sampled("queue", "redis", "", false, "redis trigger #0: dial tcp: connection refused")),
			wantDesired: 2, wantReason: core.ReasonTriggerError, wantTarget: "5",
		},
		{
			name: "fallback after the failure threshold",
			so: func() *tidalv1alpha1.ScaledObject {
				so := redisObject(4, sampled("queue", "redis", "", false, "connection refused"))
				so.Spec.Fallback = &tidalv1alpha1.Fallback{FailureThreshold: 3, Replicas: 6}
				so.Status.Health = map[string]tidalv1alpha1.HealthStatus{
					"s0-redis-jobs": {NumberOfFailures: ptr.To[int32](5), Status: tidalv1alpha1.HealthStatusFailing}}
				return so
			}(),
			wantDesired: 6, wantReason: core.ReasonFallback, wantProposal: ptr.To[int32](6), wantTarget: "5",
		},
		{
			name: "paused replicas pin the count",
			so: func() *tidalv1alpha1.ScaledObject {
				so := redisObject(4, sampled("queue", "redis", "40", true, ""))
				so.Annotations = map[string]string{tidalv1alpha1.KEDAPausedReplicasAnnotation: "2"}
				return so
			}(),
			wantDesired: 2, wantReason: core.ReasonPaused, wantTarget: "5",
		},
		{
			name: "scale-down notes the empty decision state",
			so: func() *tidalv1alpha1.ScaledObject {
				so := redisObject(8, sampled("queue", "redis", "10", true, ""))
				so.Spec.Advanced = &tidalv1alpha1.AdvancedConfig{HorizontalPodAutoscalerConfig: &tidalv1alpha1.HorizontalPodAutoscalerConfig{
					Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](0)}}}}
				return so
			}(),
			wantDesired: 2, wantReason: core.ReasonHPA, wantProposal: ptr.To[int32](2), wantTarget: "5",
			wantNote: "status.decisionState is empty",
		},
		{
			name: "a persisted stabilization window holds the scale-down, as the operator does",
			so: func() *tidalv1alpha1.ScaledObject {
				so := redisObject(8, sampled("queue", "redis", "10", true, ""))
				so.Status.DecisionState = &tidalv1alpha1.DecisionState{Initialized: true, Recommendations: []tidalv1alpha1.DecisionPoint{
					{Count: 8, UnixMilli: now.Add(-100 * time.Second).UnixMilli()}, {Count: 2, UnixMilli: now.Add(-10 * time.Second).UnixMilli()}}}
				return so
			}(),
			wantDesired: 8, wantReason: core.ReasonHPA, wantProposal: ptr.To[int32](2), wantTarget: "5",
		},
		{
			name: "past the persisted window the scale-down goes ahead",
			so: func() *tidalv1alpha1.ScaledObject {
				so := redisObject(8, sampled("queue", "redis", "10", true, ""))
				so.Status.DecisionState = &tidalv1alpha1.DecisionState{Initialized: true, Recommendations: []tidalv1alpha1.DecisionPoint{
					{Count: 8, UnixMilli: now.Add(-301 * time.Second).UnixMilli()}, {Count: 2, UnixMilli: now.Add(-10 * time.Second).UnixMilli()}}}
				return so
			}(),
			wantDesired: 2, wantReason: core.ReasonHPA, wantProposal: ptr.To[int32](2), wantTarget: "5",
		},
		{
			name: "a garbage decision state is ignored as the operator ignores it",
			so: func() *tidalv1alpha1.ScaledObject {
				so := redisObject(8, sampled("queue", "redis", "10", true, ""))
				so.Status.DecisionState = &tidalv1alpha1.DecisionState{Initialized: true, Recommendations: []tidalv1alpha1.DecisionPoint{
					{Count: 1, UnixMilli: now.Add(24 * time.Hour).UnixMilli()}}}
				return so
			}(),
			// Without a history the HPA math seeds it with the current count: a whole window's hold.
			wantDesired: 8, wantReason: core.ReasonHPA, wantProposal: ptr.To[int32](2), wantTarget: "5",
			wantNote: "ignored as the operator would: status.decisionState: recommendations[0].unixMilli",
		},
		{
			name: "target from an env var that explain cannot see",
			so: func() *tidalv1alpha1.ScaledObject {
				so := redisObject(1, sampled("queue", "redis", "12", true, ""))
				so.Spec.Triggers[0].Metadata = map[string]string{"addressFromEnv": "REDIS_ADDRESS", "listName": "jobs"}
				return so
			}(),
			wantDesired: 1, wantReason: core.ReasonTriggerError, wantNote: "could not be read from metadata alone",
		},
		{
			name:    "no sample yet",
			so:      redisObject(0, tidalv1alpha1.TriggerStatus{Name: "queue", Type: "redis"}),
			wantErr: `no current sample yet from queue`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Explain(context.Background(), tc.so, Options{Registry: reg, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" {
				if r.Decision != nil || !strings.Contains(r.DecisionError, tc.wantErr) {
					t.Fatalf("decision %+v, error %q; want error %q", r.Decision, r.DecisionError, tc.wantErr)
				}
				return
			}
			if r.Decision == nil {
				t.Fatalf("no decision: %s", r.DecisionError)
			}
			if r.Decision.DesiredReplicas != tc.wantDesired || r.Decision.Reason != string(tc.wantReason) {
				t.Errorf("decision %d (%s), want %d (%s)", r.Decision.DesiredReplicas, r.Decision.Reason, tc.wantDesired, tc.wantReason)
			}
			tr := r.Triggers[0]
			if tr.Target != tc.wantTarget {
				t.Errorf("target %q (%s), want %q", tr.Target, tr.TargetError, tc.wantTarget)
			}
			if (tr.Proposal == nil) != (tc.wantProposal == nil) || tr.Proposal != nil && *tr.Proposal != *tc.wantProposal {
				t.Errorf("proposal %v, want %v", tr.Proposal, tc.wantProposal)
			}
			if tc.wantNote != "" && !strings.Contains(strings.Join(r.Notes, "\n"), tc.wantNote) {
				t.Errorf("notes %q lack %q", r.Notes, tc.wantNote)
			}
			var out bytes.Buffer
			if err := r.WriteText(&out, now); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "Desired replicas: ") || !strings.Contains(out.String(), string(tc.wantReason)) {
				t.Errorf("text output lacks the decision:\n%s", out.String())
			}
		})
	}
}

func TestExplainWithEnvResolvesTarget(t *testing.T) {
	so := redisObject(1, sampled("queue", "redis", "12", true, ""))
	so.Spec.Triggers[0].Metadata = map[string]string{"addressFromEnv": "REDIS_ADDRESS", "listName": "jobs", "listLength": "4"}
	r, err := Explain(context.Background(), so, Options{Registry: registry.New(), Now: now, Env: map[string]string{"REDIS_ADDRESS": "127.0.0.1:6379"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Triggers[0].Target != "4" || r.Decision == nil || r.Decision.DesiredReplicas != 3 {
		t.Errorf("target %q (%s), decision %+v; want target 4 and 3 replicas", r.Triggers[0].Target, r.Triggers[0].TargetError, r.Decision)
	}
}

func TestDescribeBehavior(t *testing.T) {
	sel := autoscalingv2.MinChangePolicySelect
	so := redisObject(1)
	so.Spec.Advanced = &tidalv1alpha1.AdvancedConfig{HorizontalPodAutoscalerConfig: &tidalv1alpha1.HorizontalPodAutoscalerConfig{
		Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr.To[int32](120), SelectPolicy: &sel,
			Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 2, PeriodSeconds: 60}},
		}}}}
	b := describeBehavior(so)
	if b.Source != "spec" || b.ScaleDown != "stabilization 2m0s, select Min, policies: 2 Pods per 1m0s" ||
		!strings.HasSuffix(b.ScaleUp, "(defaults)") {
		t.Errorf("behavior = %+v", b)
	}
	if d := describeBehavior(redisObject(1)); d.Source != "default" {
		t.Errorf("no behavior: source %q", d.Source)
	}
}

func TestExplainShowsPlacementDecisionAndInputs(t *testing.T) {
	so := redisObject(1, sampled("queue", "redis", "12", true, ""))
	so.Spec.Placement = &tidalv1alpha1.Placement{Policy: tidalv1alpha1.PlacementAuto, MaxPendingSeconds: ptr.To[int32](5)}
	r, err := Explain(context.Background(), so, Options{Registry: registry.New(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := r.WriteText(&out, now); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Placement (auto, maxPendingSeconds 5):") || !strings.Contains(out.String(), "no decision yet") {
		t.Errorf("before a decision:\n%s", out.String())
	}

	cr := &tidalv1alpha1.CapacityRequest{ObjectMeta: metav1.ObjectMeta{Name: "scaledobject-orders"}}
	cr.Status.Placement = &tidalv1alpha1.PlacementDecision{Decision: tidalv1alpha1.PlacementDecisionBurst,
		Reason: "target 5s, node provision 30s, virtual pod start 1s: nodes would miss the target", DecidedAt: metav1.NewMicroTime(now.Add(-10 * time.Second)),
		NodeGroup: "pool", NodeProvisionTime: &metav1.Duration{Duration: 30 * time.Second}, NodePricePerCPUHour: "0.1",
		VirtualNode: "vk", VirtualPodStartTime: &metav1.Duration{Duration: time.Second}, VirtualPricePerCPUHour: "0.05", BurstPods: 4}
	r, err = Explain(context.Background(), so, Options{Registry: registry.New(), Now: now, CapacityRequest: cr})
	if err != nil {
		t.Fatal(err)
	}
	if r.Placement == nil || r.Placement.Decision == nil || r.Placement.CapacityRequest != "scaledobject-orders" {
		t.Fatalf("placement %+v", r.Placement)
	}
	out.Reset()
	if err := r.WriteText(&out, now); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"Decision:           Burst (10s ago, on CapacityRequest scaledobject-orders)", "nodes would miss the target",
		"Node group:         pool, provision time 30s, price per CPU-hour 0.1", "Virtual node:       vk, pod start 1s, price per CPU-hour 0.05", "Pods burst:         4"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("explain does not show %q:\n%s", w, out.String())
		}
	}
}

// Explain says where the placement came from: the target's annotations when spec.placement is unset,
// spec.placement (winning) when both are set, and names invalid annotations it ignores.
func TestExplainShowsPlacementSource(t *testing.T) {
	cases := []struct {
		name        string
		spec        *tidalv1alpha1.Placement
		annotations map[string]string
		source      string
		want        []string
	}{
		{name: "annotation", annotations: map[string]string{tidalv1alpha1.AnnotationPlacement: "burstToVirtual"}, source: "annotation",
			want: []string{"Placement (burstToVirtual):", "From:               tidal.dev/placement annotations on "}},
		{name: "spec wins", spec: &tidalv1alpha1.Placement{Policy: tidalv1alpha1.PlacementWaitForNodes},
			annotations: map[string]string{tidalv1alpha1.AnnotationPlacement: "burstToVirtual"}, source: "spec",
			want: []string{"Placement (waitForNodes):", "From:               spec.placement (wins over the target's tidal.dev/placement annotations)"}},
		{name: "invalid annotation", annotations: map[string]string{tidalv1alpha1.AnnotationPlacement: "auto", tidalv1alpha1.AnnotationMaxPendingSeconds: "-1"},
			want: []string{"Placement (none):", "Ignored:            invalid annotations on ", "metadata.annotations[tidal.dev/max-pending-seconds]", "-1",
				"no placement applies: pods wait for nodes"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			so := redisObject(1, sampled("queue", "redis", "12", true, ""))
			so.Spec.Placement = tc.spec
			r, err := Explain(context.Background(), so, Options{Registry: registry.New(), Now: now, TargetAnnotations: tc.annotations})
			if err != nil {
				t.Fatal(err)
			}
			if r.Placement == nil || r.Placement.Source != tc.source {
				t.Fatalf("placement %+v, want source %q", r.Placement, tc.source)
			}
			var out bytes.Buffer
			if err := r.WriteText(&out, now); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("explain does not show %q:\n%s", w, out.String())
				}
			}
		})
	}
	// Neither set: no placement section.
	r, err := Explain(context.Background(), redisObject(1), Options{Registry: registry.New(), Now: now, TargetAnnotations: map[string]string{"app": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Placement != nil {
		t.Errorf("placement %+v without spec.placement or annotations", r.Placement)
	}
}
