// Package explain answers "why does this ScaledObject have the replica count it has?" for `tidalctl explain`.
//
// It re-runs the scaling core (autoscaler/core.Decide) on the last samples the operator wrote to the object's
// status, with each trigger's target taken from its scaler's metric spec, and reports every trigger's sample
// and proposal, the decision's reason and HPA conditions, and the behavior (policies and stabilization windows)
// that applied. The re-run starts from the decision history the operator persists in status.decisionState,
// restored with coreinput.RestoreState as an operator starting now would restore it, so a scale-down held by a
// stabilization window is held in the re-run too.
package explain

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/core"
	"github.com/tidalscale/tidal/autoscaler/coreinput"
	"github.com/tidalscale/tidal/cmd/tidalctl/status"
	"github.com/tidalscale/tidal/scalers"
)

// Options configures Explain.
type Options struct {
	// Registry builds each trigger's scaler (from metadata only, without credentials) to read its target.
	Registry *scalers.Registry
	// Now is the time of the re-run.
	Now time.Time
	// Env is the scale target's container environment (literal values only), for ...FromEnv metadata keys.
	Env map[string]string
	// CapacityRequest is the object's CapacityRequest (nil when none), for the placement decision.
	CapacityRequest *tidalv1alpha1.CapacityRequest
	// TargetAnnotations are the scale target's metadata.annotations, for placement set by annotation
	// (tidal.dev/placement); nil when the target could not be read.
	TargetAnnotations map[string]string
}

// Report is the explanation of one ScaledObject; it is also the JSON/YAML output.
type Report struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Mode      string `json:"mode"`
	Target    string `json:"target"`
	Min       int32  `json:"minReplicas"`
	Max       int32  `json:"maxReplicas"`
	// Idle is idleReplicaCount, when set.
	Idle            *int32             `json:"idleReplicas,omitempty"`
	CurrentReplicas *int32             `json:"currentReplicas,omitempty"`
	DesiredReplicas *int32             `json:"desiredReplicas,omitempty"`
	LastActive      *metav1.Time       `json:"lastActiveTime,omitempty"`
	Paused          string             `json:"paused,omitempty"`
	Conditions      []metav1.Condition `json:"conditions,omitempty"`
	Triggers        []Trigger          `json:"triggers"`
	// Formula is advanced.scalingModifiers.formula, when set.
	Formula string `json:"formula,omitempty"`
	// Decision is the core's re-run; nil when it could not run (DecisionError says why).
	Decision      *Decision `json:"decision,omitempty"`
	DecisionError string    `json:"decisionError,omitempty"`
	Behavior      Behavior  `json:"behavior"`
	// Placement is the placement in effect (spec.placement, else the target's placement annotations) and the
	// node autoscaler's last decision for it; nil when neither is set.
	Placement *Placement `json:"placement,omitempty"`
	Notes     []string   `json:"notes,omitempty"`
}

// Placement is the burst-or-wait policy and the decision with its inputs.
type Placement struct {
	// Policy is empty when only invalid annotations are set (AnnotationError): no placement applies.
	Policy            string `json:"policy"`
	MaxPendingSeconds *int32 `json:"maxPendingSeconds,omitempty"`
	// Source is where the policy came from: "spec" (spec.placement) or "annotation" (the scale target's
	// tidal.dev/placement annotations); empty when none applies.
	Source string `json:"source,omitempty"`
	// Overridden is true when the target has valid placement annotations that spec.placement wins over.
	Overridden bool `json:"overriddenAnnotations,omitempty"`
	// AnnotationError names the target's invalid placement annotations and their values (they are ignored).
	AnnotationError string `json:"annotationError,omitempty"`
	// Decision is the CapacityRequest's status.placement; nil before the node autoscaler decided.
	Decision *tidalv1alpha1.PlacementDecision `json:"decision,omitempty"`
	// CapacityRequest names the request the decision is on.
	CapacityRequest string `json:"capacityRequest,omitempty"`
}

// Trigger is one trigger's sample and its part in the decision.
type Trigger struct {
	Name       string       `json:"name"`
	Type       string       `json:"type"`
	Value      string       `json:"value,omitempty"`
	Active     bool         `json:"active"`
	Error      string       `json:"error,omitempty"`
	Sampled    *metav1.Time `json:"lastSampleTime,omitempty"`
	Failures   int32        `json:"consecutiveFailures"`
	MetricType string       `json:"metricType,omitempty"`
	// Target is the scaler's threshold; empty when it could not be read (TargetError says why).
	Target      string `json:"target,omitempty"`
	TargetError string `json:"targetError,omitempty"`
	// Proposal is the replica count this trigger alone asks for in the HPA math (nil when the math did not run
	// or the trigger failed).
	Proposal *int32 `json:"proposal,omitempty"`
	Fallback bool   `json:"fallback,omitempty"`
	// Resource marks cpu/memory triggers, which take part in mode hpa only.
	Resource bool `json:"resource,omitempty"`
}

