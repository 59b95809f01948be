package scaledobject

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/core"
	"github.com/tidalscale/tidal/autoscaler/coreinput"
	"github.com/tidalscale/tidal/autoscaler/operator"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/autoscaler/scaletarget"
	"github.com/tidalscale/tidal/internal/controller"
)

// HPAName is the managed HPA's name: advanced.horizontalPodAutoscalerConfig.name or tidal-hpa-<name>.
func HPAName(so *tidalv1alpha1.ScaledObject) string {
	if a := so.Spec.Advanced; a != nil && a.HorizontalPodAutoscalerConfig != nil && a.HorizontalPodAutoscalerConfig.Name != "" {
		return a.HorizontalPodAutoscalerConfig.Name
	}
	return "tidal-hpa-" + so.Name
}

// reconcileHPAMode keeps the managed HPA in line with the spec and, like KEDA, handles 0↔1 itself: the HPA
// never scales from or to zero.
func (c *Controller) reconcileHPAMode(ctx context.Context, so *tidalv1alpha1.ScaledObject, status *tidalv1alpha1.ScaledObjectStatus, target scaletarget.Target, current int32, st *objectState) (Result, error) {
	key := samples.Key{Kind: kindScaledObject, Namespace: so.Namespace, Name: so.Name}
	specs := c.opts.Source.MetricSpecs(key)
	if len(specs) == 0 {
		// An HPA without metrics would default to 80% CPU: wait for the triggers' specs.
		controller.SetCondition(&status.Conditions, so.Generation, tidalv1alpha1.ConditionReady, metav1.ConditionUnknown, "WaitingForMetricSpecs", "waiting for the triggers' metric specs")
		return Result{RequeueAfter: time.Second}, c.writeStatus(ctx, so, status)
	}
	if err := c.ensureHPA(ctx, so, target, specs); err != nil {
		return Result{}, err
	}
	status.HpaName = HPAName(so)

	now := c.now()
	c.mu.Lock()
	c.restoreState(operator.LoggerFrom(ctx), so, st, now)
	in, _, waiting := c.decisionInput(so, st, specs, current, current)
	c.mu.Unlock()
	if len(waiting) > 0 {
		return Result{}, c.wait(ctx, so, status, waiting)
	}
	d, err := core.Decide(in, now)
	if err != nil {
		msg := fmt.Sprintf("cannot decide: %v", err)
		controller.SetCondition(&status.Conditions, so.Generation, tidalv1alpha1.ConditionReady, metav1.ConditionFalse, "InvalidSpec", msg)
		return Result{RequeueAfter: retryPermanentProblems}, c.writeStatus(ctx, so, status)
	}
	switch d.Reason {
	case core.ReasonActivated, core.ReasonScaleToZero, core.ReasonScaleToIdle, core.ReasonScaleToMin:
		if d.DesiredReplicas != current {
			if err := c.mayWrite(so); err != nil {
				return Result{}, err
			}
			var trace *tidalv1alpha1.ScaleUpTrace
			if d.DesiredReplicas > current {
				trace = c.scaleUpTrace(time.Time{}, now, current, d.DesiredReplicas, c.publishDemand(ctx, so, status, target, nil, d.DesiredReplicas))
			}
			if _, err := c.opts.Targets.SetReplicas(ctx, target, d.DesiredReplicas); err != nil {
				c.event(so, corev1.EventTypeWarning, ReasonScaleFailed, err.Error())
				return Result{}, err
			}
			if trace != nil {
				t := metav1.NewMicroTime(c.now())
				trace.ScaleTime = &t
				status.LastScaleUp = trace
			}
			c.event(so, corev1.EventTypeNormal, ReasonScaled, fmt.Sprintf("scaled %s %s from %d to %d: %s", target.GVK.Kind, target.Name, current, d.DesiredReplicas, d.Reason))
			operator.LoggerFrom(ctx).Info("scaled", zap.String("target", target.Name), zap.Int32("from", current), zap.Int32("to", d.DesiredReplicas), zap.String("reason", string(d.Reason)))
			r := d.DesiredReplicas
			status.CurrentReplicas = &r
		}
	}
	c.mu.Lock()
	st.core = d.NewState
	c.mu.Unlock()
	// The HorizontalPodAutoscaler keeps its own history; only lastActiveTime matters here.
	status.DecisionState = nil
	setLastActiveTime(status, d)
	c.mu.Lock()
	applyDecisionConditions(status, so.Generation, d, st)
	c.mu.Unlock()
	return Result{RequeueAfter: requeueFor(so, d, now)}, c.writeStatus(ctx, so, status)
}

