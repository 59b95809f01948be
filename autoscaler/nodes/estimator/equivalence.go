package estimator

import (
	"encoding/json"
	"hash/fnv"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EquivalenceKey groups pods that schedule identically: same namespace, same controller and the same scheduling
// fields (requests, selectors, affinity, tolerations, topology spread, host ports, overhead). Pods without a
// controller get a key of their own. Two pods with equal keys fit on exactly the same nodes of a snapshot, which
// lets the estimator skip repeated failures.
func EquivalenceKey(pod *corev1.Pod) string {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return "pod/" + string(pod.UID) + "/" + pod.Namespace + "/" + pod.Name
	}
	h := fnv.New64a()
	enc := json.NewEncoder(h)
	spec := schedulingSpec{
		NodeSelector:              pod.Spec.NodeSelector,
		Affinity:                  pod.Spec.Affinity,
		Tolerations:               pod.Spec.Tolerations,
		TopologySpreadConstraints: pod.Spec.TopologySpreadConstraints,
		Overhead:                  pod.Spec.Overhead,
		Resources:                 pod.Spec.Resources,
		NodeName:                  pod.Spec.NodeName,
		PriorityClassName:         pod.Spec.PriorityClassName,
	}
	for _, c := range pod.Spec.InitContainers {
		spec.Containers = append(spec.Containers, containerSpec{Resources: c.Resources, Ports: c.Ports, Init: true})
	}
	for _, c := range pod.Spec.Containers {
		spec.Containers = append(spec.Containers, containerSpec{Resources: c.Resources, Ports: c.Ports})
	}
	// Encoding plain API structs cannot fail; a failure would only merge fewer pods, never wrong ones, because
	// the hash then covers what was written so far plus the controller UID below.
	_ = enc.Encode(spec)
	return pod.Namespace + "/" + string(ref.UID) + "/" + strconv.FormatUint(h.Sum64(), 36)
}

type schedulingSpec struct {
	NodeSelector              map[string]string
	Affinity                  *corev1.Affinity
	Tolerations               []corev1.Toleration
	TopologySpreadConstraints []corev1.TopologySpreadConstraint
	Overhead                  corev1.ResourceList
	Resources                 *corev1.ResourceRequirements
	NodeName                  string
	PriorityClassName         string
	Containers                []containerSpec
}

type containerSpec struct {
	Resources corev1.ResourceRequirements
	Ports     []corev1.ContainerPort
	Init      bool
}
