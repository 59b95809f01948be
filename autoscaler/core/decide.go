package core

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Reason says which rule produced a ScaledObject decision.
type Reason string

// Decision reasons.
const (
	// ReasonPaused: paused-replicas (or paused) annotation; the count is pinned.
	ReasonPaused Reason = "Paused"
	// ReasonActivated: a trigger became active while at zero (or idle); scale to max(minReplicas, 1).
	ReasonActivated Reason = "Activated"
	// ReasonHPA: active (or above minimum) and the HPA math decided.
	ReasonHPA Reason = "HPA"
	// ReasonFallback: at least one trigger is in fallback and its fallback count took part in the HPA math.
	ReasonFallback Reason = "Fallback"
	// ReasonTriggerError: no trigger active and some failing; never scale to zero or idle on errors.
	ReasonTriggerError Reason = "TriggerError"
	// ReasonCooldown: inactive, waiting for cooldownPeriod since the last activity before going to zero/idle.
	ReasonCooldown Reason = "Cooldown"
	// ReasonInitialCooldown: inactive, but initialCooldownPeriod since creation has not elapsed.
	ReasonInitialCooldown Reason = "InitialCooldown"
	// ReasonScaleToZero: inactive past the cooldown; scale to zero.
	ReasonScaleToZero Reason = "ScaleToZero"
	// ReasonScaleToIdle: inactive past the cooldown; scale to idleReplicaCount.
	ReasonScaleToIdle Reason = "ScaleToIdle"
	// ReasonScaleToMin: inactive and below minReplicaCount (no idle count); scale to minReplicaCount.
	ReasonScaleToMin Reason = "ScaleToMinReplicas"
	// ReasonInactive: inactive at zero or at the idle count; nothing to do.
	ReasonInactive Reason = "Inactive"
	// ReasonPausedScaleIn: the decision would lower the count, but paused-scale-in holds it.
	ReasonPausedScaleIn Reason = "PausedScaleIn"
	// ReasonPausedScaleOut: the decision would raise the count, but paused-scale-out holds it.
	ReasonPausedScaleOut Reason = "PausedScaleOut"
)

// ScaledObjectInput is a ScaledObject's spec plus the observed state, as plain values.
type ScaledObjectInput struct {
	CurrentReplicas int32
	// StatusReplicas is the scale subresource's status.replicas; nil means CurrentReplicas.
	StatusReplicas *int32
	// MinReplicas is minReplicaCount (KEDA default 0); MaxReplicas is maxReplicaCount (KEDA default 100).
	MinReplicas int32
	MaxReplicas int32
	// IdleReplicas is idleReplicaCount; it must be lower than MinReplicas.
	IdleReplicas *int32
	// CooldownPeriod (KEDA default 300s, see DefaultCooldownPeriod) and InitialCooldownPeriod (default 0).
	CooldownPeriod        time.Duration
	InitialCooldownPeriod time.Duration
	CreatedAt             time.Time
	// Behavior is advanced.horizontalPodAutoscalerConfig.behavior. Unset means the API server's default rules
	// (scale up by max(4 pods, 100%) per 15s, scale down by 100% per 15s after the downscale window), whose
	// periods pace decisions made on every sample (see pacedBehavior).
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior
	// Triggers are the ScaledObject's triggers with their latest sample.
	Triggers []TriggerInput
	// ResourceMetrics are HPA metrics over pods (cpu/memory triggers). They take part in the HPA math (1 <-> N)
	// but, as in KEDA, never in activation.
	ResourceMetrics []Metric
	// Pods are the scale target's pods; needed by ResourceMetrics and by Value targets.
	Pods      []PodInfo
	Modifiers *ScalingModifiers
	Fallback  *Fallback
	// Paused is autoscaling.keda.sh/paused: "true" (hold the current count); PausedReplicas is
	// autoscaling.keda.sh/paused-replicas (pin to that count). PausedReplicas wins when both are set.
	Paused         bool
	PausedReplicas *int32
	// PausedScaleIn and PausedScaleOut are autoscaling.keda.sh/paused-scale-in and paused-scale-out: "true".
	// Triggers are still sampled and the HPA math still runs (its history keeps moving, as an HPA whose behavior
	// selectPolicy is Disabled for that direction does, KEDA's way), but a decision that would lower (raise) the
	// count holds the current one instead, including the steps to and from zero or idle.
	PausedScaleIn  bool
	PausedScaleOut bool
	State          State
	// Config is the HPA controller configuration; nil means DefaultConfig.
	Config *Config
}

