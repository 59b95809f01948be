// Package placement decides, for a workload whose pods need new nodes, whether they wait for the nodes or burst
// to the virtual node (whose backfill moves them to the real nodes once those are Ready). The workload's policy
// is spec.placement of its scaler object, carried by its CapacityRequest: waitForNodes, burstToVirtual, or auto
// with a latency target, where the node group's measured provision time and the virtual node's measured pod
// start are held against the target and, of the options that meet it, the cheaper wins.
package placement

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/tidalscale/tidal/api/v1alpha1"
)

// Inputs of one decision.
type Inputs struct {
	Policy v1alpha1.Placement
	// NodeGroup the pods' nodes come from and its measured provision time (nil: not measured yet).
	NodeGroup     *v1alpha1.NodeGroup
	NodeProvision *v1alpha1.ProvisionTimeEstimate
	// Virtual is the virtual node (nil: none Ready) and VirtualStart its measured pod start (nil: unknown).
	Virtual      *corev1.Node
	VirtualStart *time.Duration
}

// Decide returns the decision at now with its inputs filled in.
func Decide(in Inputs, now time.Time) v1alpha1.PlacementDecision {
	d := v1alpha1.PlacementDecision{Decision: v1alpha1.PlacementDecisionWait, DecidedAt: metav1.NewMicroTime(now)}
	var nodePrice, virtualPrice *float64
	if g := in.NodeGroup; g != nil {
		d.NodeGroup = g.Name
		if e := in.NodeProvision; e != nil {
			d.NodeProvisionTime = e.Estimate.DeepCopy()
		}
		if p, ok := NodePricePerCPUHour(g); ok {
			nodePrice = &p
			d.NodePricePerCPUHour = strconv.FormatFloat(p, 'f', -1, 64)
		}
	}
	if v := in.Virtual; v != nil {
		d.VirtualNode = v.Name
		if raw := v.Annotations[v1alpha1.AnnotationVirtualPricePerCPUHour]; raw != "" {
			if p, err := strconv.ParseFloat(raw, 64); err == nil && p >= 0 {
				virtualPrice = &p
				d.VirtualPricePerCPUHour = raw
			}
		}
		start := in.VirtualStart
		if start == nil {
			if raw := v.Annotations[v1alpha1.AnnotationVirtualPodStartSeconds]; raw != "" {
				if s, err := strconv.ParseFloat(raw, 64); err == nil && s >= 0 {
					dur := time.Duration(s * float64(time.Second))
					start = &dur
				}
			}
		}
		if start != nil {
			d.VirtualPodStartTime = &metav1.Duration{Duration: *start}
		}
	}
	switch {
	case in.Policy.Policy == v1alpha1.PlacementWaitForNodes:
		d.Reason = "policy waitForNodes"
	case in.Virtual == nil:
		d.Reason = "no Ready virtual node to burst to"
	case in.Policy.Policy == v1alpha1.PlacementBurstToVirtual:
		d.Decision, d.Reason = v1alpha1.PlacementDecisionBurst, "policy burstToVirtual"
	case in.Policy.Policy == v1alpha1.PlacementAuto && in.Policy.MaxPendingSeconds != nil:
		d.Decision, d.Reason = auto(time.Duration(*in.Policy.MaxPendingSeconds)*time.Second, d.NodeProvisionTime, d.VirtualPodStartTime, nodePrice, virtualPrice)
	default:
		d.Reason = fmt.Sprintf("policy %q without a latency target: waiting", in.Policy.Policy)
	}
	return d
}

