// Package explain answers "why does this ScaledObject have the replica count it has?" for `tidalctl explain`.
//
// It re-runs the scaling core (autoscaler/core.Decide) on the last samples the operator wrote to the object's
// status, with each trigger's target taken from its scaler's metric spec, and reports every trigger's sample
// and proposal, the decision's reason and HPA conditions, and the behavior (policies and stabilization windows)
// that applied. The operator keeps its recommendation history in memory, so the re-run starts without it: while
// a scale-down is being stabilized the operator may hold a higher count than the re-run shows, and the report
// says so.
package explain

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/core"
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
	Notes         []string  `json:"notes,omitempty"`
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
	if d.Reason == core.ReasonHPA && (so.Status.CurrentReplicas == nil || d.DesiredReplicas < *so.Status.CurrentReplicas) {
		r.Notes = append(r.Notes, "the operator's stabilization history is in memory only; this re-run starts without "+
			"it, so during a scale-down stabilization window the operator may hold a higher count than shown")
	}
	return r, nil
}

// decisionInput maps the spec and the status' last samples into core's input, the way the operator does.
func decisionInput(ctx context.Context, so *tidalv1alpha1.ScaledObject, samples []tidalv1alpha1.TriggerStatus, opts Options, r *Report) (core.ScaledObjectInput, error) {
	current := int32(0)
	if so.Status.CurrentReplicas != nil {
		current = *so.Status.CurrentReplicas
	}
	in := core.ScaledObjectInput{
		CurrentReplicas:       current,
		MinReplicas:           r.Min,
		MaxReplicas:           r.Max,
		IdleReplicas:          so.Spec.IdleReplicaCount,
		CooldownPeriod:        seconds(so.Spec.CooldownPeriod, tidalv1alpha1.DefaultCooldownPeriod),
		InitialCooldownPeriod: seconds(so.Spec.InitialCooldownPeriod, 0),
		CreatedAt:             so.CreationTimestamp.Time,
	}
	if so.Status.LastActiveTime != nil {
		t := so.Status.LastActiveTime.Time
		in.State.LastActiveTime = &t
	}
	if a := so.Spec.Advanced; a != nil {
		if a.HorizontalPodAutoscalerConfig != nil {
			in.Behavior = a.HorizontalPodAutoscalerConfig.Behavior
		}
		if m := a.ScalingModifiers; m != nil && m.Formula != "" {
			in.Modifiers = &core.ScalingModifiers{Formula: m.Formula, MetricType: m.MetricType,
				Target: parseFloat(m.Target), ActivationTarget: parseFloat(m.ActivationTarget)}
		}
	}
	if f := so.Spec.Fallback; f != nil {
		in.Fallback = &core.Fallback{FailureThreshold: f.FailureThreshold, Replicas: f.Replicas, Behavior: core.FallbackBehavior(f.Behavior)}
	}
	if p, ok, err := pausedReplicas(so); err != nil {
		return in, err
	} else if ok {
		in.PausedReplicas = &p
	}
	for i, t := range so.Spec.Triggers {
		s := samples[i]
		tr := Trigger{Name: s.Name, Type: t.Type, Value: s.Value, Active: s.Active, Error: s.Error, Sampled: s.LastSampleTime}
		if t.Type == tidalv1alpha1.TriggerTypeCPU || t.Type == tidalv1alpha1.TriggerTypeMemory {
			tr.Resource = true
			r.Triggers = append(r.Triggers, tr)
			continue
		}
		ti := core.TriggerInput{Name: s.Name, MetricType: t.MetricType}
		target, metricName, err := scalerTarget(ctx, so, t, i, opts)
		if err != nil {
			tr.TargetError = err.Error()
		} else {
			ti.Target, ti.MetricType = target.value, target.metricType
			tr.Target = strconv.FormatFloat(target.value, 'f', -1, 64)
		}
		tr.MetricType = string(ti.MetricType)
		if tr.MetricType == "" {
			tr.MetricType = string(autoscalingv2.AverageValueMetricType)
		}
		if h, ok := so.Status.Health[metricName]; ok && h.NumberOfFailures != nil {
			tr.Failures = *h.NumberOfFailures
		}
		switch {
		case s.LastSampleTime == nil && s.Error == "":
			return in, fmt.Errorf("trigger %q has no sample yet; the operator waits for every trigger's first sample", s.Name)
		case s.Error != "":
			ti.Err = fmt.Errorf("%s", s.Error)
			in.State.Triggers = append(in.State.Triggers, core.TriggerHealth{Name: s.Name, ConsecutiveFailures: max(tr.Failures-1, 0)})
		case err != nil:
			ti.Err = fmt.Errorf("target unknown: %w", err)
		default:
			active := s.Active
			ti.Active = &active
			ti.Value = parseFloat(s.Value)
		}
		if ti.Target <= 0 {
			ti.Target = 1
		}
		in.Triggers = append(in.Triggers, ti)
		r.Triggers = append(r.Triggers, tr)
	}
	if len(in.Triggers) == 0 {
		return in, fmt.Errorf("only cpu/memory triggers: the HorizontalPodAutoscaler decides from resource metrics")
	}
	return in, nil
}

