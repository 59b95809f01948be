package explain

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/cmd/tidalctl/tablefmt"
)

// describeBehavior spells out the scale-up and scale-down rules: the spec's, or the HPA controller's defaults.
func describeBehavior(so *tidalv1alpha1.ScaledObject) Behavior {
	var b *autoscalingv2.HorizontalPodAutoscalerBehavior
	if a := so.Spec.Advanced; a != nil && a.HorizontalPodAutoscalerConfig != nil {
		b = a.HorizontalPodAutoscalerConfig.Behavior
	}
	if b == nil {
		return Behavior{Source: "default",
			ScaleUp:   "no stabilization; at most max(2x current, 4) replicas per step (HPA controller defaults)",
			ScaleDown: "stabilization 5m0s: the highest recommendation of the last 5 minutes wins (HPA controller default)"}
	}
	out := Behavior{Source: "spec"}
	out.ScaleUp = describeRules(b.ScaleUp, 0, "Max", "4 Pods per 15s, 100 Percent per 15s")
	out.ScaleDown = describeRules(b.ScaleDown, 300, "Max", "100 Percent per 15s")
	return out
}

func describeRules(r *autoscalingv2.HPAScalingRules, defWindow int32, defSelect, defPolicies string) string {
	if r == nil {
		return fmt.Sprintf("stabilization %s, select %s, policies: %s (defaults)", secs(defWindow), defSelect, defPolicies)
	}
	window := defWindow
	if r.StabilizationWindowSeconds != nil {
		window = *r.StabilizationWindowSeconds
	}
	sel := defSelect
	if r.SelectPolicy != nil {
		sel = string(*r.SelectPolicy)
	}
	policies := defPolicies + " (default)"
	if len(r.Policies) > 0 {
		parts := make([]string, 0, len(r.Policies))
		for _, p := range r.Policies {
			parts = append(parts, fmt.Sprintf("%d %s per %s", p.Value, p.Type, secs(p.PeriodSeconds)))
		}
		policies = strings.Join(parts, ", ")
	}
	s := fmt.Sprintf("stabilization %s, select %s, policies: %s", secs(window), sel, policies)
	if r.Tolerance != nil {
		s += ", tolerance " + r.Tolerance.String()
	}
	return s
}

func secs(n int32) string { return (time.Duration(n) * time.Second).String() }