func auto(target time.Duration, node, virtual *metav1.Duration, nodePrice, virtualPrice *float64) (v1alpha1.PlacementDecisionType, string) {
	nodeOK := node != nil && node.Duration <= target
	virtualOK := virtual == nil || virtual.Duration <= target
	nodeStr, virtualStr := "not measured yet", "not measured yet"
	if node != nil {
		nodeStr = node.Duration.Round(100 * time.Millisecond).String()
	}
	if virtual != nil {
		virtualStr = virtual.Duration.Round(100 * time.Millisecond).String()
	}
	facts := fmt.Sprintf("target %s, node provision %s, virtual pod start %s", target, nodeStr, virtualStr)
	switch {
	case nodeOK && virtualOK:
		if nodePrice != nil && virtualPrice != nil && *virtualPrice < *nodePrice {
			return v1alpha1.PlacementDecisionBurst, facts + ": both in time, the virtual node is cheaper"
		}
		return v1alpha1.PlacementDecisionWait, facts + ": nodes arrive in time"
	case nodeOK:
		return v1alpha1.PlacementDecisionWait, facts + ": only nodes arrive in time"
	case virtualOK:
		return v1alpha1.PlacementDecisionBurst, facts + ": nodes would miss the target"
	case virtual.Duration < node.Duration:
		return v1alpha1.PlacementDecisionBurst, facts + ": both miss the target, the virtual node is faster"
	default:
		return v1alpha1.PlacementDecisionWait, facts + ": both miss the target, nodes are faster"
	}
}

// NodePricePerCPUHour is the group's spec.pricePerHour over its node CPUs.
func NodePricePerCPUHour(g *v1alpha1.NodeGroup) (float64, bool) {
	if g.Spec.PricePerHour == "" {
		return 0, false
	}
	p, err := strconv.ParseFloat(g.Spec.PricePerHour, 64)
	if err != nil || p < 0 {
		return 0, false
	}
	cpu, ok := g.Spec.Template.Capacity[corev1.ResourceCPU]
	if !ok || cpu.Cmp(resource.MustParse("0")) <= 0 {
		return 0, false
	}
	return p / cpu.AsApproximateFloat64(), true
}

// Toleration lets a pod onto virtual nodes.
func Toleration() corev1.Toleration {
	return corev1.Toleration{Key: v1alpha1.VirtualNodeTaintKey, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
}

// Tolerates reports whether pod already tolerates the virtual nodes' taint.
func Tolerates(pod *corev1.Pod) bool {
	taint := corev1.Taint{Key: v1alpha1.VirtualNodeTaintKey, Value: "tidal", Effect: corev1.TaintEffectNoSchedule}
	for i := range pod.Spec.Tolerations {
		if pod.Spec.Tolerations[i].ToleratesTaint(klog.Background(), &taint, false) {
			return true
		}
	}
	return false
}

// AnnotationBurst is set on a pod Tidal let onto the virtual node; its value is the decision time (RFC 3339).
const AnnotationBurst = "tidal.dev/burst"

// VirtualStart measures the virtual nodes' pod start — the pod's PodScheduled condition to its Ready
// condition — as a moving average over the pods seen Ready there. Safe for concurrent use.
type VirtualStart struct {
	mu       sync.Mutex
	seen     map[types.UID]bool
	estimate *time.Duration
}

// Observe takes the pods bound to virtual nodes this loop.
func (v *VirtualStart) Observe(pods []*corev1.Pod) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = map[types.UID]bool{}
	}
	now := map[types.UID]bool{}
	for _, p := range pods {
		now[p.UID] = true
		if v.seen[p.UID] {
			continue
		}
		scheduled, ready := conditionTime(p, corev1.PodScheduled), conditionTime(p, corev1.PodReady)
		if scheduled.IsZero() || ready.IsZero() || ready.Before(scheduled) {
			continue
		}
		v.seen[p.UID] = true
		d := ready.Sub(scheduled)
		if v.estimate == nil {
			v.estimate = &d
			continue
		}
		e := time.Duration(0.3*float64(d) + 0.7*float64(*v.estimate))
		v.estimate = &e
	}
	for uid := range v.seen {
		if !now[uid] {
			delete(v.seen, uid)
		}
	}
}

// Estimate is the measured start, nil before any pod was measured.
func (v *VirtualStart) Estimate() *time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.estimate == nil {
		return nil
	}
	e := *v.estimate
	return &e
}

func conditionTime(p *corev1.Pod, t corev1.PodConditionType) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}
