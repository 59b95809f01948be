// Package estimator holds the binpacking estimate of how many template nodes a node group needs for a set of
// pending pods, and the Snapshot interface the estimate (and scale-down) packs pods into.
//
// It does not import k8s.io/kubernetes: the scheduler-framework implementation of Snapshot lives in
// autoscaler/nodes/simulator, so this package's tests link fast.
package estimator

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Snapshot is a mutable in-memory copy of the cluster the simulation schedules pods into.
//
// Mutations are recorded so that Revert can undo everything since the matching Fork; forks nest. Commit keeps
// the changes of the innermost fork. A Snapshot is not safe for concurrent use.
type Snapshot interface {
	// AddNode adds node with no pods. It fails if a node of that name exists.
	AddNode(node *corev1.Node) error
	// RemoveNode removes the node and its pods.
	RemoveNode(name string) error
	// AddPod puts pod on the named node without checking any filter.
	AddPod(pod *corev1.Pod, nodeName string) error
	// SchedulePod runs the filters for pod against the candidate nodes, in the order given and starting at
	// opts.Hint when set, puts the pod on the first node that passes and returns its name. When no node passes it
	// returns a *NoFitError with the filters' reasons. Other errors are internal.
	SchedulePod(ctx context.Context, pod *corev1.Pod, opts ScheduleOptions) (string, error)
	// Fork starts a new layer of changes; Revert drops the innermost layer; Commit merges it into the one below.
	Fork()
	Revert()
	Commit()
}

// ScheduleOptions narrows which nodes SchedulePod tries.
type ScheduleOptions struct {
	// Nodes to try, in order; nil means every node of the snapshot in the order they were added.
	Nodes []string
	// Exclude nodes by name.
	Exclude map[string]bool
	// Hint is tried first when it is one of the candidates.
	Hint string
}

// NoFitError says a pod fits none of the candidate nodes, and why.
type NoFitError struct {
	Pod string
	// Reasons are the distinct failure reasons the filters gave, sorted, e.g. "Insufficient cpu".
	Reasons []string
}

func (e *NoFitError) Error() string {
	if len(e.Reasons) == 0 {
		return fmt.Sprintf("pod %s fits no node", e.Pod)
	}
	return fmt.Sprintf("pod %s fits no node: %s", e.Pod, strings.Join(e.Reasons, ", "))
}

// NewNoFitError builds a NoFitError from possibly repeated reasons.
func NewNoFitError(pod *corev1.Pod, reasons []string) *NoFitError {
	seen := make(map[string]bool, len(reasons))
	var out []string
	for _, r := range reasons {
		if r != "" && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return &NoFitError{Pod: pod.Namespace + "/" + pod.Name, Reasons: out}
}

// NodeUsage is what a node's pods request against what it can offer.
type NodeUsage struct {
	RequestedMilliCPU   int64
	RequestedMemory     int64
	AllocatableMilliCPU int64
	AllocatableMemory   int64
	Pods                int
}

// Utilization is the larger of the CPU and memory request ratios, as cluster-autoscaler computes it for
// scale-down; 0 when the node offers nothing.
func (u NodeUsage) Utilization() float64 {
	var cpu, mem float64
	if u.AllocatableMilliCPU > 0 {
		cpu = float64(u.RequestedMilliCPU) / float64(u.AllocatableMilliCPU)
	}
	if u.AllocatableMemory > 0 {
		mem = float64(u.RequestedMemory) / float64(u.AllocatableMemory)
	}
	return max(cpu, mem)
}
