package triggers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"

	"go.uber.org/zap"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/autoscaler/scaletarget"
	"github.com/tidalscale/tidal/scalers"
)

// ForScaledObject turns a ScaledObject into what a sampler needs: each trigger with its TriggerAuthentication
// and the scale target's container environment resolved (Configs). The operator and the metrics adapter build
// their scalers from the same spec, so both name the same metrics.
//
// An error names the field that could not be resolved (spec.scaleTargetRef, spec.triggers[i]...) or that Tidal
// does not support yet (tidalv1alpha1.NotSupportedYet), and never a resolved value. With a *DegradedError
// (IsDegraded) the spec is complete and usable: some values are the last ones an external secret store returned,
// which could not be read again. The returned spec holds secrets in its triggers' AuthParams: never log it.
func ForScaledObject(ctx context.Context, so *tidalv1alpha1.ScaledObject, targets *scaletarget.Client, resolver *Resolver, logger *zap.Logger) (samples.ObjectSpec, error) {
	interval := so.Spec.GetPollingInterval()
	spec := samples.ObjectSpec{
		Key:             samples.Key{Kind: samples.KindScaledObject, Namespace: so.Namespace, Name: so.Name},
		PollingInterval: interval,
		Generation:      so.Generation,
	}
	if errs := tidalv1alpha1.UnsupportedFields(so); len(errs) > 0 {
		return spec, errs.ToAggregate()
	}
	target, err := targets.Resolve(so.Namespace, so.Spec.ScaleTargetRef)
	if err != nil {
		return spec, err
	}
	tmpl, err := targets.PodTemplate(ctx, target)
	if err != nil {
		return spec, fmt.Errorf("spec.scaleTargetRef: %w", err)
	}
	spec.Triggers, spec.UseCachedMetrics, spec.RefreshAt, err = Configs(ctx, resolver, Object{
		Kind: samples.KindScaledObject, Namespace: so.Namespace, Name: so.Name, Triggers: so.Spec.Triggers,
		Template: tmpl, EnvContainer: so.Spec.ScaleTargetRef.EnvSourceContainerName, PollingInterval: interval, Logger: logger,
	})
	return spec, err
}

// ForScaledJob is ForScaledObject for a ScaledJob: the environment comes from its jobTargetRef's pod template.
func ForScaledJob(ctx context.Context, sj *tidalv1alpha1.ScaledJob, resolver *Resolver, logger *zap.Logger) (samples.ObjectSpec, error) {
	interval := sj.Spec.GetPollingInterval()
	spec := samples.ObjectSpec{
		Key:             samples.Key{Kind: samples.KindScaledJob, Namespace: sj.Namespace, Name: sj.Name},
		PollingInterval: interval,
		Generation:      sj.Generation,
	}
	if errs := tidalv1alpha1.UnsupportedFields(sj); len(errs) > 0 {
		return spec, errs.ToAggregate()
	}
	if sj.Spec.JobTargetRef == nil {
		return spec, fmt.Errorf("spec.jobTargetRef: required")
	}
	tmpl := sj.Spec.JobTargetRef.Template
	var err error
	spec.Triggers, spec.UseCachedMetrics, spec.RefreshAt, err = Configs(ctx, resolver, Object{
		Kind: samples.KindScaledJob, Namespace: sj.Namespace, Name: sj.Name, Triggers: sj.Spec.Triggers,
		Template: &tmpl, EnvContainer: sj.Spec.EnvSourceContainerName, PollingInterval: interval, Logger: logger,
	})
	return spec, err
}

// AuthDigest is a digest of the triggers' resolved authentication parameters, to tell whether a refresh from an
// external secret store changed them without keeping the values.
func AuthDigest(cfgs []scalers.TriggerConfig) string {
	h := sha256.New()
	for _, c := range cfgs {
		keys := slices.Sorted(maps.Keys(c.AuthParams))
		fmt.Fprintf(h, "%d:%d\x00", c.Index, len(keys))
		for _, k := range keys {
			fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(c.AuthParams[k]), c.AuthParams[k])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
