package scaledobject

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/core"
	"github.com/tidalscale/tidal/autoscaler/operator"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/autoscaler/scaletarget"
)

// reconcileDirect decides replicas in-process with autoscaler/core and writes /scale.
func (c *Controller) reconcileDirect(ctx context.Context, so *tidalv1alpha1.ScaledObject, status *tidalv1alpha1.ScaledObjectStatus, target scaletarget.Target, scale *autoscalingv1.Scale, st *objectState) (Result, error) {
	current, statusReplicas := scale.Spec.Replicas, scale.Status.Replicas
	log := operator.LoggerFrom(ctx)
	if status.HpaName != "" { // switched from mode hpa: the HPA must stop acting on the target
		if err := c.deleteHPA(ctx, so); err != nil {
			return Result{}, err
		}
		status.HpaName = ""
	}
	now := c.now()
	key := samples.Key{Kind: kindScaledObject, Namespace: so.Namespace, Name: so.Name}

	c.mu.Lock()
	in, sampled, ready := c.decisionInput(so, st, c.opts.Source.MetricSpecs(key), current, statusReplicas)
	c.mu.Unlock()
	if !ready {
		// No sample yet for some trigger: keep the target as it is rather than guess. The first sample
		// enqueues the object again.
		setCondition(status, so.Generation, tidalv1alpha1.ConditionReady, metav1.ConditionUnknown, "WaitingForSamples", "waiting for the first sample of every trigger")
		return Result{}, c.writeStatus(ctx, so, status)
	}
	d, err := core.Decide(in, now)
	if err != nil {
		// Invalid input is a spec problem the webhook/CEL should have caught: report it, do not retry hot.
		msg := fmt.Sprintf("cannot decide: %v", err)
		c.event(so, corev1.EventTypeWarning, "InvalidSpec", msg)
		setCondition(status, so.Generation, tidalv1alpha1.ConditionReady, metav1.ConditionFalse, "InvalidSpec", msg)
		return Result{RequeueAfter: retryPermanentProblems}, c.writeStatus(ctx, so, status)
	}

	desired := d.DesiredReplicas
	if desired != current {
		if _, err := c.opts.Targets.UpdateReplicas(ctx, target, scale, desired); err != nil {
			c.event(so, corev1.EventTypeWarning, ReasonScaleFailed, err.Error())
			return Result{}, err
		}
		var since time.Duration
		if !sampled.IsZero() {
			since = now.Sub(sampled)
		}
		c.opts.Metrics.ObserveScale(current, desired, string(d.Reason), since)
		msg := fmt.Sprintf("scaled %s %s from %d to %d: %s", target.GVK.Kind, target.Name, current, desired, d.Reason)
		c.event(so, corev1.EventTypeNormal, ReasonScaled, msg)
		log.Info("scaled", zap.String("target", target.Name), zap.Int32("from", current), zap.Int32("to", desired),
			zap.String("reason", string(d.Reason)), zap.Duration("sinceSample", since))
		status.CurrentReplicas = &desired
	}
	c.mu.Lock()
	st.core = d.NewState
	c.mu.Unlock()

	status.DesiredReplicas = &desired
	if d.NewState.LastActiveTime != nil {
		t := metav1.NewTime(*d.NewState.LastActiveTime)
		status.LastActiveTime = &t
	}
	c.mu.Lock()
	applyDecisionConditions(status, so.Generation, d, st)
	c.mu.Unlock()
	return Result{RequeueAfter: requeueFor(so, d, now)}, c.writeStatus(ctx, so, status)
}

