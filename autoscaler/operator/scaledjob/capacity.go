package scaledjob

import (
	"context"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator"
	"github.com/tidalscale/tidal/autoscaler/operator/capacity"
)

// publishDemand announces, before the Jobs are created, that jobs unfinished Jobs' pods will exist: each Job
// runs spec.parallelism pods (1 when unset), placed by placement (the ScaledJob's spec.placement, else its
// placement annotations; tidalv1alpha1.ResolvePlacement). It never holds the Jobs back: a failure is logged.
func (c *Controller) publishDemand(ctx context.Context, sj *tidalv1alpha1.ScaledJob, placement *tidalv1alpha1.Placement, jobs int64) {
	if c.opts.Capacity == nil || c.mayWrite(sj) != nil {
		return
	}
	perJob := int64(1)
	if p := sj.Spec.JobTargetRef.Parallelism; p != nil {
		perJob = int64(*p)
	}
	replicas := min(jobs*perJob, tidalv1alpha1.MaxCapacityRequestReplicas)
	tmpl := sj.Spec.JobTargetRef.Template.DeepCopy()
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[LabelScaledJobName] = sj.Name
	err := c.opts.Capacity.Publish(ctx, capacity.Request{
		Owner: sj, OwnerKind: kindScaledJob,
		OwnerRef: *metav1.NewControllerRef(sj, tidalv1alpha1.SchemeGroupVersion.WithKind(kindScaledJob)),
		Replicas: int32(replicas), Selector: labels.SelectorFromSet(labels.Set{LabelScaledJobName: sj.Name}).String(),
		Template: tmpl, Placement: placement,
	})
	if err != nil {
		operator.LoggerFrom(ctx).Warn("capacity request not published", zap.Error(err))
	}
}
