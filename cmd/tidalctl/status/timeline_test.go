package status

import (
	"bytes"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
)

func TestTimelineChain(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	mt := func(ms int) *metav1.MicroTime { x := metav1.NewMicroTime(at(ms)); return &x }
	so := &tidalv1alpha1.ScaledObject{ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: "ns"}}
	so.Status.LastScaleUp = &tidalv1alpha1.ScaleUpTrace{SampleTime: *mt(0), DecisionTime: *mt(20), FromReplicas: 0, ToReplicas: 2,
		CapacityRequest: "scaledobject-worker", CapacityRequestTime: mt(30), ScaleTime: mt(40)}
	cr := &tidalv1alpha1.CapacityRequest{ObjectMeta: metav1.ObjectMeta{Name: "scaledobject-worker"},
		Spec: tidalv1alpha1.CapacityRequestSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "worker"}}},
		Status: tidalv1alpha1.CapacityRequestStatus{Placement: &tidalv1alpha1.PlacementDecision{
			Decision: tidalv1alpha1.PlacementDecisionBurst, Reason: "nodes would miss the target", DecidedAt: *mt(1100), NodeGroup: "pool"}}}
	node := func(name string, labels map[string]string, created, ready int) corev1.Node {
		return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, CreationTimestamp: metav1.NewTime(at(created))},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at(ready))}}}}
	}
	nodes := []corev1.Node{
		node("pool-1", map[string]string{labelNodeGroup: "pool"}, 30000, 31000),
		node("other-1", map[string]string{labelNodeGroup: "other"}, 30000, 31000), // another group: not in the chain
		node("old", map[string]string{labelNodeGroup: "pool"}, -60000, -59000),    // before the decision
		node("vk", map[string]string{labelNodeType: nodeTypeVirtual}, -60000, -59000),
	}
	pod := func(name, node string, created, scheduled, ready int, burst bool) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "worker"}, CreationTimestamp: metav1.NewTime(at(created))},
			Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at(scheduled))},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at(ready))},
			}}}
		if burst {
			p.Annotations = map[string]string{annotationBurst: "x"}
		}
		return p
	}
	pods := []corev1.Pod{pod("w-1", "vk", 1000, 2000, 3000, true), pod("w-2", "pool-1", 32000, 32000, 33000, false)}

	ev, err := Timeline(so, cr, nodes, pods)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for i, e := range ev {
		steps = append(steps, e.Step)
		if i > 0 && e.Time.Before(&ev[i-1].Time) {
			t.Errorf("not sorted at %d: %v", i, ev)
		}
	}
	want := "sample decision capacityRequest scale podCreated placement podScheduled podRunning nodeRegistered nodeReady podCreated podScheduled podRunning"
	if got := strings.Join(steps, " "); got != want {
		t.Fatalf("steps\n got %s\nwant %s", got, want)
	}
	if ev[len(ev)-1].Since != 33*time.Second {
		t.Errorf("last event +%s, want +33s", ev[len(ev)-1].Since)
	}
	var buf bytes.Buffer
	if err := WriteTimeline(&buf, ev); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"Burst: nodes would miss the target", "pod w-1 Ready on vk (virtual), burst", "node pool-1 Ready", "+33s"} {
		if !strings.Contains(buf.String(), w) {
			t.Errorf("timeline does not show %q:\n%s", w, buf.String())
		}
	}

	so.Status.LastScaleUp = nil
	if _, err := Timeline(so, cr, nodes, pods); err == nil || !strings.Contains(err.Error(), "no status.lastScaleUp") {
		t.Errorf("no trace: err %v", err)
	}
}
