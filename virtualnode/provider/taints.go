package provider

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// ReasonTaintToleration is the pod reason when a pod bound to the node (spec.nodeName set by its author, which
// bypasses the scheduler) does not tolerate one of the node's NoSchedule/NoExecute taints, as the kubelet's
// admission names the failed predicate.
const ReasonTaintToleration = "TaintToleration"

// untoleratedTaint reports the first NoSchedule or NoExecute taint of the node the pod does not tolerate. The
// scheduler checks taints only for pods it places; a pod created with spec.nodeName skips it, so the provider
// enforces them itself: the virtual node runs only pods that opted in to it.
func untoleratedTaint(taints []corev1.Taint, pod *corev1.Pod) string {
	for i := range taints {
		t := &taints[i]
		if t.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		tolerated := false
		for j := range pod.Spec.Tolerations {
			if pod.Spec.Tolerations[j].ToleratesTaint(klog.Background(), t, false) {
				tolerated = true
				break
			}
		}
		if !tolerated {
			return fmt.Sprintf("Predicate TaintToleration failed: the pod does not tolerate the node's taint %s=%s:%s", t.Key, t.Value, t.Effect)
		}
	}
	return ""
}
