package scaledobject

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/core"
	"github.com/tidalscale/tidal/autoscaler/operator"
	"github.com/tidalscale/tidal/internal/controller"
)

// sampleTimeRefresh bounds how stale status.triggers[].lastSampleTime may be while nothing else changes.
const sampleTimeRefresh = 5 * time.Minute

// writeStatus updates status only when it changed, so reconciles triggered by our own writes settle.
func (c *Controller) writeStatus(ctx context.Context, so *tidalv1alpha1.ScaledObject, status *tidalv1alpha1.ScaledObjectStatus) error {
	status.ObservedGeneration = so.Generation
	if apiequality.Semantic.DeepEqual(&so.Status, status) {
		return nil
	}
	if err := c.mayWrite(so); err != nil {
		return err
	}
	out := so.DeepCopy()
	out.Status = *status
	_, err := c.opts.Tidal.TidalV1alpha1().ScaledObjects(so.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{FieldManager: operator.FieldManager})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		c.runner.Enqueue(so.Namespace + "/" + so.Name) // a newer object is on its way; look again
		return nil
	}
	if err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}

// setLastActiveTime persists the cooldown's start. While a trigger stays active the time moves on every
// decision; writing it each time would cost a status write per sample, so it is refreshed only every
// sampleTimeRefresh. That is safe because the decision that ends the activity sets Active=False and writes the
// exact time, and a restore (coreinput.RestoreState) takes an object whose Active condition is True as active
// until it starts.
func setLastActiveTime(status *tidalv1alpha1.ScaledObjectStatus, d core.Decision) {
	t := d.NewState.LastActiveTime
	if t == nil {
		return
	}
	if prev := status.LastActiveTime; d.Active && prev != nil && t.Sub(prev.Time) < sampleTimeRefresh && !t.Before(prev.Time) {
		return
	}
	at := metav1.NewTime(*t)
	status.LastActiveTime = &at
}

// fillTriggerStatus copies the latest sample of each trigger into status.triggers and status.health. Errors
// are scaler errors, which never carry a credential (scalers.TriggerConfig.Errorf redacts them).
func fillTriggerStatus(status *tidalv1alpha1.ScaledObjectStatus, so *tidalv1alpha1.ScaledObject, st *objectState) {
	types := make([]string, 0, len(so.Spec.Triggers))
	auths := []string{}
	previous := map[string]tidalv1alpha1.TriggerStatus{}
	for _, t := range status.Triggers {
		previous[t.Name] = t
	}
	status.Triggers = nil
	status.ExternalMetricNames = nil
	status.ResourceMetricNames = nil
	health := map[string]tidalv1alpha1.HealthStatus{}
	for i, t := range so.Spec.Triggers {
		types = append(types, t.Type)
		if t.AuthenticationRef != nil {
			auths = append(auths, t.AuthenticationRef.Name)
		}
		ts := tidalv1alpha1.TriggerStatus{Name: triggerName(t, i), Type: t.Type}
		state, ok := st.triggers[i]
		switch {
		case ok:
			ts.Active = state.Active
			if len(state.Samples) > 0 {
				ts.Value = strconv.FormatFloat(state.Samples[0].Value, 'f', -1, 64)
			}
			if state.Err != nil {
				ts.Error = state.Err.Error()
			}
			if !state.SampledAt.IsZero() {
				t := metav1.NewTime(state.SampledAt)
				ts.LastSampleTime = &t
				// An unchanged sample refreshes lastSampleTime only every sampleTimeRefresh, so 10,000 objects
				// polled every 30 s do not write their status 333 times a second to say nothing new.
				if p, ok := previous[ts.Name]; ok && p.LastSampleTime != nil && p.Value == ts.Value &&
					p.Active == ts.Active && p.Error == ts.Error && state.SampledAt.Sub(p.LastSampleTime.Time) < sampleTimeRefresh {
					ts.LastSampleTime = p.LastSampleTime
				}
			}
			if t.Type == tidalv1alpha1.TriggerTypeCPU || t.Type == tidalv1alpha1.TriggerTypeMemory {
				status.ResourceMetricNames = append(status.ResourceMetricNames, t.Type)
			} else {
				status.ExternalMetricNames = append(status.ExternalMetricNames, state.MetricNames...)
			}
			for _, m := range state.MetricNames {
				n := int32(state.ConsecutiveFailures)
				h := tidalv1alpha1.HealthStatus{NumberOfFailures: &n, Status: tidalv1alpha1.HealthStatusHappy}
				if state.Err != nil {
					h.Status = tidalv1alpha1.HealthStatusFailing
				}
				health[m] = h
			}
		case st.reg.Err() != nil:
			ts.Error = st.reg.Err().Error()
		}
		status.Triggers = append(status.Triggers, ts)
	}
	if len(health) > 0 {
		status.Health = health
	}
	sort.Strings(auths)
	status.TriggersTypes = strings.Join(types, ",")
	status.AuthenticationsTypes = strings.Join(auths, ",")
}

// applyDecisionConditions sets Ready, Active and Fallback from a core decision.
func applyDecisionConditions(status *tidalv1alpha1.ScaledObjectStatus, gen int64, d core.Decision, st *objectState) {
	failing := []string{}
	for _, t := range d.Triggers {
		if t.Err != nil {
			failing = append(failing, t.Name)
		}
	}
	switch {
	case st.reg.Err() != nil:
		controller.SetCondition(&status.Conditions, gen, tidalv1alpha1.ConditionReady, metav1.ConditionFalse, ReasonTriggerInvalid, st.reg.Err().Error())
	case len(failing) > 0:
		controller.SetCondition(&status.Conditions, gen, tidalv1alpha1.ConditionReady, metav1.ConditionFalse, ReasonTriggerFailing, "failing triggers: "+strings.Join(failing, ", "))
	case st.reg.Degraded != nil:
		// Scaling goes on with the last values the store returned; Ready says the store is failing.
		controller.SetCondition(&status.Conditions, gen, tidalv1alpha1.ConditionReady, metav1.ConditionFalse, ReasonSecretStoreDegraded, st.reg.Degraded.Error())
	default:
		controller.SetCondition(&status.Conditions, gen, tidalv1alpha1.ConditionReady, metav1.ConditionTrue, ReasonReady, "ScaledObject is defined correctly and is ready for scaling")
	}
	if d.Active {
		controller.SetCondition(&status.Conditions, gen, tidalv1alpha1.ConditionActive, metav1.ConditionTrue, "ScalerActive", "scaling is performed because triggers are active")
	} else {
		controller.SetCondition(&status.Conditions, gen, tidalv1alpha1.ConditionActive, metav1.ConditionFalse, "ScalerNotActive", "no trigger is active: "+string(d.Reason))
	}
	if d.FallbackActive {
		controller.SetCondition(&status.Conditions, gen, tidalv1alpha1.ConditionFallback, metav1.ConditionTrue, ReasonFallback, "at least one trigger is failing past fallback.failureThreshold; fallback replicas are in use")
	} else {
		controller.SetCondition(&status.Conditions, gen, tidalv1alpha1.ConditionFallback, metav1.ConditionFalse, "NoFallbackFound", "no fallback is in effect")
	}
}
