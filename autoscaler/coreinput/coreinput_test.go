package coreinput_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/core"
	"github.com/tidalscale/tidal/autoscaler/coreinput"
)

func ptr[T any](v T) *T { return &v }

func scaledObject(minReplicas int32) *tidalv1alpha1.ScaledObject {
	return &tidalv1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "ns", Generation: 2,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))},
		Spec: tidalv1alpha1.ScaledObjectSpec{
			MinReplicaCount: ptr(minReplicas), MaxReplicaCount: ptr[int32](10), CooldownPeriod: ptr[int32](0),
			Triggers: []tidalv1alpha1.ScaleTriggers{{Type: "redis", Name: "queue", Metadata: map[string]string{"listName": "b"}}},
		},
	}
}

var five = &coreinput.Target{Value: 5, Type: autoscalingv2.AverageValueMetricType}

// TestWaitsForCurrentData reproduces the decisions issue 18 found on stale or missing data: each case used to
// decide (to the maximum, or to zero) and must now hold.
func TestWaitsForCurrentData(t *testing.T) {
	now := time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		current int32
		min     int32
		trigger coreinput.Trigger
	}{
		// A trigger edit (listName changed) at 8 replicas: the new generation has no sample yet. The old mapping
		// counted it as "inactive, value 0" with target 1 and the HPA math took it to the maximum.
		{"trigger edited, new generation not sampled", 8, 1, coreinput.Trigger{}},
		// A restarted metrics adapter streamed a trigger it had not sampled yet: 5 → 0 (ScaleToZero).
		{"adapter restarted, trigger not sampled", 5, 0, coreinput.Trigger{Reported: false, Active: false}},
		// A sample arrived before the metric spec: the target used to default to 1.
		{"sample without metric spec", 8, 1, coreinput.Trigger{Reported: true, Value: 40, Active: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			so := scaledObject(tc.min)
			res, err := coreinput.Map(so, coreinput.Observed{CurrentReplicas: tc.current, Triggers: []coreinput.Trigger{tc.trigger}})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Waiting, []string{"queue"}) {
				d, derr := core.Decide(res.Input, now)
				t.Fatalf("waiting = %v, want [queue]; deciding anyway would give %d (%v, err %v) from %d",
					res.Waiting, d.DesiredReplicas, d.Reason, derr, tc.current)
			}
		})
	}
}

func TestDecidesOnCurrentData(t *testing.T) {
	now := time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)
	so := scaledObject(1)
	// 40 items at 5 per replica: 8 replicas, the right answer for the queue of issue 18's trigger edit.
	res, err := coreinput.Map(so, coreinput.Observed{CurrentReplicas: 8,
		Triggers: []coreinput.Trigger{{Reported: true, Value: 40, Active: true, Target: five}}})
	if err != nil || len(res.Waiting) > 0 {
		t.Fatalf("Map: waiting %v, err %v", res.Waiting, err)
	}
	d, err := core.Decide(res.Input, now)
	if err != nil {
		t.Fatal(err)
	}
	if d.DesiredReplicas != 8 {
		t.Fatalf("desired %d (%s), want 8", d.DesiredReplicas, d.Reason)
	}
}

func TestFailingTriggerNeverScalesToZero(t *testing.T) {
	now := time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)
	so := scaledObject(0)
	// A scaler that could not be built has no metric spec: it fails, it does not wait, and it holds replicas.
	res, err := coreinput.Map(so, coreinput.Observed{CurrentReplicas: 5,
		Triggers: []coreinput.Trigger{{Reported: true, Err: errors.New("redis trigger \"queue\": address: required")}}})
	if err != nil || len(res.Waiting) > 0 {
		t.Fatalf("Map: waiting %v, err %v", res.Waiting, err)
	}
	d, err := core.Decide(res.Input, now)
	if err != nil {
		t.Fatal(err)
	}
	if d.DesiredReplicas != 5 || d.Reason != core.ReasonTriggerError {
		t.Fatalf("desired %d (%s), want 5 (%s)", d.DesiredReplicas, d.Reason, core.ReasonTriggerError)
	}
}

func TestDefaultsFromAPIAccessors(t *testing.T) {
	so := scaledObject(1)
	so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount, so.Spec.CooldownPeriod = nil, nil, nil
	so.Annotations = map[string]string{tidalv1alpha1.KEDAPausedReplicasAnnotation: "3"}
	res, err := coreinput.Map(so, coreinput.Observed{Triggers: []coreinput.Trigger{{Reported: true, Target: five}}})
	if err != nil {
		t.Fatal(err)
	}
	in := res.Input
	if in.MinReplicas != so.Spec.GetMinReplicaCount() || in.MaxReplicas != so.Spec.GetMaxReplicaCount() ||
		in.CooldownPeriod != so.Spec.GetCooldownPeriod() || in.PausedReplicas == nil || *in.PausedReplicas != 3 {
		t.Fatalf("input %+v does not follow the API defaults and the paused-replicas annotation", in)
	}
	so.Annotations[tidalv1alpha1.KEDAPausedReplicasAnnotation] = "-1"
	if _, err := coreinput.Map(so, coreinput.Observed{}); err == nil {
		t.Fatal("a negative paused-replicas annotation was accepted")
	}
}