// Decision is the core's verdict on the current samples.
type Decision struct {
	DesiredReplicas int32            `json:"desiredReplicas"`
	Active          bool             `json:"active"`
	Reason          string           `json:"reason"`
	Explanation     string           `json:"explanation"`
	Fallback        bool             `json:"fallback,omitempty"`
	Conditions      []core.Condition `json:"hpaConditions,omitempty"`
}

// Behavior is the scaling behavior that applies, spelled out.
type Behavior struct {
	// Source is "spec" (advanced.horizontalPodAutoscalerConfig.behavior) or "default".
	Source    string `json:"source"`
	ScaleUp   string `json:"scaleUp"`
	ScaleDown string `json:"scaleDown"`
}

// Explain builds the report of one ScaledObject. It fails only when the object cannot be explained at all; a
// trigger whose target cannot be read, or a core error, is reported inside the Report.
func Explain(ctx context.Context, so *tidalv1alpha1.ScaledObject, opts Options) (Report, error) {
	if so == nil {
		return Report{}, fmt.Errorf("explain: no ScaledObject")
	}
	row := status.Rows([]tidalv1alpha1.ScaledObject{*so})[0]
	r := Report{
		Namespace: so.Namespace, Name: so.Name, Mode: row.Mode, Target: row.Target, Min: row.Min, Max: row.Max,
		Idle: so.Spec.IdleReplicaCount, CurrentReplicas: so.Status.CurrentReplicas, DesiredReplicas: so.Status.DesiredReplicas,
		LastActive: so.Status.LastActiveTime, Conditions: so.Status.Conditions, Behavior: describeBehavior(so),
	}
	if c := meta.FindStatusCondition(so.Status.Conditions, tidalv1alpha1.ConditionPaused); c != nil && c.Status == metav1.ConditionTrue {
		r.Paused = c.Message
	}
	if a := so.Spec.Advanced; a != nil && a.ScalingModifiers != nil {
		r.Formula = a.ScalingModifiers.Formula
	}
	if eff := tidalv1alpha1.ResolvePlacement(so.Spec.Placement, opts.TargetAnnotations); eff.Placement != nil || eff.AnnotationErr != nil {
		r.Placement = &Placement{Source: string(eff.Source), Overridden: eff.Overridden}
		if p := eff.Placement; p != nil {
			r.Placement.Policy, r.Placement.MaxPendingSeconds = string(p.Policy), p.MaxPendingSeconds
		}
		if eff.AnnotationErr != nil {
			r.Placement.AnnotationError = eff.AnnotationErr.Error()
		}
		if cr := opts.CapacityRequest; cr != nil {
			r.Placement.CapacityRequest = cr.Name
			r.Placement.Decision = cr.Status.Placement
		}
	}
	in, err := decisionInput(ctx, so, row.Triggers, opts, &r)
	if err != nil {
		r.DecisionError = err.Error()
		return r, nil
	}
	d, err := core.Decide(in, opts.Now)
	if err != nil {
		r.DecisionError = err.Error()
		return r, nil
	}
	r.Decision = &Decision{DesiredReplicas: d.DesiredReplicas, Active: d.Active, Reason: string(d.Reason),
		Explanation: reasonText[d.Reason], Fallback: d.FallbackActive, Conditions: d.Conditions}
	for _, tr := range d.Triggers {
		for i := range r.Triggers {
			if r.Triggers[i].Name != tr.Name {
				continue
			}
			r.Triggers[i].Fallback = tr.Fallback
			if tr.Proposal != nil {
				p := tr.Proposal.Replicas
				r.Triggers[i].Proposal = &p
			}
		}
		if tr.Name == core.CompositeTriggerName && tr.Proposal != nil {
			p := tr.Proposal.Replicas
			r.Triggers = append(r.Triggers, Trigger{Name: core.CompositeTriggerName, Type: "scalingModifiers",
				Active: tr.Active, Proposal: &p, Fallback: tr.Fallback})
		}
	}
	for _, t := range r.Triggers {
		if t.TargetError != "" {
			r.Notes = append(r.Notes, "triggers whose target could not be read from metadata alone (credentials, "+
				"...FromEnv keys) count as failing in this re-run")
			break
		}
	}
	if r.Mode == string(tidalv1alpha1.ScalingModeHPA) {
		r.Notes = append(r.Notes, "mode hpa: the HorizontalPodAutoscaler "+so.Status.HpaName+
			" applies the HPA math; the re-run shows what it computes from the same metrics")
	}
	if d.Reason == core.ReasonHPA && so.Status.DecisionState == nil && r.Mode != string(tidalv1alpha1.ScalingModeHPA) {
		r.Notes = append(r.Notes, "status.decisionState is empty: the re-run starts without a stabilization history, "+
			"as the operator does for a new object")
	}
	return r, nil
}