// TriggerInput is one trigger's spec and latest sample.
type TriggerInput struct {
	// Name is the trigger's name (used by scalingModifiers formulas and for failure counting).
	Name string
	// MetricType is AverageValue (KEDA's default, also when empty) or Value.
	MetricType autoscalingv2.MetricTargetType
	// Target and ActivationTarget are the trigger's threshold and activation threshold.
	Target           float64
	ActivationTarget float64
	// Value is the sampled metric value (ignored when Err is set).
	Value float64
	// Active, when set, is the scaler's own activity verdict (scalers such as cron decide it themselves);
	// otherwise the trigger is active when Value > ActivationTarget.
	Active *bool
	// Err is the sampling error, if any.
	Err error
}

// Decision is the outcome of Decide.
type Decision struct {
	DesiredReplicas int32
	// Active is the ScaledObject's activity (KEDA's Active condition).
	Active bool
	Reason Reason
	// FallbackActive is true when at least one trigger (or the composite metric) is in fallback.
	FallbackActive bool
	// Conditions are the HPA conditions when the HPA math ran.
	Conditions []Condition
	// Triggers reports each trigger (and, with scalingModifiers, the composite metric last).
	Triggers []TriggerResult
	// NewState is the state to persist once DesiredReplicas has been applied.
	NewState State
}

// CompositeTriggerName names the scalingModifiers composite metric in Decision.Triggers (KEDA's metric name).
const CompositeTriggerName = "composite-metric"

// TriggerResult is one trigger's part in a decision.
type TriggerResult struct {
	Name     string
	Active   bool
	Fallback bool
	// Err is the trigger's sampling error (or the formula's evaluation error for the composite metric).
	Err error
	// Proposal is the trigger's HPA proposal when the HPA math ran and the trigger was valid.
	Proposal *Proposal
}

// Decide makes one ScaledObject decision, in KEDA's order:
//
//  1. Pause: PausedReplicas pins the count, Paused holds it; nothing else runs and the state is unchanged.
//  2. Trigger health: each failing trigger's consecutive-failure count grows, a healthy one's resets to 0; a
//     trigger is in fallback once its count exceeds fallback.failureThreshold.
//  3. Activity: a trigger is active when its value exceeds its activation target (or the scaler says so); the
//     object is active when any trigger is. With scalingModifiers the formula result against
//     scalingModifiers.activationTarget decides instead.
//  4. Activation (0 <-> 1): active at zero (or below minReplicaCount while idle) scales to max(minReplicaCount, 1);
//     inactive past cooldownPeriod since the last activity, and past initialCooldownPeriod since creation,
//     scales to idleReplicaCount or zero; inactive below minReplicaCount (no idle count) scales to
//     minReplicaCount.
//  5. Otherwise the HPA math (1 <-> N) runs on one External metric per trigger (or the composite metric), plus
//     ResourceMetrics, with KEDA's HPA bounds [max(minReplicaCount, 1), maxReplicaCount] and the behavior.
//  6. PausedScaleIn (PausedScaleOut) holds the current count when steps 4-5 would lower (raise) it.
//
// Where Tidal's direct mode deliberately differs from KEDA + HPA:
//   - Errors never scale to zero or idle: an inactive object with a failing trigger stays on the HPA path
//     (which itself refuses to scale down on invalid metrics), with or without fallback.
//   - A trigger in fallback proposes exactly its fallback count to the HPA math (KEDA feeds
//     fallback.replicas*target to the HPA, so the 10% tolerance can keep the current count); fallback works for
//     Value targets too (KEDA: AverageValue only). As in KEDA, fallback never scales up from zero.
//   - A target sitting at its idle count stays there while inactive.
//
// NewState assumes DesiredReplicas is applied; if applying fails, keep the previous State (at worst the HPA
// records one recommendation less). Decide returns an error only for invalid input, naming the field.
func Decide(in ScaledObjectInput, now time.Time) (Decision, error) {
	formula, err := validateScaledObject(&in)
	if err != nil {
		return Decision{}, err
	}
	d := Decision{NewState: cloneState(&in.State)}
	if in.PausedReplicas != nil || in.Paused {
		d.Reason, d.DesiredReplicas = ReasonPaused, in.CurrentReplicas
		if in.PausedReplicas != nil {
			d.DesiredReplicas = *in.PausedReplicas
		}
		return d, nil
	}

	// Trigger health, activity and fallback.
	d.Triggers = make([]TriggerResult, len(in.Triggers), len(in.Triggers)+1)
	d.NewState.Triggers = d.NewState.Triggers[:0]
	failing, active := false, false
	anyFallback := false
	for i := range in.Triggers {
		t := &in.Triggers[i]
		r := &d.Triggers[i]
		r.Name = t.Name
		failures := int32(0)
		if t.Err != nil {
			failing = true
			r.Err = t.Err
			failures = saturatingAdd32(in.State.failures(t.Name), 1)
			r.Fallback = in.Fallback.Triggered(failures)
			anyFallback = anyFallback || r.Fallback
		} else if t.Active != nil {
			r.Active = *t.Active
		} else {
			r.Active = t.Value > t.ActivationTarget
		}
		if in.Modifiers == nil {
			active = active || r.Active
		}
		d.NewState.Triggers = append(d.NewState.Triggers, TriggerHealth{Name: t.Name, ConsecutiveFailures: failures})
	}

	// scalingModifiers: one composite metric replaces the triggers.
	var composite *TriggerResult
	var compositeValue float64
	if in.Modifiers != nil {
		d.Triggers = append(d.Triggers, TriggerResult{Name: CompositeTriggerName})
		composite = &d.Triggers[len(d.Triggers)-1]
		switch {
		case anyFallback:
			composite.Fallback = true
		case failing:
			composite.Err = errors.New("scalingModifiers: a trigger used by the formula failed")
		default:
			v, err := evalModifiers(&in, formula)
			if err != nil {
				composite.Err, failing = err, true
			} else {
				compositeValue = v
				composite.Active = v > in.Modifiers.ActivationTarget
				active = composite.Active
			}
		}
	}
	d.Active = active
	if active {
		t := now
		d.NewState.LastActiveTime = &t
	}

	step := activate(activationInput{
		current:     in.CurrentReplicas,
		minReplicas: in.MinReplicas,
		idle:        in.IdleReplicas,
		active:      active,
		failing:     failing,
		cooldown:    in.CooldownPeriod,
		initialCool: in.InitialCooldownPeriod,
		createdAt:   in.CreatedAt,
		lastActive:  in.State.LastActiveTime,
		now:         now,
	})
	d.Reason = step.reason
	if !step.useHPA {
		d.DesiredReplicas = step.replicas
		holdPausedDirection(&in, &d)
		return d, nil
	}

	in.Behavior = DisablePausedDirections(in.Behavior, in.PausedScaleIn, in.PausedScaleOut)
	hpa, err := runHPA(&in, &d, composite, compositeValue, now)
	if err != nil {
		return Decision{}, err
	}
	d.DesiredReplicas = hpa.DesiredReplicas
	d.Conditions = hpa.Conditions
	d.NewState.HPA = hpa.History
	for i := range d.Triggers {
		if d.Triggers[i].Fallback {
			d.FallbackActive = true
		}
	}
	if d.FallbackActive {
		d.Reason = ReasonFallback
	}
	holdPausedDirection(&in, &d)
	return d, nil
}

