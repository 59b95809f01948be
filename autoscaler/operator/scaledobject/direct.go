package scaledobject

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/core"
	"github.com/tidalscale/tidal/autoscaler/coreinput"
	"github.com/tidalscale/tidal/autoscaler/operator"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/autoscaler/scaletarget"
	"github.com/tidalscale/tidal/internal/controller"
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
	c.restoreState(log, so, st, now)
	in, sampled, waiting := c.decisionInput(so, st, c.opts.Source.MetricSpecs(key), current, statusReplicas)
	c.mu.Unlock()
	if len(waiting) > 0 {
		// No current sample (or metric spec) for some trigger: hold the target rather than guess. The first
		// sample enqueues the object again.
		return Result{}, c.wait(ctx, so, status, waiting)
	}
	d, err := core.Decide(in, now)
	if err != nil {
		// Invalid input is a spec problem the webhook/CEL should have caught: report it, do not retry hot.
		msg := fmt.Sprintf("cannot decide: %v", err)
		c.event(so, corev1.EventTypeWarning, "InvalidSpec", msg)
		controller.SetCondition(&status.Conditions, so.Generation, tidalv1alpha1.ConditionReady, metav1.ConditionFalse, "InvalidSpec", msg)
		return Result{RequeueAfter: retryPermanentProblems}, c.writeStatus(ctx, so, status)
	}

	desired := d.DesiredReplicas
	if desired != current {
		var trace *tidalv1alpha1.ScaleUpTrace
		if desired > current {
			trace = c.scaleUpTrace(sampled, now, current, desired, c.publishDemand(ctx, so, status, target, scale, desired))
		}
		if _, err := c.opts.Targets.UpdateReplicas(ctx, target, scale, desired, func() error { return c.mayWrite(so) }); err != nil {
			if !errors.Is(err, operator.ErrNotOwner) {
				c.event(so, corev1.EventTypeWarning, ReasonScaleFailed, err.Error())
			}
			return Result{}, err
		}
		if trace != nil {
			t := metav1.NewMicroTime(c.now())
			trace.ScaleTime = &t
			status.LastScaleUp = trace
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
	if ds, changed := coreinput.PersistState(so, d.NewState, now); changed {
		status.DecisionState = ds
	}

	status.DesiredReplicas = &desired
	setLastActiveTime(status, d)
	c.mu.Lock()
	applyDecisionConditions(status, so.Generation, d, st)
	c.mu.Unlock()
	return Result{RequeueAfter: requeueFor(so, d, now)}, c.writeStatus(ctx, so, status)
}

// restoreState loads the state of earlier decisions from the status the first time the object is decided on
// by this controller (after an operator start or a leader change); c.mu is held. A decision state the operator
// would not have written is ignored with a warning: the decision then starts from status.lastActiveTime alone,
// which never scales to zero early, and the HPA math holds a scale-down for one stabilization window.
func (c *Controller) restoreState(log *zap.Logger, so *tidalv1alpha1.ScaledObject, st *objectState, now time.Time) {
	if st.restored {
		return
	}
	st.restored = true
	s, err := coreinput.RestoreState(so, now)
	if err != nil {
		log.Warn("ignoring the persisted decision state", zap.Error(err))
	}
	st.core = s
}

// decisionInput maps the spec, the latest samples of the current generation and the remembered core state into
// core's input (coreinput.Map, the mapping tidalctl explain re-runs). sampled is the time of the newest sample;
// waiting names the triggers without a current sample or metric spec, which hold the decision.
func (c *Controller) decisionInput(so *tidalv1alpha1.ScaledObject, st *objectState, specs []autoscalingv2.MetricSpec, current, statusReplicas int32) (in core.ScaledObjectInput, sampled time.Time, waiting []string) {
	targets := map[string]*coreinput.Target{}
	for _, s := range specs {
		if t := coreinput.ExternalTarget(s); t != nil {
			targets[s.External.Metric.Name] = t
		}
	}
	obs := coreinput.Observed{CurrentReplicas: current, StatusReplicas: &statusReplicas, State: st.core,
		Triggers: make([]coreinput.Trigger, len(so.Spec.Triggers))}
	for i := range so.Spec.Triggers {
		ts, ok := st.triggers[i]
		switch {
		case ok && ts.Reported() && ts.Generation == so.Generation:
			tr := coreinput.Trigger{Reported: true, Active: ts.Active, Err: ts.Err, ConsecutiveFailures: int32(ts.ConsecutiveFailures)}
			if len(ts.Samples) > 0 {
				tr.Value = ts.Samples[0].Value
				tr.Target = targets[ts.Samples[0].MetricName]
			}
			if ts.Err == nil && ts.SampledAt.After(sampled) {
				sampled = ts.SampledAt
			}
			obs.Triggers[i] = tr
		case st.reg.Err() != nil:
			obs.Triggers[i] = coreinput.Trigger{Reported: true, Err: st.reg.Err()}
		}
	}
	// A malformed pause annotation was reported before the decision; without it the mapping cannot fail.
	res, _ := coreinput.Map(so, obs)
	return res.Input, sampled, res.Waiting
}

// requeueFor asks to look again when time alone can change the decision: the end of a cooldown, or the
// stabilization window of a pending scale-down.
func requeueFor(so *tidalv1alpha1.ScaledObject, d core.Decision, now time.Time) time.Duration {
	switch d.Reason {
	case core.ReasonCooldown, core.ReasonInitialCooldown:
		if d.NewState.LastActiveTime != nil {
			cool := so.Spec.GetCooldownPeriod()
			if wait := d.NewState.LastActiveTime.Add(cool).Sub(now); wait > 0 {
				return wait + 50*time.Millisecond
			}
		}
		return time.Second
	}
	// Stabilization windows and rate policies depend on time too; a sample per pollingInterval re-evaluates
	// them, and this bounds the wait when samples are rarer.
	return so.Spec.GetPollingInterval()
}

// wait holds the target as it is while some triggers have no current sample or metric spec, and says so in the
// Ready condition and, once per generation and set of triggers, in an event.
func (c *Controller) wait(ctx context.Context, so *tidalv1alpha1.ScaledObject, status *tidalv1alpha1.ScaledObjectStatus, waiting []string) error {
	msg := "holding replicas: waiting for a sample of the current generation from " + strings.Join(waiting, ", ")
	prev := meta.FindStatusCondition(so.Status.Conditions, tidalv1alpha1.ConditionReady)
	if prev == nil || prev.Reason != ReasonWaiting || prev.Message != msg || prev.ObservedGeneration != so.Generation {
		c.event(so, corev1.EventTypeNormal, ReasonWaiting, msg)
	}
	controller.SetCondition(&status.Conditions, so.Generation, tidalv1alpha1.ConditionReady, metav1.ConditionUnknown, ReasonWaiting, msg)
	return c.writeStatus(ctx, so, status)
}
