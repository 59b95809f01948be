// Package coreinput is the one mapping from a ScaledObject and its triggers' latest samples to autoscaler/core's
// input. The operator decides with it and `tidalctl explain` re-runs it, so explain gives the operator's answer
// by construction. Defaults come from api/v1alpha1's accessors.
//
// A decision is made on current data only: a trigger with no report (sample or failure) of the object's
// current generation, or with a sample but no metric spec to read its target from, holds the decision; Map
// names it in Result.Waiting and the caller keeps the replica count as it is. Such a trigger is never counted
// as inactive with value zero, and its target is never guessed.
package coreinput

import (
	"fmt"
	"strconv"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/core"
	"github.com/tidalscale/tidal/autoscaler/triggers"
)

// errorTarget stands in for the target of a failing trigger whose metric spec is unknown (its scaler could not
// be built). The core ignores a failing trigger's value, and a fallback proposes replicas, not a metric, so the
// number only satisfies validation; it never scales anything.
const errorTarget = 1

// Target is the threshold of a trigger's metric spec.
type Target struct {
	Value float64
	Type  autoscalingv2.MetricTargetType
}

// Trigger is one trigger's latest report for the object's current generation.
type Trigger struct {
	// Reported is false while the trigger has neither a sample nor a failure of the current generation.
	Reported bool
	Value    float64
	Active   bool
	// Err is the latest sample's error (or the build error); Value and Active are then ignored.
	Err                 error
	ConsecutiveFailures int32
	// Target is read from the trigger's metric spec; nil when the source has not reported one.
	Target *Target
}

// Observed is what the caller observed besides the spec.
type Observed struct {
	// CurrentReplicas is the target's spec.replicas; StatusReplicas its status.replicas when known.
	CurrentReplicas int32
	StatusReplicas  *int32
	// State is the state of earlier decisions (core.Decision.NewState).
	State core.State
	// Triggers are indexed like spec.triggers; missing entries have not reported. cpu and memory triggers are
	// skipped: they take part in mode hpa only, through the HPA.
	Triggers []Trigger
}

// Result is the core's input, or the triggers the decision waits for.
type Result struct {
	Input core.ScaledObjectInput
	// Waiting names the triggers that hold the decision; Input must not be decided on while it is non-empty.
	Waiting []string
}

// Map builds the core's input. It fails only on a malformed pause annotation (paused-replicas,
// paused-scale-in, paused-scale-out).
func Map(so *tidalv1alpha1.ScaledObject, obs Observed) (Result, error) {
	spec := &so.Spec
	in := core.ScaledObjectInput{
		CurrentReplicas:       obs.CurrentReplicas,
		StatusReplicas:        obs.StatusReplicas,
		MinReplicas:           spec.GetMinReplicaCount(),
		MaxReplicas:           spec.GetMaxReplicaCount(),
		IdleReplicas:          spec.IdleReplicaCount,
		CooldownPeriod:        spec.GetCooldownPeriod(),
		InitialCooldownPeriod: spec.GetInitialCooldownPeriod(),
		CreatedAt:             so.CreationTimestamp.Time,
		State:                 obs.State,
	}
	if in.State.LastActiveTime == nil && so.Status.LastActiveTime != nil {
		// After a restart the cooldown continues from the persisted last activity.
		t := so.Status.LastActiveTime.Time
		in.State.LastActiveTime = &t
	}
	if a := spec.Advanced; a != nil {
		if a.HorizontalPodAutoscalerConfig != nil {
			in.Behavior = a.HorizontalPodAutoscalerConfig.Behavior
		}
		if m := a.ScalingModifiers; m != nil && m.Formula != "" {
			in.Modifiers = &core.ScalingModifiers{Formula: m.Formula, MetricType: m.MetricType,
				Target: parseFloat(m.Target), ActivationTarget: parseFloat(m.ActivationTarget)}
		}
	}
	if f := spec.Fallback; f != nil {
		in.Fallback = &core.Fallback{FailureThreshold: f.FailureThreshold, Replicas: f.Replicas, Behavior: core.FallbackBehavior(f.GetBehavior())}
	}
	paused, err := PausedReplicas(so)
	if err != nil {
		return Result{Input: in}, err
	}
	in.PausedReplicas = paused
	if in.PausedScaleIn, in.PausedScaleOut, err = PausedDirections(so); err != nil {
		return Result{Input: in}, err
	}

	var res Result
	// The core counts a failure per decision; the source counts per sample. Seed the core with the source's
	// count so repeated decisions on one failed sample do not count it again.
	in.State.Triggers = nil
	for i, t := range spec.Triggers {
		if t.Type == tidalv1alpha1.TriggerTypeCPU || t.Type == tidalv1alpha1.TriggerTypeMemory {
			continue
		}
		name := triggers.Name(t, i)
		var tr Trigger
		if i < len(obs.Triggers) {
			tr = obs.Triggers[i]
		}
		ti := core.TriggerInput{Name: name, MetricType: t.MetricType}
		switch {
		case !tr.Reported:
			res.Waiting = append(res.Waiting, name)
			continue
		case tr.Err != nil:
			ti.Err = tr.Err
			ti.Target = errorTarget
			in.State.Triggers = append(in.State.Triggers, core.TriggerHealth{Name: name, ConsecutiveFailures: max(tr.ConsecutiveFailures-1, 0)})
		case tr.Target == nil:
			res.Waiting = append(res.Waiting, name)
			continue
		default:
			active := tr.Active
			ti.Active = &active
			ti.Value = tr.Value
		}
		if tr.Target != nil {
			ti.Target, ti.MetricType = tr.Target.Value, tr.Target.Type
		}
		in.Triggers = append(in.Triggers, ti)
	}
	res.Input = in
	return res, nil
}

