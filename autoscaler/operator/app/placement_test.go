package app_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/autoscaler/operator/capacity"
	"github.com/tidalscale/tidal/internal/testenv"
)

// TestPlacementFromWorkloadAnnotations: a scale-up's CapacityRequest carries the target Deployment's
// tidal.dev/placement annotations when the ScaledObject has no spec.placement; spec.placement wins when both are
// set; an invalid annotation value is ignored (the request has no placement, the workload still scales) and
// named by a False Placement condition and a Warning event.
func TestPlacementFromWorkloadAnnotations(t *testing.T) {
	e := setup(t)
	e.startOperator(app.Options{})
	annotate := func(a map[string]string) func(*appsv1.Deployment) {
		return func(d *appsv1.Deployment) { d.Annotations = a }
	}
	cases := []struct {
		name        string
		annotations map[string]string
		spec        *tidalv1alpha1.Placement
		want        *tidalv1alpha1.Placement // the CapacityRequest's spec.placement
		status      metav1.ConditionStatus
		reason      string
		message     []string // substrings of the Placement condition's message
	}{
		{name: "annotated", annotations: map[string]string{tidalv1alpha1.AnnotationPlacement: "auto", tidalv1alpha1.AnnotationMaxPendingSeconds: "30"},
			want:   &tidalv1alpha1.Placement{Policy: tidalv1alpha1.PlacementAuto, MaxPendingSeconds: ptr.To[int32](30)},
			status: metav1.ConditionTrue, reason: capacity.ReasonPlacementFromAnnotation,
			message: []string{"auto, maxPendingSeconds 30", "annotations on Deployment annotated"}},
		{name: "specwins", annotations: map[string]string{tidalv1alpha1.AnnotationPlacement: "burstToVirtual"},
			spec:   &tidalv1alpha1.Placement{Policy: tidalv1alpha1.PlacementWaitForNodes},
			want:   &tidalv1alpha1.Placement{Policy: tidalv1alpha1.PlacementWaitForNodes},
			status: metav1.ConditionTrue, reason: capacity.ReasonPlacementFromSpec,
			message: []string{"waitForNodes from spec.placement", "wins over the tidal.dev/placement annotations on Deployment specwins"}},
		{name: "bad", annotations: map[string]string{tidalv1alpha1.AnnotationPlacement: "teleport"},
			status: metav1.ConditionFalse, reason: capacity.ReasonInvalidPlacementAnnotation,
			message: []string{"Deployment bad", "metadata.annotations[tidal.dev/placement]", `"teleport"`, "placement is none"}},
	}
	for _, tc := range cases {
		rc, list := testenv.RedisList(t, testenv.RedisAddr)
		e.Deployment(tc.name, 0, annotate(tc.annotations))
		so := testenv.RedisScaledObject(tc.name, tc.name, testenv.RedisAddr, list)
		so.Spec.Placement = tc.spec
		e.ScaledObject(so)
		testenv.Push(t, rc, list, 12) // 5 per replica: 3
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.WaitReplicas(tc.name, 3, 90*time.Second) // an invalid annotation never holds the scale-up back
			cr, err := e.Tidal.TidalV1alpha1().CapacityRequests(e.NS).Get(e.Ctx, capacity.Name("ScaledObject", tc.name), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := cr.Spec.Placement; capacity.Describe(got) != capacity.Describe(tc.want) {
				t.Errorf("CapacityRequest spec.placement %s, want %s", capacity.Describe(got), capacity.Describe(tc.want))
			}
			e.Eventually("Placement condition", 30*time.Second, func() (bool, string) {
				so, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Get(e.Ctx, tc.name, metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				return conditionSays(so.Status.Conditions, tc.status, tc.reason, tc.message)
			})
		})
	}
	t.Run("event names the bad annotation", func(t *testing.T) {
		e.Eventually("InvalidPlacementAnnotation event", 30*time.Second, func() (bool, string) {
			return warningSays(e, "bad", "tidal.dev/placement", `"teleport"`)
		})
	})
}

