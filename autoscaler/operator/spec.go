package operator

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/metricsadapter/poller"
)

// ObjectSpec turns a ScaledObject into what the poller needs: each trigger with its TriggerAuthentication and
// the scale target's container environment resolved (TriggerConfigs). The operator's in-process source and the
// metrics adapter build their scalers from the same spec, so both name the same metrics.
//
// An error names the field that could not be resolved (spec.scaleTargetRef, spec.triggers[i]...) and never a
// resolved value. The returned spec holds secrets in its triggers' AuthParams: never log it.
func ObjectSpec(ctx context.Context, so *tidalv1alpha1.ScaledObject, targets *Targets, resolver *Resolver, logger *zap.Logger) (poller.ObjectSpec, error) {
	interval := pollingSeconds(so.Spec.PollingInterval)
	spec := poller.ObjectSpec{
		Key:             poller.Key{Kind: poller.KindScaledObject, Namespace: so.Namespace, Name: so.Name},
		PollingInterval: interval,
		Generation:      so.Generation,
	}
	target, err := targets.Resolve(so.Namespace, so.Spec.ScaleTargetRef)
	if err != nil {
		return spec, err
	}
	tmpl, err := targets.PodTemplate(ctx, target)
	if err != nil {
		return spec, fmt.Errorf("spec.scaleTargetRef: %w", err)
	}
	spec.Triggers, spec.UseCachedMetrics, err = TriggerConfigs(ctx, resolver, TriggerSource{
		Kind: poller.KindScaledObject, Namespace: so.Namespace, Name: so.Name, Triggers: so.Spec.Triggers,
		Template: tmpl, EnvContainer: so.Spec.ScaleTargetRef.EnvSourceContainerName, PollingInterval: interval, Logger: logger,
	})
	return spec, err
}

// ScaledJobSpec is ObjectSpec for a ScaledJob: the environment comes from its jobTargetRef's pod template.
func ScaledJobSpec(ctx context.Context, sj *tidalv1alpha1.ScaledJob, resolver *Resolver, logger *zap.Logger) (poller.ObjectSpec, error) {
	interval := pollingSeconds(sj.Spec.PollingInterval)
	spec := poller.ObjectSpec{
		Key:             poller.Key{Kind: poller.KindScaledJob, Namespace: sj.Namespace, Name: sj.Name},
		PollingInterval: interval,
		Generation:      sj.Generation,
	}
	if sj.Spec.JobTargetRef == nil {
		return spec, fmt.Errorf("spec.jobTargetRef: required")
	}
	tmpl := sj.Spec.JobTargetRef.Template
	var err error
	spec.Triggers, spec.UseCachedMetrics, err = TriggerConfigs(ctx, resolver, TriggerSource{
		Kind: poller.KindScaledJob, Namespace: sj.Namespace, Name: sj.Name, Triggers: sj.Spec.Triggers,
		Template: &tmpl, EnvContainer: sj.Spec.EnvSourceContainerName, PollingInterval: interval, Logger: logger,
	})
	return spec, err
}

// pollingSeconds is spec.pollingInterval as a duration, KEDA's default when unset or not positive.
func pollingSeconds(p *int32) time.Duration {
	if p != nil && *p > 0 {
		return time.Duration(*p) * time.Second
	}
	return time.Duration(tidalv1alpha1.DefaultPollingInterval) * time.Second
}
