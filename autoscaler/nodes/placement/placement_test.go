package placement

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/tidalscale/tidal/api/v1alpha1"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	group := func(price string) *v1alpha1.NodeGroup {
		return &v1alpha1.NodeGroup{ObjectMeta: metav1.ObjectMeta{Name: "pool"}, Spec: v1alpha1.NodeGroupSpec{PricePerHour: price,
			Template: v1alpha1.NodeTemplate{Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}}}}
	}
	est := func(d time.Duration) *v1alpha1.ProvisionTimeEstimate {
		return &v1alpha1.ProvisionTimeEstimate{Estimate: metav1.Duration{Duration: d}, Samples: 1}
	}
	vnode := func(ann map[string]string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "vk", Annotations: ann}}
	}
	auto5 := v1alpha1.Placement{Policy: v1alpha1.PlacementAuto, MaxPendingSeconds: ptr.To[int32](5)}
	d := func(x time.Duration) *time.Duration { return &x }
	cases := []struct {
		name   string
		in     Inputs
		want   v1alpha1.PlacementDecisionType
		reason string
	}{
		{"auto: nodes take 30s, target 5s", Inputs{Policy: auto5, NodeGroup: group(""), NodeProvision: est(30 * time.Second), Virtual: vnode(nil), VirtualStart: d(time.Second)},
			v1alpha1.PlacementDecisionBurst, "nodes would miss the target"},
		{"auto: nodes take 2s, target 5s", Inputs{Policy: auto5, NodeGroup: group(""), NodeProvision: est(2 * time.Second), Virtual: vnode(nil), VirtualStart: d(time.Second)},
			v1alpha1.PlacementDecisionWait, "nodes arrive in time"},
		{"auto: both in time, virtual cheaper", Inputs{Policy: auto5, NodeGroup: group("0.4"), NodeProvision: est(2 * time.Second),
			Virtual: vnode(map[string]string{v1alpha1.AnnotationVirtualPricePerCPUHour: "0.05"}), VirtualStart: d(time.Second)},
			v1alpha1.PlacementDecisionBurst, "cheaper"},
		{"auto: both in time, nodes cheaper", Inputs{Policy: auto5, NodeGroup: group("0.4"), NodeProvision: est(2 * time.Second),
			Virtual: vnode(map[string]string{v1alpha1.AnnotationVirtualPricePerCPUHour: "0.2"}), VirtualStart: d(time.Second)},
			v1alpha1.PlacementDecisionWait, "nodes arrive in time"},
		{"auto: nodes not measured", Inputs{Policy: auto5, NodeGroup: group(""), Virtual: vnode(nil)},
			v1alpha1.PlacementDecisionBurst, "not measured yet"},
		{"auto: virtual start from the annotation misses too, nodes faster", Inputs{Policy: auto5, NodeGroup: group(""), NodeProvision: est(8 * time.Second),
			Virtual: vnode(map[string]string{v1alpha1.AnnotationVirtualPodStartSeconds: "12"})},
			v1alpha1.PlacementDecisionWait, "nodes are faster"},
		{"auto: no virtual node", Inputs{Policy: auto5, NodeGroup: group(""), NodeProvision: est(30 * time.Second)},
			v1alpha1.PlacementDecisionWait, "no Ready virtual node"},
		{"burstToVirtual", Inputs{Policy: v1alpha1.Placement{Policy: v1alpha1.PlacementBurstToVirtual}, NodeGroup: group(""), NodeProvision: est(time.Second), Virtual: vnode(nil)},
			v1alpha1.PlacementDecisionBurst, "policy burstToVirtual"},
		{"waitForNodes", Inputs{Policy: v1alpha1.Placement{Policy: v1alpha1.PlacementWaitForNodes}, NodeGroup: group(""), NodeProvision: est(time.Minute), Virtual: vnode(nil)},
			v1alpha1.PlacementDecisionWait, "policy waitForNodes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Decide(tc.in, now)
			if got.Decision != tc.want || !strings.Contains(got.Reason, tc.reason) {
				t.Fatalf("got %s (%s), want %s (…%s…)", got.Decision, got.Reason, tc.want, tc.reason)
			}
			if got.NodeGroup != "pool" || !got.DecidedAt.Time.Equal(now) {
				t.Errorf("inputs not recorded: %+v", got)
			}
		})
	}
	got := Decide(Inputs{Policy: auto5, NodeGroup: group("0.4"), NodeProvision: est(30 * time.Second),
		Virtual: vnode(map[string]string{v1alpha1.AnnotationVirtualPricePerCPUHour: "0.05"}), VirtualStart: d(1500 * time.Millisecond)}, now)
	if got.NodeProvisionTime.Duration != 30*time.Second || got.NodePricePerCPUHour != "0.1" || got.VirtualNode != "vk" ||
		got.VirtualPricePerCPUHour != "0.05" || got.VirtualPodStartTime.Duration != 1500*time.Millisecond {
		t.Errorf("inputs: %+v", got)
	}
}

func TestVirtualStartMeasuresScheduledToReady(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	pod := func(uid string, start time.Duration) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: k8stypes.UID(uid)}, Status: corev1.PodStatus{Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0.Add(start))},
		}}}
	}
	var v VirtualStart
	if v.Estimate() != nil {
		t.Fatal("estimate before any pod")
	}
	notReady := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "x"}}
	v.Observe([]*corev1.Pod{pod("a", 2*time.Second), notReady})
	v.Observe([]*corev1.Pod{pod("a", 2*time.Second), pod("b", 12*time.Second)})
	if e := v.Estimate(); e == nil || *e != 5*time.Second { // 2s, then 0.3·12 + 0.7·2
		t.Fatalf("estimate %v, want 5s", e)
	}
}