// TestPlacementFromScaledJobAnnotations: a ScaledJob carries its placement annotations itself. Valid ones reach
// its CapacityRequest; an invalid one (written past the webhook, which refuses it) is reported by the Placement
// condition and a Warning event, and the Jobs are still announced and created without a placement.
func TestPlacementFromScaledJobAnnotations(t *testing.T) {
	e := setup(t)
	e.startOperator(app.Options{})
	cases := []struct {
		name        string
		annotations map[string]string
		want        *tidalv1alpha1.Placement
		status      metav1.ConditionStatus
		reason      string
		message     []string
	}{
		{name: "burst", annotations: map[string]string{tidalv1alpha1.AnnotationPlacement: "burstToVirtual"},
			want: &tidalv1alpha1.Placement{Policy: tidalv1alpha1.PlacementBurstToVirtual}, status: metav1.ConditionTrue,
			reason: capacity.ReasonPlacementFromAnnotation, message: []string{"burstToVirtual from the tidal.dev/placement annotations on ScaledJob burst"}},
		{name: "badtarget", annotations: map[string]string{tidalv1alpha1.AnnotationPlacement: "auto", tidalv1alpha1.AnnotationMaxPendingSeconds: "soon"},
			status: metav1.ConditionFalse, reason: capacity.ReasonInvalidPlacementAnnotation,
			message: []string{"ScaledJob badtarget", "metadata.annotations[tidal.dev/max-pending-seconds]", `"soon"`}},
	}
	for _, tc := range cases {
		rc, list := testenv.RedisList(t, testenv.RedisAddr)
		scaledJobFor(e, tc.name, list, func(sj *tidalv1alpha1.ScaledJob) { sj.Annotations = tc.annotations })
		testenv.Push(t, rc, list, 2)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.Eventually("CapacityRequest", 60*time.Second, func() (bool, string) {
				cr, err := e.Tidal.TidalV1alpha1().CapacityRequests(e.NS).Get(e.Ctx, capacity.Name("ScaledJob", tc.name), metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				got := capacity.Describe(cr.Spec.Placement)
				return got == capacity.Describe(tc.want), "spec.placement " + got
			})
			e.Eventually("Placement condition", 30*time.Second, func() (bool, string) {
				sj, err := e.Tidal.TidalV1alpha1().ScaledJobs(e.NS).Get(e.Ctx, tc.name, metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				return conditionSays(sj.Status.Conditions, tc.status, tc.reason, tc.message)
			})
		})
	}
	t.Run("event names the bad annotation", func(t *testing.T) {
		e.Eventually("InvalidPlacementAnnotation event", 30*time.Second, func() (bool, string) {
			return warningSays(e, "badtarget", "tidal.dev/max-pending-seconds", `"soon"`)
		})
	})
}

// conditionSays checks the Placement condition's status, reason and message.
func conditionSays(conds []metav1.Condition, status metav1.ConditionStatus, reason string, message []string) (bool, string) {
	c := meta.FindStatusCondition(conds, tidalv1alpha1.ConditionPlacement)
	if c == nil {
		return false, "no Placement condition"
	}
	got := fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
	if c.Status != status || c.Reason != reason {
		return false, got
	}
	for _, m := range message {
		if !strings.Contains(c.Message, m) {
			return false, got
		}
	}
	return true, ""
}

// warningSays looks for an InvalidPlacementAnnotation Warning event on the object named name whose message
// contains each of want.
func warningSays(e *env, name string, want ...string) (bool, string) {
	events, err := e.Cluster.Client.CoreV1().Events(e.NS).List(e.Ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + name + ",reason=" + capacity.ReasonInvalidPlacementAnnotation})
	if err != nil {
		return false, err.Error()
	}
	seen := make([]string, 0, len(events.Items))
	for _, ev := range events.Items {
		seen = append(seen, ev.Message)
		ok := ev.Type == "Warning"
		for _, w := range want {
			ok = ok && strings.Contains(ev.Message, w)
		}
		if ok {
			return true, ""
		}
	}
	return false, fmt.Sprintf("events: %q", seen)
}