// WriteText writes the report for a terminal. now is the reference for ages.
func (r Report) WriteText(w io.Writer, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	p("Name:\t%s/%s", r.Namespace, r.Name)
	p("Mode:\t%s", r.Mode)
	p("Target:\t%s", r.Target)
	bounds := fmt.Sprintf("min %d, max %d", r.Min, r.Max)
	if r.Idle != nil {
		bounds += fmt.Sprintf(", idle %d", *r.Idle)
	}
	p("Replicas:\tcurrent %s, desired %s (%s)", tablefmt.Int(r.CurrentReplicas), tablefmt.Int(r.DesiredReplicas), bounds)
	p("Last active:\t%s", ago(r.LastActive, now))
	if r.Paused != "" {
		p("Paused:\t%s", r.Paused)
	}
	if r.Formula != "" {
		p("Formula:\t%s", r.Formula)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nConditions:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TYPE\tSTATUS\tREASON\tMESSAGE")
	for _, c := range sortedConditions(r.Conditions) {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, tablefmt.OneLine(c.Message))
	}
	if len(r.Conditions) == 0 {
		fmt.Fprintln(tw, "  (none: the operator has not reconciled the object)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nTriggers:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tTYPE\tVALUE\tTARGET\tMETRIC TYPE\tACTIVE\tFAILURES\tPROPOSAL\tSAMPLED\tERROR")
	for _, t := range r.Triggers {
		target, proposal := tablefmt.Dash(t.Target), tablefmt.Int(t.Proposal)
		if t.TargetError != "" {
			target = "?"
		}
		if t.Fallback {
			proposal += " (fallback)"
		}
		if t.Resource {
			target, proposal = "(HPA)", "(mode hpa only)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%t\t%d\t%s\t%s\t%s\n", t.Name, t.Type, tablefmt.Dash(t.Value), target,
			tablefmt.Dash(t.MetricType), t.Active, t.Failures, proposal, ago(t.Sampled, now), tablefmt.OneLine(t.Error))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range r.Triggers {
		if t.TargetError != "" {
			fmt.Fprintf(w, "  %s: target unknown: %s\n", t.Name, tablefmt.OneLine(t.TargetError))
		}
	}

	fmt.Fprintln(w, "\nDecision (the scaling core re-run on the samples above):")
	if r.Decision == nil {
		fmt.Fprintf(w, "  not computed: %s\n", tablefmt.OneLine(r.DecisionError))
	} else {
		d := r.Decision
		fmt.Fprintf(w, "  Desired replicas: %d\n", d.DesiredReplicas)
		fmt.Fprintf(w, "  Active:           %t\n", d.Active)
		fmt.Fprintf(w, "  Reason:           %s: %s\n", d.Reason, d.Explanation)
		if len(d.Conditions) > 0 {
			fmt.Fprintln(w, "  HPA conditions:")
			tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			for _, c := range d.Conditions {
				fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, tablefmt.OneLine(c.Message))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(w, "\nBehavior (%s):\n  scale up:   %s\n  scale down: %s\n", r.Behavior.Source, r.Behavior.ScaleUp, r.Behavior.ScaleDown)
	if p := r.Placement; p != nil {
		r.writePlacement(w, now)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w, "\nNotes:")
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
	return nil
}

func ago(t *metav1.Time, now time.Time) string {
	if a := tablefmt.Age(t, now); a != "-" {
		return a + " ago"
	}
	return "-"
}

// conditionOrder is the order conditions are shown in, whatever order the operator wrote them in.
var conditionOrder = map[string]int{tidalv1alpha1.ConditionReady: 0, tidalv1alpha1.ConditionActive: 1,
	tidalv1alpha1.ConditionFallback: 2, tidalv1alpha1.ConditionPaused: 3}

func sortedConditions(in []metav1.Condition) []metav1.Condition {
	out := append([]metav1.Condition(nil), in...)
	sort.SliceStable(out, func(i, j int) bool {
		oi, ok := conditionOrder[out[i].Type]
		if !ok {
			oi = len(conditionOrder)
		}
		oj, ok := conditionOrder[out[j].Type]
		if !ok {
			oj = len(conditionOrder)
		}
		return oi < oj
	})
	return out
}

// writePlacement writes the placement section: the policy, then the node autoscaler's decision and its inputs.
func (r Report) writePlacement(w io.Writer, now time.Time) {
	p := r.Placement
	policy := p.Policy
	if policy == "" {
		policy = "none"
	}
	if p.MaxPendingSeconds != nil {
		policy += fmt.Sprintf(", maxPendingSeconds %d", *p.MaxPendingSeconds)
	}
	fmt.Fprintf(w, "\nPlacement (%s):\n", policy)
	switch p.Source {
	case string(tidalv1alpha1.PlacementSourceSpec):
		from := "spec.placement"
		if p.Overridden {
			from += " (wins over the target's " + tidalv1alpha1.AnnotationPlacement + " annotations)"
		}
		fmt.Fprintf(w, "  From:               %s\n", from)
	case string(tidalv1alpha1.PlacementSourceAnnotation):
		fmt.Fprintf(w, "  From:               %s annotations on %s\n", tidalv1alpha1.AnnotationPlacement, r.Target)
	}
	if p.AnnotationError != "" {
		fmt.Fprintf(w, "  Ignored:            invalid annotations on %s: %s\n", r.Target, tablefmt.OneLine(p.AnnotationError))
	}
	if p.Policy == "" {
		fmt.Fprintln(w, "  no placement applies: pods wait for nodes")
		return
	}
	d := p.Decision
	if d == nil {
		fmt.Fprintln(w, "  no decision yet: the node autoscaler decides when a scale-up needs new nodes")
		return
	}
	dur := func(x *metav1.Duration) string {
		if x == nil {
			return "not measured"
		}
		return x.Duration.Round(100 * time.Millisecond).String()
	}
	at := metav1.NewTime(d.DecidedAt.Time)
	fmt.Fprintf(w, "  Decision:           %s (%s, on CapacityRequest %s)\n", d.Decision, ago(&at, now), p.CapacityRequest)
	fmt.Fprintf(w, "  Reason:             %s\n", tablefmt.OneLine(d.Reason))
	fmt.Fprintf(w, "  Node group:         %s, provision time %s, price per CPU-hour %s\n", tablefmt.Dash(d.NodeGroup), dur(d.NodeProvisionTime), tablefmt.Dash(d.NodePricePerCPUHour))
	fmt.Fprintf(w, "  Virtual node:       %s, pod start %s, price per CPU-hour %s\n", tablefmt.Dash(d.VirtualNode), dur(d.VirtualPodStartTime), tablefmt.Dash(d.VirtualPricePerCPUHour))
	fmt.Fprintf(w, "  Pods burst:         %d\n", d.BurstPods)
}