// desiredHPA renders the managed HPA.
func desiredHPA(so *tidalv1alpha1.ScaledObject, target scaletarget.Target, specs []autoscalingv2.MetricSpec) *autoscalingv2.HorizontalPodAutoscaler {
	minR := max(so.Spec.GetMinReplicaCount(), 1)
	metrics := make([]autoscalingv2.MetricSpec, 0, len(specs))
	for _, s := range specs {
		s = *s.DeepCopy()
		if s.External != nil {
			s.External.Metric.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{LabelScaledObjectName: so.Name}}
		}
		metrics = append(metrics, s)
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{
			Name:      HPAName(so),
			Namespace: so.Namespace,
			Labels:    map[string]string{LabelScaledObjectName: so.Name, "app.kubernetes.io/managed-by": "tidal-operator"},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(so,
				tidalv1alpha1.SchemeGroupVersion.WithKind(kindScaledObject))},
		},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{
				APIVersion: target.GVK.GroupVersion().String(), Kind: target.GVK.Kind, Name: target.Name,
			},
			MinReplicas: &minR,
			MaxReplicas: so.Spec.GetMaxReplicaCount(),
			Metrics:     metrics,
		},
	}
	if a := so.Spec.Advanced; a != nil && a.HorizontalPodAutoscalerConfig != nil {
		hpa.Spec.Behavior = a.HorizontalPodAutoscalerConfig.Behavior.DeepCopy()
	}
	// paused-scale-in/out: KEDA's way, the HPA's selectPolicy is Disabled for that direction. A malformed
	// annotation never gets here (reported by pauseOf).
	scaleIn, scaleOut, _ := coreinput.PausedDirections(so)
	hpa.Spec.Behavior = core.DisablePausedDirections(hpa.Spec.Behavior, scaleIn, scaleOut)
	return hpa
}

func (c *Controller) ensureHPA(ctx context.Context, so *tidalv1alpha1.ScaledObject, target scaletarget.Target, specs []autoscalingv2.MetricSpec) error {
	if err := c.mayWrite(so); err != nil {
		return err
	}
	want := desiredHPA(so, target, specs)
	hpas := c.opts.Kube.AutoscalingV2().HorizontalPodAutoscalers(so.Namespace)
	got, err := hpas.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := hpas.Create(ctx, want, metav1.CreateOptions{FieldManager: operator.FieldManager}); err != nil {
			return fmt.Errorf("create HPA %s: %w", want.Name, err)
		}
		c.event(so, corev1.EventTypeNormal, ReasonHPAManaged, "created HorizontalPodAutoscaler "+want.Name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get HPA %s: %w", want.Name, err)
	}
	if !metav1.IsControlledBy(got, so) {
		return fmt.Errorf("HPA %s exists and is not managed by this ScaledObject", want.Name)
	}
	if apiequality.Semantic.DeepEqual(got.Spec, want.Spec) && apiequality.Semantic.DeepEqual(got.Labels, want.Labels) {
		return nil
	}
	upd := got.DeepCopy()
	upd.Spec = want.Spec
	upd.Labels = want.Labels
	if _, err := hpas.Update(ctx, upd, metav1.UpdateOptions{FieldManager: operator.FieldManager}); err != nil {
		return fmt.Errorf("update HPA %s: %w", want.Name, err)
	}
	return nil
}

// deleteHPA removes the managed HPA, if any (garbage collection would too; deleting it first stops it acting on
// the target while a restore runs).
func (c *Controller) deleteHPA(ctx context.Context, so *tidalv1alpha1.ScaledObject) error {
	if err := c.mayWrite(so); err != nil {
		return err
	}
	hpas := c.opts.Kube.AutoscalingV2().HorizontalPodAutoscalers(so.Namespace)
	got, err := hpas.Get(ctx, HPAName(so), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get HPA %s: %w", HPAName(so), err)
	}
	if !metav1.IsControlledBy(got, so) {
		return nil // somebody else's HPA: never ours to delete
	}
	err = hpas.Delete(ctx, got.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &got.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete HPA %s: %w", got.Name, err)
	}
	return nil
}