// decisionInput maps the spec and the status' last samples into core's input with coreinput.Map, the mapping
// the operator decides with.
func decisionInput(ctx context.Context, so *tidalv1alpha1.ScaledObject, samples []tidalv1alpha1.TriggerStatus, opts Options, r *Report) (core.ScaledObjectInput, error) {
	state, err := coreinput.RestoreState(so, opts.Now)
	if err != nil {
		r.Notes = append(r.Notes, "ignored as the operator would: "+err.Error())
	}
	obs := coreinput.Observed{State: state, Triggers: make([]coreinput.Trigger, len(so.Spec.Triggers))}
	if so.Status.CurrentReplicas != nil {
		obs.CurrentReplicas = *so.Status.CurrentReplicas
	}
	external := 0
	for i, t := range so.Spec.Triggers {
		s := samples[i]
		tr := Trigger{Name: s.Name, Type: t.Type, Value: s.Value, Active: s.Active, Error: s.Error, Sampled: s.LastSampleTime}
		if t.Type == tidalv1alpha1.TriggerTypeCPU || t.Type == tidalv1alpha1.TriggerTypeMemory {
			tr.Resource = true
			r.Triggers = append(r.Triggers, tr)
			continue
		}
		external++
		target, metricName, err := scalerTarget(ctx, so, t, i, opts)
		if err != nil {
			tr.TargetError = err.Error()
		} else {
			tr.Target = strconv.FormatFloat(target.Value, 'f', -1, 64)
			tr.MetricType = string(target.Type)
		}
		if tr.MetricType == "" {
			tr.MetricType = string(autoscalingv2.AverageValueMetricType)
		}
		if h, ok := so.Status.Health[metricName]; ok && h.NumberOfFailures != nil {
			tr.Failures = *h.NumberOfFailures
		}
		in := coreinput.Trigger{Reported: s.LastSampleTime != nil || s.Error != "", Target: target, ConsecutiveFailures: tr.Failures, Active: s.Active}
		switch {
		case s.Error != "":
			in.Err = errors.New(s.Error)
		case err != nil:
			// Without credentials the target cannot always be read: count the trigger as failing here.
			in.Err = fmt.Errorf("target unknown: %w", err)
		default:
			in.Value, _ = strconv.ParseFloat(s.Value, 64)
		}
		obs.Triggers[i] = in
		r.Triggers = append(r.Triggers, tr)
	}
	if external == 0 {
		return core.ScaledObjectInput{}, fmt.Errorf("only cpu/memory triggers: the HorizontalPodAutoscaler decides from resource metrics")
	}
	res, err := coreinput.Map(so, obs)
	if err != nil {
		return res.Input, err
	}
	if len(res.Waiting) > 0 {
		return res.Input, fmt.Errorf("no current sample yet from %s: the operator holds replicas until every trigger has reported", strings.Join(res.Waiting, ", "))
	}
	return res.Input, nil
}

// scalerTarget builds the trigger's scaler from its metadata alone and reads the target of its metric spec.
// Scalers connect lazily, so nothing is dialled; the scaler is closed again at once.
func scalerTarget(ctx context.Context, so *tidalv1alpha1.ScaledObject, t tidalv1alpha1.ScaleTriggers, i int, opts Options) (*coreinput.Target, string, error) {
	reg := opts.Registry
	if reg == nil {
		return nil, "", fmt.Errorf("no scaler registry")
	}
	cfg := scalers.TriggerConfig{
		Type: t.Type, Name: t.Name, Index: i, Metadata: t.Metadata, MetricType: t.MetricType, ResolvedEnv: opts.Env,
		PollingInterval: so.Spec.GetPollingInterval(),
		ObjectNamespace: so.Namespace, ObjectName: so.Name, ObjectKind: "ScaledObject", Logger: zap.NewNop(),
	}
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := reg.New(bctx, cfg)
	if err != nil {
		return nil, "", err
	}
	defer func() { _ = s.Close(bctx) }()
	for _, spec := range s.MetricSpecs() {
		if t := coreinput.ExternalTarget(spec); t != nil {
			return t, spec.External.Metric.Name, nil
		}
	}
	return nil, "", fmt.Errorf("scaler %q reports no external metric target", t.Type)
}

var reasonText = map[core.Reason]string{
	core.ReasonPaused:          "autoscaling is paused by annotation; the replica count is pinned",
	core.ReasonActivated:       "a trigger became active at zero (or idle): scale to max(minReplicaCount, 1)",
	core.ReasonHPA:             "active (or above the minimum): the HPA math over the triggers decided",
	core.ReasonFallback:        "triggers keep failing past fallback.failureThreshold: fallback replicas took part in the HPA math",
	core.ReasonTriggerError:    "no trigger is active and some fail: Tidal never scales to zero or idle on errors",
	core.ReasonCooldown:        "no trigger is active: waiting for cooldownPeriod since the last activity",
	core.ReasonInitialCooldown: "no trigger is active, but initialCooldownPeriod since creation has not passed",
	core.ReasonScaleToZero:     "no trigger is active past the cooldown: scale to zero",
	core.ReasonScaleToIdle:     "no trigger is active past the cooldown: scale to idleReplicaCount",
	core.ReasonScaleToMin:      "no trigger is active and the target is below minReplicaCount: scale to minReplicaCount",
	core.ReasonInactive:        "no trigger is active and the target is at zero or idle: nothing to do",
	core.ReasonPausedScaleIn:   "the decision would scale in, but the paused-scale-in annotation holds the count",
	core.ReasonPausedScaleOut:  "the decision would scale out, but the paused-scale-out annotation holds the count",
}
