// Package scaleup decides which node groups to grow for pending pods: it drops pods that fit existing or
// upcoming nodes, estimates per group how many template nodes the rest need (binpacking in the simulation),
// and lets the expander chain choose. Pure: no client and no clock.
package scaleup

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes/estimator"
	"github.com/tidalscale/tidal/autoscaler/nodes/expander"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
)

// Group is a node group as the planner sees it.
type Group struct {
	NodeGroup *v1alpha1.NodeGroup
	// Target is the current target size (registered plus upcoming instances).
	Target int
	// Backoff, when non-empty, says why the group may not grow now.
	Backoff string
}

// Limits are cluster-wide caps on what scale-up may add; zero means unlimited.
type Limits struct {
	MaxNodes    int
	MaxMilliCPU int64
	MaxMemory   int64 // bytes
}

// Usage is what the cluster has now, counting upcoming nodes.
type Usage struct {
	Nodes    int
	MilliCPU int64
	Memory   int64
}

// Planner plans scale-ups. Fields are required unless noted.
type Planner struct {
	Expander []expander.Filter
	Limits   Limits
}

// Input of one planning round.
type Input struct {
	// Pending pods that fit no existing or upcoming node (see FilterSchedulable).
	Pending []*corev1.Pod
	Groups  []Group
	Usage   Usage
}

// ScaleUp grows one group.
type ScaleUp struct {
	NodeGroup *v1alpha1.NodeGroup
	From      int
	Delta     int
	Pods      []*corev1.Pod
}

// NoScaleUp is a pending pod no group can help, with the reason per group name.
type NoScaleUp struct {
	Pod     *corev1.Pod
	Reasons map[string]string
}

// Plan is the outcome of one round.
type Plan struct {
	ScaleUps  []ScaleUp
	NoScaleUp []NoScaleUp
}

