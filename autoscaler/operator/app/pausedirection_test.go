package app_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/autoscaler/operator/scaledobject"
	"github.com/tidalscale/tidal/internal/testenv"
)

// decided waits until the ScaledObject's status shows a decision on a sample of value: the trigger's value in
// status, and (when reason is set) the Active condition's message naming the decision's reason. Status is written
// after the target is scaled, so the replicas seen afterwards are the decision's.
func (e *env) decided(name, value, reason string) {
	e.T.Helper()
	e.Eventually(name+" decided on value "+value+" "+reason, 60*time.Second, func() (bool, string) {
		so, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Get(e.Ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if len(so.Status.Triggers) == 0 || so.Status.Triggers[0].Value != value {
			return false, "trigger status " + stringify(so.Status.Triggers)
		}
		c := apimeta.FindStatusCondition(so.Status.Conditions, tidalv1alpha1.ConditionActive)
		if reason == "" {
			return c != nil, "no Active condition"
		}
		if c == nil || !strings.Contains(c.Message, reason) {
			return false, "Active condition " + stringify(c)
		}
		return true, ""
	})
}

func stringify(v any) string { return fmt.Sprintf("%+v", v) }

func (e *env) annotate(name, key string, value *string) {
	e.T.Helper()
	v := "null"
	if value != nil {
		v = `"` + *value + `"`
	}
	patch := []byte(`{"metadata":{"annotations":{"` + key + `":` + v + `}}}`)
	if _, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Patch(e.Ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		e.T.Fatal(err)
	}
}

// Mode direct: paused-scale-in keeps the target up when the queue drains (no scale-in, no scale to zero) and
// paused-scale-out keeps it down when the queue grows; removing the annotation lets the target move.
func TestPausedScaleInAndOutDirect(t *testing.T) {
	e := setup(t)
	e.startOperator(app.Options{})
	rc, list := testenv.RedisList(t, testenv.RedisAddr)

	e.Deployment("in", 0)
	in := testenv.RedisScaledObject("in", "in", testenv.RedisAddr, list)
	in.Annotations = map[string]string{tidalv1alpha1.KEDAPausedScaleInAnnotation: "true"}
	e.ScaledObject(in)
	testenv.Push(t, rc, list, 20)
	e.WaitReplicas("in", 4, 60*time.Second) // scaling out is not paused
	if err := rc.Del(e.Ctx, list).Err(); err != nil {
		t.Fatal(err)
	}
	// Past the 2s cooldown the decision is to scale to zero; the annotation holds the count.
	e.decided("in", "0", "PausedScaleIn")
	if got := e.Replicas("in"); got != 4 {
		t.Fatalf("paused-scale-in: target scaled in to %d", got)
	}
	e.annotate("in", tidalv1alpha1.KEDAPausedScaleInAnnotation, nil)
	e.WaitReplicas("in", 0, 60*time.Second)

	// Tidal's spelling, the other direction.
	_, list2 := testenv.RedisList(t, testenv.RedisAddr)
	e.Deployment("out", 2)
	out := testenv.RedisScaledObject("out", "out", testenv.RedisAddr, list2)
	out.Spec.MinReplicaCount = ptr.To[int32](1)
	out.Annotations = map[string]string{tidalv1alpha1.PausedScaleOutAnnotation: "true"}
	e.ScaledObject(out)
	testenv.Push(t, rc, list2, 40) // 8 replicas without the annotation
	e.decided("out", "40", "")
	if got := e.Replicas("out"); got != 2 {
		t.Fatalf("paused-scale-out: target scaled out to %d", got)
	}
	e.annotate("out", tidalv1alpha1.PausedScaleOutAnnotation, nil)
	e.WaitReplicas("out", 8, 60*time.Second)
}

// Mode hpa: as KEDA does, the managed HPA's behavior has selectPolicy Disabled for each paused direction, and the
// operator's own step to zero is held by paused-scale-in. Removing the annotations restores the behavior.
func TestPausedScaleInAndOutHPA(t *testing.T) {
	e := setup(t)
	e.startOperator(app.Options{})
	_, list := testenv.RedisList(t, testenv.RedisAddr)
	e.Deployment("web", 2)
	so := testenv.RedisScaledObject("web", "web", testenv.RedisAddr, list)
	so.Spec.Mode = tidalv1alpha1.ScalingModeHPA
	window := int32(30)
	so.Spec.Advanced = &tidalv1alpha1.AdvancedConfig{HorizontalPodAutoscalerConfig: &tidalv1alpha1.HorizontalPodAutoscalerConfig{
		Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &window}}}}
	so.Annotations = map[string]string{tidalv1alpha1.KEDAPausedScaleInAnnotation: "true", tidalv1alpha1.KEDAPausedScaleOutAnnotation: "true"}
	created := e.ScaledObject(so)

	hpaPolicies := func() (up, down autoscalingv2.ScalingPolicySelect, window int32, msg string) {
		hpa, err := e.Cluster.Client.AutoscalingV2().HorizontalPodAutoscalers(e.NS).Get(e.Ctx, scaledobject.HPAName(created), metav1.GetOptions{})
		if err != nil {
			return "", "", 0, err.Error()
		}
		b := hpa.Spec.Behavior
		if b == nil || b.ScaleUp == nil || b.ScaleDown == nil || b.ScaleUp.SelectPolicy == nil || b.ScaleDown.SelectPolicy == nil {
			return "", "", 0, "behavior " + stringify(b)
		}
		return *b.ScaleUp.SelectPolicy, *b.ScaleDown.SelectPolicy, ptr.Deref(b.ScaleDown.StabilizationWindowSeconds, -1), ""
	}
	e.Eventually("HPA with both directions Disabled", 60*time.Second, func() (bool, string) {
		up, down, w, msg := hpaPolicies()
		return up == autoscalingv2.DisabledPolicySelect && down == autoscalingv2.DisabledPolicySelect && w == window,
			msg + " up=" + string(up) + " down=" + string(down)
	})
	// The queue is empty: past the cooldown the operator would scale to zero itself.
	e.decided("web", "0", "PausedScaleIn")
	if got := e.Replicas("web"); got != 2 {
		t.Fatalf("paused-scale-in (mode hpa): target scaled to %d", got)
	}
	e.annotate("web", tidalv1alpha1.KEDAPausedScaleOutAnnotation, nil)
	e.Eventually("HPA scale-up enabled again, scale-down still Disabled", 60*time.Second, func() (bool, string) {
		up, down, _, msg := hpaPolicies()
		return up != autoscalingv2.DisabledPolicySelect && down == autoscalingv2.DisabledPolicySelect, msg + " up=" + string(up) + " down=" + string(down)
	})
	e.annotate("web", tidalv1alpha1.KEDAPausedScaleInAnnotation, nil)
	e.WaitReplicas("web", 0, 60*time.Second)
}
