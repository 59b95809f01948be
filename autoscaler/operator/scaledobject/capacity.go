package scaledobject

import (
	"context"
	"time"

	"go.uber.org/zap"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator"
	"github.com/tidalscale/tidal/autoscaler/operator/capacity"
	"github.com/tidalscale/tidal/autoscaler/scaletarget"
)

// publishDemand announces a scale-up to desired replicas before /scale is written (the demand signal, see
// autoscaler/operator/capacity), and returns the CapacityRequest's name ("" when none was written). It never
// holds the scale-up back: a failure is logged and scaling goes on.
//
// The request carries the workload's placement: spec.placement, else the target's placement annotations, read
// from the same GET of the target that yields its pod template (no extra request). That read is also when the
// Placement condition in status is brought up to date, and an invalid annotation is announced by an event.
func (c *Controller) publishDemand(ctx context.Context, so *tidalv1alpha1.ScaledObject, status *tidalv1alpha1.ScaledObjectStatus, target scaletarget.Target, scale *autoscalingv1.Scale, desired int32) string {
	if c.opts.Capacity == nil || c.mayWrite(so) != nil {
		return ""
	}
	log := operator.LoggerFrom(ctx)
	selector := ""
	if scale != nil {
		selector = scale.Status.Selector
	}
	if selector == "" {
		s, err := c.opts.Targets.GetScale(ctx, target)
		if err != nil {
			log.Warn("capacity request not published", zap.Error(err))
			return ""
		}
		selector = s.Status.Selector
	}
	w, err := c.opts.Targets.Workload(ctx, target)
	if err != nil {
		log.Warn("capacity request not published", zap.Error(err))
		return ""
	}
	placement := tidalv1alpha1.ResolvePlacement(so.Spec.Placement, w.Annotations)
	if warning := capacity.ApplyPlacementCondition(&status.Conditions, so.Generation, placement, target.GVK.Kind+" "+target.Name); warning != "" {
		c.event(so, corev1.EventTypeWarning, capacity.ReasonInvalidPlacementAnnotation, warning)
	}
	name, err := c.opts.Capacity.PublishNamed(ctx, capacity.Request{
		Owner: so, OwnerKind: kindScaledObject,
		OwnerRef: *metav1.NewControllerRef(so, tidalv1alpha1.SchemeGroupVersion.WithKind(kindScaledObject)),
		Replicas: desired, Selector: selector, Template: w.Template, Placement: placement.Placement,
	})
	if err != nil {
		log.Warn("capacity request not published", zap.Error(err))
	}
	return name
}

// scaleUpTrace starts the status.lastScaleUp of a scale-up from current to desired decided at now on a sample
// taken at sampled (now when unknown), with the CapacityRequest written for it.
func (c *Controller) scaleUpTrace(sampled, now time.Time, current, desired int32, request string) *tidalv1alpha1.ScaleUpTrace {
	if sampled.IsZero() {
		sampled = now
	}
	tr := &tidalv1alpha1.ScaleUpTrace{SampleTime: metav1.NewMicroTime(sampled), DecisionTime: metav1.NewMicroTime(now),
		FromReplicas: current, ToReplicas: desired, CapacityRequest: request}
	if request != "" {
		t := metav1.NewMicroTime(c.now())
		tr.CapacityRequestTime = &t
	}
	return tr
}
