// Package demand turns the demand signal into pods for the scale-up simulation: each unexpired CapacityRequest
// becomes max(0, spec.replicas − existing pods of spec.selector) simulated pods of spec.pod, and each NodeGroup
// with spec.headroom one simulated pod of that size pinned to the group. The simulated pods join the pending
// pods in the same pass, so a pod that exists is counted once: as itself, never also as demand. Pure: no client,
// no clock.
package demand

import (
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
)

// AnnotationSource on a simulated pod names what it stands for: "capacityrequest/<ns>/<name>" or
// "headroom/<group>". Real pods never carry it.
const AnnotationSource = "tidal.dev/simulated-for"

// Request is one CapacityRequest's share of the demand.
type Request struct {
	Key types.NamespacedName
	// Missing is spec.replicas minus the workload's existing pods (0 when expired or invalid).
	Missing int32
	// Err says why the request is ignored (invalid selector); empty otherwise.
	Err string
}

// Result is the simulated demand of one loop.
type Result struct {
	Pods     []*corev1.Pod
	Requests []Request
}

// FromRequests builds the simulated pods of the unexpired requests at now. pods are every pod the autoscaler
// sees; a pod that is not finished and not being deleted counts as existing whether scheduled or pending.
func FromRequests(reqs []*v1alpha1.CapacityRequest, pods []*corev1.Pod, now time.Time) Result {
	reqs = append([]*v1alpha1.CapacityRequest(nil), reqs...)
	sort.Slice(reqs, func(i, j int) bool {
		if reqs[i].Namespace != reqs[j].Namespace {
			return reqs[i].Namespace < reqs[j].Namespace
		}
		return reqs[i].Name < reqs[j].Name
	})
	byNS := map[string][]*corev1.Pod{}
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		byNS[p.Namespace] = append(byNS[p.Namespace], p)
	}
	var res Result
	for _, cr := range reqs {
		r := Request{Key: types.NamespacedName{Namespace: cr.Namespace, Name: cr.Name}}
		if !now.Before(cr.Spec.ExpiresAt.Time) || cr.DeletionTimestamp != nil {
			res.Requests = append(res.Requests, r)
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(&cr.Spec.Selector)
		if err != nil || sel.Empty() {
			// An empty selector would match every pod of the namespace: never a workload's.
			r.Err = "spec.selector: must select the workload's pods"
			if err != nil {
				r.Err = fmt.Sprintf("spec.selector: %v", err)
			}
			res.Requests = append(res.Requests, r)
			continue
		}
		existing := int32(0)
		for _, p := range byNS[cr.Namespace] {
			if sel.Matches(labels.Set(p.Labels)) {
				existing++
			}
		}
		r.Missing = max(0, cr.Spec.Replicas-existing)
		for i := int32(0); i < r.Missing; i++ {
			res.Pods = append(res.Pods, requestPod(cr, int(i)))
		}
		res.Requests = append(res.Requests, r)
	}
	return res
}

// Source returns what a simulated pod stands for, or "" for a real pod.
func Source(p *corev1.Pod) string { return p.Annotations[AnnotationSource] }

// RequestSource is the Source of a CapacityRequest's simulated pods.
func RequestSource(key types.NamespacedName) string {
	return "capacityrequest/" + key.Namespace + "/" + key.Name
}

func requestPod(cr *v1alpha1.CapacityRequest, i int) *corev1.Pod {
	key := types.NamespacedName{Namespace: cr.Namespace, Name: cr.Name}
	name := fmt.Sprintf("%s-demand-%d", cr.Name, i)
	shape := cr.Spec.Pod.DeepCopy()
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: cr.Namespace, UID: types.UID(RequestSource(key) + "/" + fmt.Sprint(i)),
			Labels:      shape.Labels,
			Annotations: map[string]string{AnnotationSource: RequestSource(key)},
		},
		Spec: corev1.PodSpec{
			Containers:                []corev1.Container{{Name: "demand", Resources: corev1.ResourceRequirements{Requests: shape.Requests}}},
			NodeSelector:              shape.NodeSelector,
			Tolerations:               shape.Tolerations,
			Affinity:                  shape.Affinity,
			TopologySpreadConstraints: shape.TopologySpreadConstraints,
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
}

// Headroom returns the simulated pod that keeps a group's spec.headroom free, or nil when it has none. The pod
// selects the group's nodes and tolerates their taints.
func Headroom(ng *v1alpha1.NodeGroup) *corev1.Pod {
	if len(ng.Spec.Headroom) == 0 {
		return nil
	}
	src := "headroom/" + ng.Name
	var tols []corev1.Toleration
	for _, t := range ng.Spec.Template.Taints {
		tols = append(tols, corev1.Toleration{Key: t.Key, Operator: corev1.TolerationOpEqual, Value: t.Value, Effect: t.Effect})
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "headroom-" + ng.Name, Namespace: metav1.NamespaceSystem, UID: types.UID(src),
			Annotations: map[string]string{AnnotationSource: src},
		},
		Spec: corev1.PodSpec{
			Containers:   []corev1.Container{{Name: "headroom", Resources: corev1.ResourceRequirements{Requests: ng.Spec.Headroom.DeepCopy()}}},
			NodeSelector: map[string]string{template.LabelNodeGroup: ng.Name},
			Tolerations:  tols,
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
}