// decisionInput maps the spec, the latest samples and the remembered core state into core's input. sampled is
// the time of the newest sample; ready is false until every buildable trigger has reported once.
func (c *Controller) decisionInput(so *tidalv1alpha1.ScaledObject, st *objectState, specs []autoscalingv2.MetricSpec, current, statusReplicas int32) (in core.ScaledObjectInput, sampled time.Time, ready bool) {
	targets := map[string]autoscalingv2.MetricSpec{}
	for _, s := range specs {
		if s.External != nil {
			targets[s.External.Metric.Name] = s
		}
	}
	in = core.ScaledObjectInput{
		CurrentReplicas:       current,
		StatusReplicas:        &statusReplicas,
		MinReplicas:           derefOr(so.Spec.MinReplicaCount, tidalv1alpha1.DefaultMinReplicaCount),
		MaxReplicas:           derefOr(so.Spec.MaxReplicaCount, tidalv1alpha1.DefaultMaxReplicaCount),
		IdleReplicas:          so.Spec.IdleReplicaCount,
		CooldownPeriod:        time.Duration(derefOr(so.Spec.CooldownPeriod, tidalv1alpha1.DefaultCooldownPeriod)) * time.Second,
		InitialCooldownPeriod: time.Duration(derefOr(so.Spec.InitialCooldownPeriod, 0)) * time.Second,
		CreatedAt:             so.CreationTimestamp.Time,
		State:                 st.core,
	}
	if st.core.LastActiveTime == nil && so.Status.LastActiveTime != nil {
		// After an operator restart the cooldown continues from the persisted last activity.
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
	ready = true
	// The core counts a failure per decision; the source counts per sample. Seed the core with the source's count
	// so repeated reconciles of one failed sample do not count it again.
	in.State.Triggers = nil
	for i, t := range so.Spec.Triggers {
		if t.Type == tidalv1alpha1.TriggerTypeCPU || t.Type == tidalv1alpha1.TriggerTypeMemory {
			continue // resource metrics take part in mode hpa only; see package doc
		}
		name := triggerName(t, i)
		ti := core.TriggerInput{Name: name, MetricType: t.MetricType}
		ts, ok := st.triggers[i]
		switch {
		case len(st.buildErrs) > 0 && !ok:
			ti.Err = st.buildErrs[0]
		case !ok:
			ready = false
			continue
		case ts.Err != nil:
			ti.Err = ts.Err
			in.State.Triggers = append(in.State.Triggers, core.TriggerHealth{Name: name, ConsecutiveFailures: int32(max(ts.ConsecutiveFailures-1, 0))})
		default:
			active := ts.Active
			ti.Active = &active
			if len(ts.Samples) > 0 {
				ti.Value = ts.Samples[0].Value
				if spec, ok := targets[ts.Samples[0].MetricName]; ok {
					ti.Target, ti.MetricType = externalTarget(spec)
				}
			}
			if ts.SampledAt.After(sampled) {
				sampled = ts.SampledAt
			}
		}
		if ti.Target <= 0 {
			ti.Target = 1 // a trigger that failed before reporting a target: any positive target keeps the math valid
		}
		in.Triggers = append(in.Triggers, ti)
	}
	if pausedReplicas, ok := pausedReplicasOf(so); ok {
		in.PausedReplicas = &pausedReplicas
	}
	return in, sampled, ready
}

func externalTarget(spec autoscalingv2.MetricSpec) (float64, autoscalingv2.MetricTargetType) {
	t := spec.External.Target
	switch {
	case t.Type == autoscalingv2.ValueMetricType && t.Value != nil:
		return t.Value.AsApproximateFloat64(), autoscalingv2.ValueMetricType
	case t.AverageValue != nil:
		return t.AverageValue.AsApproximateFloat64(), autoscalingv2.AverageValueMetricType
	}
	return 1, autoscalingv2.AverageValueMetricType
}

// requeueFor asks to look again when time alone can change the decision: the end of a cooldown, or the
// stabilization window of a pending scale-down.
func requeueFor(so *tidalv1alpha1.ScaledObject, d core.Decision, now time.Time) time.Duration {
	switch d.Reason {
	case core.ReasonCooldown, core.ReasonInitialCooldown:
		if d.NewState.LastActiveTime != nil {
			cool := time.Duration(derefOr(so.Spec.CooldownPeriod, tidalv1alpha1.DefaultCooldownPeriod)) * time.Second
			if wait := d.NewState.LastActiveTime.Add(cool).Sub(now); wait > 0 {
				return wait + 50*time.Millisecond
			}
		}
		return time.Second
	}
	// Stabilization windows and rate policies depend on time too; a sample per pollingInterval re-evaluates
	// them, and this bounds the wait when samples are rarer.
	return time.Duration(pollingInterval(so)) * time.Second
}

func derefOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}