// ExternalTarget reads the target of an External metric spec; nil for any other spec.
func ExternalTarget(spec autoscalingv2.MetricSpec) *Target {
	if spec.External == nil {
		return nil
	}
	t := spec.External.Target
	switch {
	case t.Type == autoscalingv2.ValueMetricType && t.Value != nil:
		return &Target{Value: t.Value.AsApproximateFloat64(), Type: autoscalingv2.ValueMetricType}
	case t.AverageValue != nil:
		return &Target{Value: t.AverageValue.AsApproximateFloat64(), Type: autoscalingv2.AverageValueMetricType}
	}
	return nil
}

// PausedReplicas reads the paused-replicas annotation (Tidal's or KEDA's spelling); nil when absent. A
// malformed value is an error naming the annotation.
func PausedReplicas(so *tidalv1alpha1.ScaledObject) (*int32, error) {
	for _, name := range []string{tidalv1alpha1.PausedReplicasAnnotation, tidalv1alpha1.KEDAPausedReplicasAnnotation} {
		v, ok := so.Annotations[name]
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("metadata.annotations[%s]: want a non-negative integer, got %q", name, v)
		}
		r := int32(n)
		return &r, nil
	}
	return nil, nil
}

// PausedDirections reads the paused-scale-in and paused-scale-out annotations (Tidal's or KEDA's spelling): a
// direction is paused when either spelling is "true". A value that is not a boolean is an error naming the
// annotation.
func PausedDirections(so *tidalv1alpha1.ScaledObject) (scaleIn, scaleOut bool, err error) {
	read := func(names ...string) (bool, error) {
		paused := false
		for _, name := range names {
			v, ok := so.Annotations[name]
			if !ok {
				continue
			}
			b, perr := strconv.ParseBool(v)
			if perr != nil {
				return false, fmt.Errorf("metadata.annotations[%s]: want true or false, got %q", name, v)
			}
			paused = paused || b
		}
		return paused, nil
	}
	if scaleIn, err = read(tidalv1alpha1.PausedScaleInAnnotation, tidalv1alpha1.KEDAPausedScaleInAnnotation); err != nil {
		return false, false, err
	}
	if scaleOut, err = read(tidalv1alpha1.PausedScaleOutAnnotation, tidalv1alpha1.KEDAPausedScaleOutAnnotation); err != nil {
		return false, false, err
	}
	return scaleIn, scaleOut, nil
}

// parseFloat reads a decimal the CRD schema has already validated; an empty string is zero.
func parseFloat(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return f
}