type metricTarget struct {
	value      float64
	metricType autoscalingv2.MetricTargetType
}

// scalerTarget builds the trigger's scaler from its metadata alone and reads the target of its metric spec.
// Scalers connect lazily, so nothing is dialled; the scaler is closed again at once.
func scalerTarget(ctx context.Context, so *tidalv1alpha1.ScaledObject, t tidalv1alpha1.ScaleTriggers, i int, opts Options) (metricTarget, string, error) {
	reg := opts.Registry
	if reg == nil {
		return metricTarget{}, "", fmt.Errorf("no scaler registry")
	}
	cfg := scalers.TriggerConfig{
		Type: t.Type, Name: t.Name, Index: i, Metadata: t.Metadata, MetricType: t.MetricType, ResolvedEnv: opts.Env,
		PollingInterval: seconds(so.Spec.PollingInterval, tidalv1alpha1.DefaultPollingInterval),
		ObjectNamespace: so.Namespace, ObjectName: so.Name, ObjectKind: "ScaledObject", Logger: zap.NewNop(),
	}
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := reg.New(bctx, cfg)
	if err != nil {
		return metricTarget{}, "", err
	}
	defer func() { _ = s.Close(bctx) }()
	for _, spec := range s.MetricSpecs() {
		if spec.External == nil {
			continue
		}
		tg := spec.External.Target
		switch {
		case tg.Type == autoscalingv2.ValueMetricType && tg.Value != nil:
			return metricTarget{tg.Value.AsApproximateFloat64(), autoscalingv2.ValueMetricType}, spec.External.Metric.Name, nil
		case tg.AverageValue != nil:
			return metricTarget{tg.AverageValue.AsApproximateFloat64(), autoscalingv2.AverageValueMetricType}, spec.External.Metric.Name, nil
		}
	}
	return metricTarget{}, "", fmt.Errorf("scaler %q reports no external metric target", t.Type)
}

// pausedReplicas reads the paused-replicas annotation (Tidal's or KEDA's spelling).
func pausedReplicas(so *tidalv1alpha1.ScaledObject) (int32, bool, error) {
	for _, name := range []string{tidalv1alpha1.PausedReplicasAnnotation, tidalv1alpha1.KEDAPausedReplicasAnnotation} {
		v, ok := so.Annotations[name]
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			return 0, false, fmt.Errorf("metadata.annotations[%s]: want a non-negative integer, got %q", name, v)
		}
		return int32(n), true, nil
	}
	return 0, false, nil
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
}

func seconds(p *int32, def int32) time.Duration {
	v := def
	if p != nil {
		v = *p
	}
	return time.Duration(v) * time.Second
}

func parseFloat(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return f
}