// Message summarises a NoScaleUp for an event: "pod didn't trigger scale-up: g1: Insufficient cpu; g2: ...".
func (n NoScaleUp) Message() string {
	groups := make([]string, 0, len(n.Reasons))
	for g := range n.Reasons {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	parts := make([]string, 0, len(groups))
	for _, g := range groups {
		parts = append(parts, g+": "+n.Reasons[g])
	}
	if len(parts) == 0 {
		return "pod didn't trigger scale-up: no node groups"
	}
	return "pod didn't trigger scale-up: " + strings.Join(parts, "; ")
}

// FilterSchedulable places pending pods on the snapshot's nodes (existing and upcoming) where the filters allow,
// leaving them there, and returns the pods that fit nowhere. Pods with the same equivalence key skip the nodes
// an equal pod already failed on.
func FilterSchedulable(ctx context.Context, snap estimator.Snapshot, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	var rest []*corev1.Pod
	failed := map[string]bool{}
	hint := map[string]string{}
	for _, pod := range pods {
		key := estimator.EquivalenceKey(pod)
		if failed[key] {
			rest = append(rest, pod)
			continue
		}
		node, err := snap.SchedulePod(ctx, pod, estimator.ScheduleOptions{Hint: hint[key]})
		if err != nil {
			if _, ok := err.(*estimator.NoFitError); !ok {
				return nil, err
			}
			failed[key] = true
			rest = append(rest, pod)
			continue
		}
		hint[key] = node
	}
	return rest, nil
}

// Plan chooses scale-ups: each round estimates every group that has not been chosen yet, the expander picks one,
// its pods leave the pending set, and the next round runs on the rest. Each group grows at most once.
func (p *Planner) Plan(ctx context.Context, snap estimator.Snapshot, in Input) (Plan, error) {
	var plan Plan
	remaining := in.Pending
	reasons := map[types.UID]map[string]string{}
	setReason := func(pod *corev1.Pod, group, reason string) {
		if reasons[pod.UID] == nil {
			reasons[pod.UID] = map[string]string{}
		}
		reasons[pod.UID][group] = reason
	}
	usage := in.Usage
	chosen := map[string]bool{}
	groups := append([]Group(nil), in.Groups...)
	sort.Slice(groups, func(i, j int) bool { return groups[i].NodeGroup.Name < groups[j].NodeGroup.Name })
	for len(remaining) > 0 {
		var options []expander.Option
		var estimates = map[string]estimator.Result{}
		for _, g := range groups {
			name := g.NodeGroup.Name
			if chosen[name] {
				continue
			}
			if g.Backoff != "" {
				for _, pod := range remaining {
					setReason(pod, name, "in backoff: "+g.Backoff)
				}
				continue
			}
			maxNew := p.maxNewNodes(g, usage)
			if maxNew <= 0 {
				for _, pod := range remaining {
					setReason(pod, name, "max size or cluster limit reached")
				}
				continue
			}
			ng := g.NodeGroup
			snap.Fork()
			res, err := estimator.Estimate(ctx, snap, remaining, estimator.Options{
				MaxNodes: maxNew,
				NewNode: func(i int) *corev1.Node {
					return template.Node(ng, template.SimulatedName(ng.Name, g.Target+i))
				},
			})
			snap.Revert()
			if err != nil {
				return plan, fmt.Errorf("node group %q: estimate: %w", name, err)
			}
			for _, f := range res.Failed {
				setReason(f.Pod, name, strings.Join(f.Reasons, ", "))
			}
			if res.NodeCount == 0 {
				continue
			}
			estimates[name] = res
			options = append(options, optionFor(ng, res))
		}
		best, ok := expander.Chain(p.Expander, options)
		if !ok {
			break
		}
		res := estimates[best.Group]
		var ng *v1alpha1.NodeGroup
		var from int
		for _, g := range groups {
			if g.NodeGroup.Name == best.Group {
				ng, from = g.NodeGroup, g.Target
			}
		}
		up := ScaleUp{NodeGroup: ng, From: from, Delta: res.NodeCount}
		placed := make(map[types.UID]bool, len(res.Placed))
		for _, pl := range res.Placed {
			placed[pl.Pod.UID] = true
			up.Pods = append(up.Pods, pl.Pod)
		}
		plan.ScaleUps = append(plan.ScaleUps, up)
		chosen[best.Group] = true
		tmpl := template.Node(ng, "usage")
		usage.Nodes += res.NodeCount
		usage.MilliCPU += tmpl.Status.Allocatable.Cpu().MilliValue() * int64(res.NodeCount)
		usage.Memory += tmpl.Status.Allocatable.Memory().Value() * int64(res.NodeCount)
		var next []*corev1.Pod
		for _, pod := range remaining {
			if !placed[pod.UID] {
				next = append(next, pod)
			}
		}
		remaining = next
	}
	for _, pod := range remaining {
		plan.NoScaleUp = append(plan.NoScaleUp, NoScaleUp{Pod: pod, Reasons: reasons[pod.UID]})
	}
	return plan, nil
}

func (p *Planner) maxNewNodes(g Group, usage Usage) int {
	n := int(g.NodeGroup.Spec.MaxSize) - g.Target
	if p.Limits.MaxNodes > 0 {
		n = min(n, p.Limits.MaxNodes-usage.Nodes)
	}
	tmpl := template.Node(g.NodeGroup, "limits")
	if cpu := tmpl.Status.Allocatable.Cpu().MilliValue(); p.Limits.MaxMilliCPU > 0 && cpu > 0 {
		n = min(n, int((p.Limits.MaxMilliCPU-usage.MilliCPU)/cpu))
	}
	if mem := tmpl.Status.Allocatable.Memory().Value(); p.Limits.MaxMemory > 0 && mem > 0 {
		n = min(n, int((p.Limits.MaxMemory-usage.Memory)/mem))
	}
	return n
}

func optionFor(ng *v1alpha1.NodeGroup, res estimator.Result) expander.Option {
	o := expander.Option{
		Group:        ng.Name,
		NodeCount:    res.NodeCount,
		Allocatable:  template.Node(ng, "option").Status.Allocatable,
		PricePerHour: -1,
		Priority:     ng.Spec.Priority,
	}
	if ng.Spec.PricePerHour != "" {
		if v, err := strconv.ParseFloat(ng.Spec.PricePerHour, 64); err == nil && v >= 0 {
			o.PricePerHour = v
		}
	}
	for _, pl := range res.Placed {
		o.Pods = append(o.Pods, pl.Pod)
	}
	return o
}
