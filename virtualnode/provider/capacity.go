package provider

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tidalscale/tidal/virtualnode/podstatus"
)

// podRequests returns the effective requests of pod: the larger of the sum over containers and the largest init
// container, per resource, plus the pod overhead (as the scheduler computes it).
func podRequests(pod *corev1.Pod) corev1.ResourceList {
	out := corev1.ResourceList{}
	for _, c := range pod.Spec.Containers {
		for name, q := range c.Resources.Requests {
			sum := out[name]
			sum.Add(q)
			out[name] = sum
		}
	}
	for _, c := range pod.Spec.InitContainers {
		for name, q := range c.Resources.Requests {
			if cur, ok := out[name]; !ok || q.Cmp(cur) > 0 {
				out[name] = q.DeepCopy()
			}
		}
	}
	for name, q := range pod.Spec.Overhead {
		sum := out[name]
		sum.Add(q)
		out[name] = sum
	}
	return out
}

// exceedsCapacityLocked returns why pod does not fit next to the pods the node runs, or "" when it fits. Only
// cpu, memory and the pod count are checked: they are what the node advertises. p.mu must be held.
func (p *Provider) exceedsCapacityLocked(pod *corev1.Pod) string {
	alloc := p.opts.Allocatable
	if len(alloc) == 0 {
		return ""
	}
	used := corev1.ResourceList{}
	count := int64(0)
	for _, e := range p.pods {
		if e.deleting || (e.status != nil && podstatus.Terminal(e.status.Phase)) {
			continue
		}
		count++
		for name, q := range podRequests(e.pod) {
			sum := used[name]
			sum.Add(q)
			used[name] = sum
		}
	}
	if max, ok := alloc[corev1.ResourcePods]; ok && count+1 > max.Value() {
		return fmt.Sprintf("node %s already runs %d pods, its capacity", p.opts.NodeName, count)
	}
	for name, want := range podRequests(pod) {
		if name != corev1.ResourceCPU && name != corev1.ResourceMemory {
			continue
		}
		max, ok := alloc[name]
		if !ok {
			continue
		}
		total := used[name]
		total.Add(want)
		if total.Cmp(max) > 0 {
			free := max.DeepCopy()
			u := used[name]
			free.Sub(u)
			if free.Sign() < 0 {
				free = resource.Quantity{}
			}
			return fmt.Sprintf("pod requests %s %s, node %s has %s of %s free", want.String(), name, p.opts.NodeName, free.String(), max.String())
		}
	}
	return ""
}
