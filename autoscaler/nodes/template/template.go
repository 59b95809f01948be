// Package template turns a NodeGroup's node template into the Node object the scheduling simulation uses and
// providers create. It is pure: no client, no clock.
package template

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidalscale/tidal/api/v1alpha1"
)

// Labels and annotations the node autoscaler reads and writes.
const (
	// LabelNodeGroup names the NodeGroup a node belongs to. Every provider sets it on the nodes it creates; the
	// autoscaler uses it to map nodes to groups.
	LabelNodeGroup = "tidal.dev/nodegroup"
	// AnnotationScaleDownDisabled set to "true" on a node keeps the autoscaler from removing it.
	AnnotationScaleDownDisabled = "tidal.dev/scale-down-disabled"
	// AnnotationCAScaleDownDisabled is cluster-autoscaler's equivalent, honoured too.
	AnnotationCAScaleDownDisabled = "cluster-autoscaler.kubernetes.io/scale-down-disabled"
	// TaintToBeDeleted is put on a node the autoscaler is draining (NoSchedule).
	TaintToBeDeleted = "tidal.dev/to-be-deleted"
	// AnnotationCordonedByAutoscaler goes with TaintToBeDeleted: "true" when the autoscaler cordoned the node
	// (spec.unschedulable), "false" when it was already cordoned, so removing the taint restores the cordon the
	// node had. A taint without it (an older version) means the autoscaler cordoned the node.
	AnnotationCordonedByAutoscaler = "tidal.dev/cordoned-by-autoscaler"
	// LabelTemplateNode marks a Node that exists only in the simulation.
	LabelTemplateNode = "tidal.dev/template-node"
)

// Node returns the Node a NodeGroup's template describes, named name: template labels plus the node-group,
// hostname, zone, OS and arch labels; capacity with a default pod count; allocatable defaulting to capacity;
// the template's taints; condition Ready. The result is a fresh object the caller owns.
func Node(group *v1alpha1.NodeGroup, name string) *corev1.Node {
	t := &group.Spec.Template
	labels := make(map[string]string, len(t.Labels)+6)
	labels[corev1.LabelOSStable] = "linux"
	labels[corev1.LabelArchStable] = "amd64"
	for k, v := range t.Labels {
		labels[k] = v
	}
	labels[LabelNodeGroup] = group.Name
	labels[corev1.LabelHostname] = name
	if t.Zone != "" {
		labels[corev1.LabelTopologyZone] = t.Zone
	}
	capacity := t.Capacity.DeepCopy()
	if capacity == nil {
		capacity = corev1.ResourceList{}
	}
	if _, ok := capacity[corev1.ResourcePods]; !ok {
		capacity[corev1.ResourcePods] = *resource.NewQuantity(v1alpha1.DefaultNodePods, resource.DecimalSI)
	}
	allocatable := capacity.DeepCopy()
	for k, v := range t.Allocatable {
		allocatable[k] = v.DeepCopy()
	}
	var taints []corev1.Taint
	for _, taint := range t.Taints {
		taints = append(taints, *taint.DeepCopy())
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: taints},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: allocatable,
			Conditions: []corev1.NodeCondition{
				{Type: corev1.NodeReady, Status: corev1.ConditionTrue},
			},
		},
	}
}

// SimulatedName is the name of the i-th template node of a group inside one simulation.
func SimulatedName(group string, i int) string {
	return fmt.Sprintf("template-%s-%d", group, i)
}

// ScaleDownDisabled reports whether the node carries either opt-out annotation set to "true".
func ScaleDownDisabled(node *corev1.Node) bool {
	return node.Annotations[AnnotationScaleDownDisabled] == "true" ||
		node.Annotations[AnnotationCAScaleDownDisabled] == "true"
}
