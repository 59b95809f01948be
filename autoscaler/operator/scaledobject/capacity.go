package scaledobject

import (
	"context"

	"go.uber.org/zap"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator"
	"github.com/tidalscale/tidal/autoscaler/operator/capacity"
	"github.com/tidalscale/tidal/autoscaler/scaletarget"
)

// publishDemand announces a scale-up to desired replicas before /scale is written (the demand signal, see
// autoscaler/operator/capacity). It never holds the scale-up back: a failure is logged and scaling goes on.
func (c *Controller) publishDemand(ctx context.Context, so *tidalv1alpha1.ScaledObject, target scaletarget.Target, scale *autoscalingv1.Scale, desired int32) {
	if c.opts.Capacity == nil || c.mayWrite(so) != nil {
		return
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
			return
		}
		selector = s.Status.Selector
	}
	tmpl, err := c.opts.Targets.PodTemplate(ctx, target)
	if err != nil {
		log.Warn("capacity request not published", zap.Error(err))
		return
	}
	err = c.opts.Capacity.Publish(ctx, capacity.Request{
		Owner: so, OwnerKind: kindScaledObject,
		OwnerRef: *metav1.NewControllerRef(so, tidalv1alpha1.SchemeGroupVersion.WithKind(kindScaledObject)),
		Replicas: desired, Selector: selector, Template: tmpl,
	})
	if err != nil {
		log.Warn("capacity request not published", zap.Error(err))
	}
}