// DisablePausedDirections returns b (a copy when it changes) with selectPolicy Disabled for each paused
// direction, as KEDA sets it on the HPA: Decide runs its HPA math with it, and the operator's managed HPA (mode
// hpa) gets it.
func DisablePausedDirections(b *autoscalingv2.HorizontalPodAutoscalerBehavior, in, out bool) *autoscalingv2.HorizontalPodAutoscalerBehavior {
	if !in && !out {
		return b
	}
	if b == nil {
		b = &autoscalingv2.HorizontalPodAutoscalerBehavior{}
	} else {
		b = b.DeepCopy()
	}
	disabled := autoscalingv2.DisabledPolicySelect
	if in {
		if b.ScaleDown == nil {
			b.ScaleDown = &autoscalingv2.HPAScalingRules{}
		}
		b.ScaleDown.SelectPolicy = &disabled
	}
	if out {
		if b.ScaleUp == nil {
			b.ScaleUp = &autoscalingv2.HPAScalingRules{}
		}
		b.ScaleUp.SelectPolicy = &disabled
	}
	return b
}

// holdPausedDirection keeps the current count when the decision goes in a paused direction.
func holdPausedDirection(in *ScaledObjectInput, d *Decision) {
	switch {
	case in.PausedScaleIn && d.DesiredReplicas < in.CurrentReplicas:
		d.DesiredReplicas, d.Reason = in.CurrentReplicas, ReasonPausedScaleIn
	case in.PausedScaleOut && d.DesiredReplicas > in.CurrentReplicas:
		d.DesiredReplicas, d.Reason = in.CurrentReplicas, ReasonPausedScaleOut
	}
}

