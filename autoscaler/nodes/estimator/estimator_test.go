package estimator_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tidalscale/tidal/autoscaler/nodes/estimator"
)

func owned(name, owner, cpu string) *corev1.Pod {
	ctrl := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name),
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: owner, UID: types.UID("rs-" + owner), Controller: &ctrl}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}},
	}
}

func TestEquivalenceKey(t *testing.T) {
	bare := owned("bare", "x", "1")
	bare.OwnerReferences = nil
	tolerating := owned("t", "a", "1")
	tolerating.Spec.Tolerations = []corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpExists}}
	cases := []struct {
		name string
		a, b *corev1.Pod
		same bool
	}{
		{name: "same controller and spec", a: owned("p1", "a", "1"), b: owned("p2", "a", "1"), same: true},
		{name: "different controller", a: owned("p1", "a", "1"), b: owned("p2", "b", "1")},
		{name: "different requests", a: owned("p1", "a", "1"), b: owned("p2", "a", "2")},
		{name: "different tolerations", a: owned("p1", "a", "1"), b: tolerating},
		{name: "pod without controller is its own class", a: bare, b: bare.DeepCopy(), same: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := estimator.EquivalenceKey(tc.a) == estimator.EquivalenceKey(tc.b); got != tc.same {
				t.Fatalf("equal keys = %v, want %v", got, tc.same)
			}
		})
	}
	other := bare.DeepCopy()
	other.Name, other.UID = "bare2", "uid-bare2"
	if estimator.EquivalenceKey(bare) == estimator.EquivalenceKey(other) {
		t.Fatal("two pods without controller share a key")
	}
}

func TestPodRequests(t *testing.T) {
	p := owned("p", "a", "500m")
	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side", Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")}}})
	p.Spec.InitContainers = []corev1.Container{{Name: "init", Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}}}}
	p.Spec.Overhead = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}
	got := estimator.PodRequests(p)
	if cpu := got.Cpu().MilliValue(); cpu != 2100 {
		t.Errorf("cpu = %dm, want 2100m (init container max, plus overhead)", cpu)
	}
	if mem := got.Memory().Value(); mem != 64<<20 {
		t.Errorf("memory = %d, want 64Mi", mem)
	}
	p.Spec.Resources = &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3")}}
	pl := estimator.PodRequests(p)
	if cpu := pl.Cpu().MilliValue(); cpu != 3100 {
		t.Errorf("pod-level cpu = %dm, want 3100m", cpu)
	}
}

func TestSortBySizeAndUtilization(t *testing.T) {
	sorted := estimator.SortBySize([]*corev1.Pod{owned("s", "a", "100m"), owned("l", "a", "2"), owned("m", "a", "1")})
	if sorted[0].Name != "l" || sorted[1].Name != "m" || sorted[2].Name != "s" {
		t.Fatalf("order %s,%s,%s; want l,m,s", sorted[0].Name, sorted[1].Name, sorted[2].Name)
	}
	u := estimator.NodeUsage{RequestedMilliCPU: 1000, AllocatableMilliCPU: 4000, RequestedMemory: 3 << 30, AllocatableMemory: 4 << 30}
	if got := u.Utilization(); got != 0.75 {
		t.Fatalf("utilization = %v, want 0.75 (the larger of cpu 0.25 and memory 0.75)", got)
	}
	nf := estimator.NewNoFitError(owned("p", "a", "1"), []string{"b", "a", "b", ""})
	if nf.Error() != "pod ns/p fits no node: a, b" {
		t.Fatalf("NoFitError = %q", nf.Error())
	}
}
