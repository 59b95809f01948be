// Package kubenode answers questions about Node objects that several parts of Tidal ask the same way.
package kubenode

import corev1 "k8s.io/api/core/v1"

// Schedulable reports whether the scheduler can place pods on n as far as its readiness goes: the Ready condition
// is True and the node lifecycle controller has lifted the not-ready/unreachable taint a node is created with (the
// apiserver's TaintNodesByCondition admission adds it; Ready alone comes earlier).
func Schedulable(n *corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
			return false
		}
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
