package status

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
)

// Node labels the timeline reads (the node autoscaler's template and the virtual node).
const (
	labelNodeGroup  = "tidal.dev/node-group"
	labelNodeType   = "type"
	nodeTypeVirtual = "virtual-kubelet"
	annotationBurst = "tidal.dev/burst"
)

// Event is one step of a scale-up's chain, for `tidalctl status --timeline`; it is also the JSON/YAML output.
type Event struct {
	Time metav1.MicroTime `json:"time"`
	// Since is the time since the chain's first event (the trigger sample).
	Since time.Duration `json:"sinceStart"`
	// Step is sample, decision, capacityRequest, scale, placement, nodeRequested, nodeReady, podCreated,
	// podScheduled or podRunning.
	Step   string `json:"step"`
	Detail string `json:"detail"`
}

// Timeline is the chain of the ScaledObject's last scale-up: event → decision → capacity request → placement →
// node(s) → pods Running. cr is the object's CapacityRequest (nil when none), nodes and pods are the cluster's
// (nodes of the decision's group and virtual nodes are used; pods of the request's selector created after the
// decision). Events are sorted by time.
func Timeline(so *tidalv1alpha1.ScaledObject, cr *tidalv1alpha1.CapacityRequest, nodes []corev1.Node, pods []corev1.Pod) ([]Event, error) {
	tr := so.Status.LastScaleUp
	if tr == nil {
		return nil, fmt.Errorf("ScaledObject %s/%s has no status.lastScaleUp: no scale-up recorded yet", so.Namespace, so.Name)
	}
	var ev []Event
	add := func(t time.Time, step, detail string) {
		if !t.IsZero() {
			ev = append(ev, Event{Time: metav1.NewMicroTime(t), Step: step, Detail: detail})
		}
	}
	add(tr.SampleTime.Time, "sample", "trigger sample that asked for more replicas")
	add(tr.DecisionTime.Time, "decision", fmt.Sprintf("replicas %d → %d", tr.FromReplicas, tr.ToReplicas))
	if tr.CapacityRequestTime != nil {
		add(tr.CapacityRequestTime.Time, "capacityRequest", "CapacityRequest "+tr.CapacityRequest+" written")
	}
	if tr.ScaleTime != nil {
		add(tr.ScaleTime.Time, "scale", "/scale written")
	}
	group := ""
	if cr != nil && cr.Status.Placement != nil && !cr.Status.Placement.DecidedAt.Time.Before(tr.DecisionTime.Time.Add(-time.Minute)) {
		d := cr.Status.Placement
		group = d.NodeGroup
		add(d.DecidedAt.Time, "placement", fmt.Sprintf("%s: %s", d.Decision, d.Reason))
	}
	start := tr.DecisionTime.Time
	for i := range nodes {
		n := &nodes[i]
		if n.CreationTimestamp.Time.Before(start.Truncate(time.Second)) || n.Labels[labelNodeType] == nodeTypeVirtual {
			continue
		}
		if group != "" && n.Labels[labelNodeGroup] != group {
			continue
		}
		add(n.CreationTimestamp.Time, "nodeRegistered", "node "+n.Name+" registered ("+n.Labels[labelNodeGroup]+")")
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				add(c.LastTransitionTime.Time, "nodeReady", "node "+n.Name+" Ready")
			}
		}
	}
	if cr != nil {
		sel, err := metav1.LabelSelectorAsSelector(&cr.Spec.Selector)
		if err != nil {
			return nil, fmt.Errorf("CapacityRequest %s spec.selector: %w", cr.Name, err)
		}
		virtual := map[string]bool{}
		for i := range nodes {
			if nodes[i].Labels[labelNodeType] == nodeTypeVirtual {
				virtual[nodes[i].Name] = true
			}
		}
		for i := range pods {
			p := &pods[i]
			if !sel.Matches(labels.Set(p.Labels)) || p.CreationTimestamp.Time.Before(start.Truncate(time.Second)) {
				continue
			}
			where := p.Spec.NodeName
			if virtual[where] {
				where += " (virtual)"
			}
			add(p.CreationTimestamp.Time, "podCreated", "pod "+p.Name)
			if b := p.Annotations[annotationBurst]; b != "" {
				where += ", burst"
			}
			for _, c := range p.Status.Conditions {
				if c.Status != corev1.ConditionTrue {
					continue
				}
				switch c.Type {
				case corev1.PodScheduled:
					add(c.LastTransitionTime.Time, "podScheduled", "pod "+p.Name+" on "+where)
				case corev1.PodReady:
					add(c.LastTransitionTime.Time, "podRunning", "pod "+p.Name+" Ready on "+where)
				}
			}
		}
	}
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].Time.Before(&ev[j].Time) })
	t0 := tr.SampleTime.Time
	for i := range ev {
		ev[i].Since = ev[i].Time.Sub(t0)
	}
	return ev, nil
}

// WriteTimeline writes the events as a table.
func WriteTimeline(w io.Writer, events []Event) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\t+SINCE\tSTEP\tDETAIL")
	for _, e := range events {
		fmt.Fprintf(tw, "%s\t+%s\t%s\t%s\n", e.Time.UTC().Format("15:04:05.000"), e.Since.Round(time.Millisecond), e.Step, e.Detail)
	}
	return tw.Flush()
}
