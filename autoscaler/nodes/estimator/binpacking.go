package estimator

import (
	"context"
	"errors"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// ReasonMaxNodes is the failure reason of a pod that would fit a new node when the estimate may add no more.
const ReasonMaxNodes = "node group (or cluster) node limit reached"

// Options configure one binpacking estimate.
type Options struct {
	// MaxNodes caps how many nodes the estimate may add; 0 adds none.
	MaxNodes int
	// NewNode returns the i-th template node (i counts from 0). Each call must return a fresh object with a
	// name unique in the snapshot.
	NewNode func(i int) *corev1.Node
}

// PodFailure is a pod the estimate could not place, with the reasons.
type PodFailure struct {
	Pod     *corev1.Pod
	Reasons []string
}

// Result of an estimate.
type Result struct {
	// NodeCount is how many new nodes the placed pods need.
	NodeCount int
	// NodeNames of the added nodes, in order.
	NodeNames []string
	// Placed pods, with the node each went to.
	Placed []Placement
	// Failed pods fit no new node.
	Failed []PodFailure
}

// Placement is a pod assigned to a node in the simulation.
type Placement struct {
	Pod  *corev1.Pod
	Node string
}

// Estimate packs pods into new nodes of one template, first-fit decreasing: the biggest pods first, each onto
// an already added new node when one fits, else onto a fresh node. It leaves the nodes and pods in snap; callers
// wrap it in Fork/Revert to discard them.
//
// Pods with the same EquivalenceKey are handled in O(1) each once one of them failed on every new node: later
// ones only try the most recent node, and a key whose pod does not fit an empty template node fails at once.
func Estimate(ctx context.Context, snap Snapshot, pods []*corev1.Pod, opts Options) (Result, error) {
	var res Result
	if opts.NewNode == nil {
		return res, errors.New("estimator: Options.NewNode is required")
	}
	sorted := SortBySize(pods)
	exhausted := map[string]bool{}      // some pod of this key failed on all new nodes: try only the last one
	impossible := map[string][]string{} // a pod of this key does not fit an empty template node
	for _, pod := range sorted {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		key := EquivalenceKey(pod)
		if reasons, ok := impossible[key]; ok {
			res.Failed = append(res.Failed, PodFailure{Pod: pod, Reasons: reasons})
			continue
		}
		if len(res.NodeNames) > 0 {
			candidates := res.NodeNames
			if exhausted[key] {
				candidates = res.NodeNames[len(res.NodeNames)-1:]
			}
			node, err := snap.SchedulePod(ctx, pod, ScheduleOptions{Nodes: candidates})
			if err == nil {
				res.Placed = append(res.Placed, Placement{Pod: pod, Node: node})
				continue
			}
			if !isNoFit(err) {
				return res, err
			}
			exhausted[key] = true
		}
		if res.NodeCount >= opts.MaxNodes {
			res.Failed = append(res.Failed, PodFailure{Pod: pod, Reasons: []string{ReasonMaxNodes}})
			continue
		}
		node := opts.NewNode(res.NodeCount)
		if err := snap.AddNode(node); err != nil {
			return res, fmt.Errorf("estimator: add template node %q: %w", node.Name, err)
		}
		placed, err := snap.SchedulePod(ctx, pod, ScheduleOptions{Nodes: []string{node.Name}})
		if err != nil {
			var nf *NoFitError
			if !errors.As(err, &nf) {
				return res, err
			}
			if rmErr := snap.RemoveNode(node.Name); rmErr != nil {
				return res, fmt.Errorf("estimator: remove template node %q: %w", node.Name, rmErr)
			}
			impossible[key] = nf.Reasons
			res.Failed = append(res.Failed, PodFailure{Pod: pod, Reasons: nf.Reasons})
			continue
		}
		res.NodeCount++
		res.NodeNames = append(res.NodeNames, node.Name)
		res.Placed = append(res.Placed, Placement{Pod: pod, Node: placed})
	}
	return res, nil
}

func isNoFit(err error) bool {
	var nf *NoFitError
	return errors.As(err, &nf)
}

// SortBySize returns pods sorted by CPU request, then memory request, biggest first; ties keep input order.
func SortBySize(pods []*corev1.Pod) []*corev1.Pod {
	type sized struct {
		pod      *corev1.Pod
		cpu, mem int64
	}
	s := make([]sized, len(pods))
	for i, p := range pods {
		req := PodRequests(p)
		s[i] = sized{pod: p, cpu: req.Cpu().MilliValue(), mem: req.Memory().Value()}
	}
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].cpu != s[j].cpu {
			return s[i].cpu > s[j].cpu
		}
		return s[i].mem > s[j].mem
	})
	out := make([]*corev1.Pod, len(s))
	for i := range s {
		out[i] = s[i].pod
	}
	return out
}

// PodRequests is the pod's effective request as the scheduler computes it: pod-level resources when set,
// otherwise the sum of containers, raised to the largest init container, plus overhead.
func PodRequests(pod *corev1.Pod) corev1.ResourceList {
	out := corev1.ResourceList{}
	if pod.Spec.Resources != nil && len(pod.Spec.Resources.Requests) > 0 {
		for k, v := range pod.Spec.Resources.Requests {
			out[k] = v.DeepCopy()
		}
	} else {
		for _, c := range pod.Spec.Containers {
			addList(out, c.Resources.Requests)
		}
		for _, c := range pod.Spec.InitContainers {
			for k, v := range c.Resources.Requests {
				if cur, ok := out[k]; !ok || v.Cmp(cur) > 0 {
					out[k] = v.DeepCopy()
				}
			}
		}
	}
	addList(out, pod.Spec.Overhead)
	return out
}

func addList(dst, src corev1.ResourceList) {
	for k, v := range src {
		cur, ok := dst[k]
		if !ok {
			cur = resource.Quantity{Format: v.Format}
		}
		cur.Add(v)
		dst[k] = cur
	}
}
