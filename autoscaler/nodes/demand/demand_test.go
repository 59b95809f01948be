package demand

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
)

func TestFromRequests(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	req := func(name string, replicas int32, expires time.Time) *v1alpha1.CapacityRequest {
		return &v1alpha1.CapacityRequest{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
			Spec: v1alpha1.CapacityRequestSpec{
				Replicas: replicas, Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
				Pod: v1alpha1.CapacityRequestPod{
					Labels:   map[string]string{"app": name},
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
				},
				ExpiresAt: metav1.NewTime(expires),
			},
		}
	}
	pod := func(app, node string, phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: app + node, Labels: map[string]string{"app": app}},
			Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: phase}}
	}
	later := now.Add(time.Minute)
	for _, tc := range []struct {
		name        string
		reqs        []*v1alpha1.CapacityRequest
		pods        []*corev1.Pod
		wantPods    int
		wantMissing int32
		wantErr     bool
	}{
		{name: "no pods yet", reqs: []*v1alpha1.CapacityRequest{req("web", 3, later)}, wantPods: 3, wantMissing: 3},
		{name: "scheduled and pending pods are subtracted",
			reqs:     []*v1alpha1.CapacityRequest{req("web", 3, later)},
			pods:     []*corev1.Pod{pod("web", "n1", corev1.PodRunning), pod("web", "", corev1.PodPending), pod("other", "", corev1.PodPending)},
			wantPods: 1, wantMissing: 1},
		{name: "finished pods do not count",
			reqs:     []*v1alpha1.CapacityRequest{req("web", 2, later)},
			pods:     []*corev1.Pod{pod("web", "n1", corev1.PodSucceeded), pod("web", "n2", corev1.PodFailed)},
			wantPods: 2, wantMissing: 2},
		{name: "more pods than replicas", reqs: []*v1alpha1.CapacityRequest{req("web", 1, later)},
			pods: []*corev1.Pod{pod("web", "a", corev1.PodRunning), pod("web", "b", corev1.PodRunning)}, wantPods: 0, wantMissing: 0},
		{name: "expired", reqs: []*v1alpha1.CapacityRequest{req("web", 3, now)}, wantPods: 0, wantMissing: 0},
		{name: "empty selector is ignored", reqs: func() []*v1alpha1.CapacityRequest {
			r := req("web", 3, later)
			r.Spec.Selector = metav1.LabelSelector{}
			return []*v1alpha1.CapacityRequest{r}
		}(), wantPods: 0, wantMissing: 0, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := FromRequests(tc.reqs, tc.pods, now)
			if len(res.Pods) != tc.wantPods {
				t.Errorf("pods = %d, want %d", len(res.Pods), tc.wantPods)
			}
			if len(res.Requests) != 1 || res.Requests[0].Missing != tc.wantMissing || (res.Requests[0].Err != "") != tc.wantErr {
				t.Fatalf("requests = %+v, want missing %d (error %v)", res.Requests, tc.wantMissing, tc.wantErr)
			}
			uids := map[string]bool{}
			for _, p := range res.Pods {
				if Source(p) != "capacityrequest/ns/web" || p.Labels["app"] != "web" || p.Spec.Containers[0].Resources.Requests.Cpu().String() != "1" {
					t.Errorf("simulated pod %s: source %q labels %v requests %v", p.Name, Source(p), p.Labels, p.Spec.Containers[0].Resources.Requests)
				}
				if uids[string(p.UID)] {
					t.Errorf("duplicate UID %s", p.UID)
				}
				uids[string(p.UID)] = true
			}
		})
	}
}

func TestHeadroom(t *testing.T) {
	ng := &v1alpha1.NodeGroup{ObjectMeta: metav1.ObjectMeta{Name: "gpu"}}
	if Headroom(ng) != nil {
		t.Fatal("a group without headroom got a simulated pod")
	}
	ng.Spec.Headroom = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}
	ng.Spec.Template.Taints = []corev1.Taint{{Key: "gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}}
	p := Headroom(ng)
	if p.Spec.NodeSelector[template.LabelNodeGroup] != "gpu" || len(p.Spec.Tolerations) != 1 || p.Spec.Tolerations[0].Key != "gpu" || p.Spec.Tolerations[0].Value != "true" || p.Spec.Tolerations[0].Effect != corev1.TaintEffectNoSchedule {
		t.Errorf("headroom pod: nodeSelector %v tolerations %v", p.Spec.NodeSelector, p.Spec.Tolerations)
	}
	if Source(p) != "headroom/gpu" {
		t.Errorf("source %q", Source(p))
	}
}