// runHPA turns the triggers (or the composite metric) into External metrics and runs the HPA math with KEDA's
// HPA bounds: minReplicas max(minReplicaCount, 1), maxReplicas maxReplicaCount.
func runHPA(in *ScaledObjectInput, d *Decision, composite *TriggerResult, compositeValue float64, now time.Time) (HPAResult, error) {
	n := len(in.Triggers)
	if composite != nil {
		n = 1
	}
	metrics := make([]Metric, n, n+len(in.ResourceMetrics))
	targets := make([]resource.Quantity, n)
	values := make([]int64, n)
	fallbackReplicas := make([]int32, n)
	build := func(i int, name string, metricType autoscalingv2.MetricTargetType, target, value float64, fallback bool, err error) {
		targets[i] = resource.Quantity{Format: resource.DecimalSI}
		targets[i].SetMilli(floatToMilli(target))
		spec := autoscalingv2.MetricSpec{
			Type:     autoscalingv2.ExternalMetricSourceType,
			External: &autoscalingv2.ExternalMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: name}},
		}
		if metricType == autoscalingv2.ValueMetricType {
			spec.External.Target = autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: &targets[i]}
		} else {
			spec.External.Target = autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &targets[i]}
		}
		m := Metric{Spec: spec}
		switch {
		case fallback:
			fallbackReplicas[i] = in.Fallback.ReplicasFor(in.CurrentReplicas)
			m.Replicas = &fallbackReplicas[i]
		case err != nil:
			m.Err = err
		default:
			values[i] = floatToMilli(value)
			m.Values = values[i : i+1]
		}
		metrics[i] = m
	}
	if composite != nil {
		build(0, CompositeTriggerName, in.Modifiers.MetricType, in.Modifiers.Target, compositeValue, composite.Fallback, composite.Err)
	} else {
		for i := range in.Triggers {
			t := &in.Triggers[i]
			build(i, t.Name, t.MetricType, t.Target, t.Value, d.Triggers[i].Fallback, t.Err)
		}
	}
	metrics = append(metrics, in.ResourceMetrics...)

	status := in.CurrentReplicas
	if in.StatusReplicas != nil {
		status = *in.StatusReplicas
	}
	res, err := ComputeHPA(HPAInput{
		SpecReplicas:   in.CurrentReplicas,
		StatusReplicas: status,
		MinReplicas:    max(in.MinReplicas, 1),
		MaxReplicas:    in.MaxReplicas,
		Behavior:       pacedBehavior(in.Behavior),
		Metrics:        metrics,
		Pods:           in.Pods,
		History:        in.State.HPA,
		Config:         in.Config,
	}, now)
	if err != nil {
		return HPAResult{}, err
	}
	offset := 0
	if composite != nil {
		offset = len(d.Triggers) - 1
	}
	proposals := make([]Proposal, n)
	for i := 0; i < n && i < len(res.Metrics); i++ {
		if res.Metrics[i].Err == nil {
			proposals[i] = res.Metrics[i].Proposal
			d.Triggers[offset+i].Proposal = &proposals[i]
		}
	}
	return res, nil
}

func evalModifiers(in *ScaledObjectInput, f *Formula) (float64, error) {
	values := make(map[string]float64, len(in.Triggers))
	for i := range in.Triggers {
		values[in.Triggers[i].Name] = in.Triggers[i].Value
	}
	return f.Eval(values)
}

