package template_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
)

func TestNode(t *testing.T) {
	g := &v1alpha1.NodeGroup{
		ObjectMeta: metav1.ObjectMeta{Name: "gpu"},
		Spec: v1alpha1.NodeGroupSpec{Template: v1alpha1.NodeTemplate{
			Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("32Gi")},
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("7500m")},
			Labels:      map[string]string{"accelerator": "gpu", template.LabelNodeGroup: "spoofed"},
			Taints:      []corev1.Taint{{Key: "gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}},
			Zone:        "zone-b",
		}},
	}
	n := template.Node(g, "gpu-1")
	checks := []struct {
		name      string
		got, want string
	}{
		{name: "group label wins over template", got: n.Labels[template.LabelNodeGroup], want: "gpu"},
		{name: "template label", got: n.Labels["accelerator"], want: "gpu"},
		{name: "hostname", got: n.Labels[corev1.LabelHostname], want: "gpu-1"},
		{name: "zone", got: n.Labels[corev1.LabelTopologyZone], want: "zone-b"},
		{name: "allocatable cpu override", got: n.Status.Allocatable.Cpu().String(), want: "7500m"},
		{name: "allocatable memory defaults to capacity", got: n.Status.Allocatable.Memory().String(), want: "32Gi"},
		{name: "default pods", got: n.Status.Capacity.Pods().String(), want: "110"},
		{name: "taint", got: n.Spec.Taints[0].Key, want: "gpu"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Fatalf("got %q, want %q", c.got, c.want)
			}
		})
	}
	n.Spec.Taints[0].Key = "changed"
	n.Status.Capacity[corev1.ResourceCPU] = resource.MustParse("1")
	if g.Spec.Template.Taints[0].Key != "gpu" || g.Spec.Template.Capacity.Cpu().String() != "8" {
		t.Fatal("Node shares memory with the NodeGroup")
	}
	if !template.ScaleDownDisabled(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{template.AnnotationCAScaleDownDisabled: "true"}}}) {
		t.Fatal("cluster-autoscaler's opt-out annotation ignored")
	}
}