func cloneState(s *State) State {
	out := State{HPA: s.HPA.clone(), Triggers: slices.Clone(s.Triggers)}
	if s.LastActiveTime != nil {
		t := *s.LastActiveTime
		out.LastActiveTime = &t
	}
	return out
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func validMetricType(t autoscalingv2.MetricTargetType) bool {
	return t == "" || t == autoscalingv2.AverageValueMetricType || t == autoscalingv2.ValueMetricType
}

// validateScaledObject checks the input and returns the compiled scalingModifiers formula, if any.
func validateScaledObject(in *ScaledObjectInput) (*Formula, error) {
	switch {
	case in.CurrentReplicas < 0:
		return nil, fmt.Errorf("currentReplicas: must not be negative, got %d", in.CurrentReplicas)
	case in.StatusReplicas != nil && *in.StatusReplicas < 0:
		return nil, fmt.Errorf("statusReplicas: must not be negative, got %d", *in.StatusReplicas)
	case in.MinReplicas < 0:
		return nil, fmt.Errorf("minReplicaCount: must not be negative, got %d", in.MinReplicas)
	case in.MaxReplicas < 1:
		return nil, fmt.Errorf("maxReplicaCount: must be at least 1, got %d", in.MaxReplicas)
	case in.MinReplicas > in.MaxReplicas:
		return nil, fmt.Errorf("minReplicaCount: %d is greater than maxReplicaCount %d", in.MinReplicas, in.MaxReplicas)
	case in.IdleReplicas != nil && *in.IdleReplicas < 0:
		return nil, fmt.Errorf("idleReplicaCount: must not be negative, got %d", *in.IdleReplicas)
	case in.IdleReplicas != nil && *in.IdleReplicas >= in.MinReplicas:
		return nil, fmt.Errorf("idleReplicaCount: %d must be lower than minReplicaCount %d", *in.IdleReplicas, in.MinReplicas)
	case in.CooldownPeriod < 0:
		return nil, fmt.Errorf("cooldownPeriod: must not be negative, got %s", in.CooldownPeriod)
	case in.InitialCooldownPeriod < 0:
		return nil, fmt.Errorf("initialCooldownPeriod: must not be negative, got %s", in.InitialCooldownPeriod)
	case in.PausedReplicas != nil && *in.PausedReplicas < 0:
		return nil, fmt.Errorf("paused-replicas: must not be negative, got %d", *in.PausedReplicas)
	case len(in.Triggers) == 0 && len(in.ResourceMetrics) == 0:
		return nil, errors.New("triggers: at least one trigger is required")
	}
	if err := ValidateBehavior(in.Behavior); err != nil {
		return nil, err
	}
	if in.Fallback != nil {
		if err := in.Fallback.validate(); err != nil {
			return nil, err
		}
	}
	for i := range in.Triggers {
		if err := validateTrigger(in.Triggers, i); err != nil {
			return nil, err
		}
	}
	for i, h := range in.State.Triggers {
		if h.ConsecutiveFailures < 0 {
			return nil, fmt.Errorf("state.triggers[%d] (%q).consecutiveFailures: must not be negative, got %d", i, h.Name, h.ConsecutiveFailures)
		}
	}
	if m := in.Modifiers; m != nil {
		switch {
		case !validMetricType(m.MetricType):
			return nil, fmt.Errorf("scalingModifiers.metricType: unknown value %q (want AverageValue or Value)", m.MetricType)
		case !finite(m.Target) || m.Target < 0.001:
			return nil, fmt.Errorf("scalingModifiers.target: must be a number of at least 0.001 (metrics have milli-unit resolution), got %v", m.Target)
		case !finite(m.ActivationTarget):
			return nil, fmt.Errorf("scalingModifiers.activationTarget: must be a finite number, got %v", m.ActivationTarget)
		}
		names := make([]string, len(in.Triggers))
		for i := range in.Triggers {
			names[i] = in.Triggers[i].Name
		}
		if m.Compiled != nil && m.Compiled.compatible(names) && m.Compiled.Source() == m.Formula {
			return m.Compiled, nil
		}
		return CompileFormula(m.Formula, names)
	}
	return nil, nil
}

func validateTrigger(triggers []TriggerInput, i int) error {
	t := &triggers[i]
	field := func() string { return fmt.Sprintf("triggers[%d] (%q)", i, t.Name) }
	switch {
	case t.Name == "":
		return fmt.Errorf("triggers[%d].name: must be set", i)
	case !validMetricType(t.MetricType):
		return fmt.Errorf("%s.metricType: unknown value %q (want AverageValue or Value)", field(), t.MetricType)
	case !finite(t.Target) || t.Target < 0.001:
		return fmt.Errorf("%s.target: must be a number of at least 0.001 (metrics have milli-unit resolution), got %v", field(), t.Target)
	case !finite(t.ActivationTarget):
		return fmt.Errorf("%s.activationTarget: must be a finite number, got %v", field(), t.ActivationTarget)
	case t.Err == nil && (!finite(t.Value) || t.Value < 0):
		return fmt.Errorf("%s.value: must be a finite non-negative number, got %v", field(), t.Value)
	}
	for j := range i {
		if triggers[j].Name == t.Name {
			return fmt.Errorf("%s.name: duplicate trigger name", field())
		}
	}
	return nil
}

// pacedBehavior returns b, or for nil an empty behavior that resolves to the default rules. The HPA controller
// with no behavior limits each step to max(2×current, 4) per sync, and its 15s sync paces those steps. Decide runs
// on every sample (sub-second with push), where that per-call factor would compound (10 → 20 → 40 within a
// second); the default rules' policy periods, tracked in History.ScaleUpEvents, pace it as the HPA would.
func pacedBehavior(b *autoscalingv2.HorizontalPodAutoscalerBehavior) *autoscalingv2.HorizontalPodAutoscalerBehavior {
	if b != nil {
		return b
	}
	return &autoscalingv2.HorizontalPodAutoscalerBehavior{}
}
