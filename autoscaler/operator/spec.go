package operator

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/metricsadapter/poller"
	"github.com/tidalscale/tidal/scalers"
)

// ObjectSpec turns a ScaledObject into what the poller needs: each trigger with its TriggerAuthentication and
// the scale target's container environment resolved. The operator's in-process source and the metrics adapter
// build their scalers from the same spec, so both name the same metrics.
//
// An error names the field that could not be resolved (spec.scaleTargetRef, spec.triggers[i]...) and never a
// resolved value. The returned spec holds secrets in its triggers' AuthParams: never log it.
func ObjectSpec(ctx context.Context, so *tidalv1alpha1.ScaledObject, targets *Targets, resolver *Resolver, logger *zap.Logger) (poller.ObjectSpec, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	spec := poller.ObjectSpec{
		Key:             poller.Key{Kind: poller.KindScaledObject, Namespace: so.Namespace, Name: so.Name},
		PollingInterval: time.Duration(objectPollingInterval(so)) * time.Second,
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
	envCache := map[string]map[string]string{}
	envOf := func(container string) (map[string]string, error) {
		if container == "" {
			container = so.Spec.ScaleTargetRef.EnvSourceContainerName
		}
		if e, ok := envCache[container]; ok {
			return e, nil
		}
		e, err := resolver.Env(ctx, so.Namespace, tmpl, container)
		if err != nil {
			return nil, err
		}
		envCache[container] = e
		return e, nil
	}
	env, err := envOf("")
	if err != nil {
		return spec, err
	}
	objKey := so.Namespace + "/" + so.Name
	for i, t := range so.Spec.Triggers {
		auth, err := resolver.AuthParams(ctx, so.Namespace, t.AuthenticationRef, envOf)
		if err != nil {
			return spec, fmt.Errorf("spec.triggers[%d]: %w", i, err)
		}
		name := t.Name
		if name == "" {
			name = "s" + strconv.Itoa(i) + "-" + t.Type
		}
		spec.Triggers = append(spec.Triggers, scalers.TriggerConfig{
			Type: t.Type, Name: t.Name, Index: i,
			Metadata: t.Metadata, AuthParams: auth, ResolvedEnv: env,
			MetricType: t.MetricType, PollingInterval: spec.PollingInterval,
			ObjectNamespace: so.Namespace, ObjectName: so.Name, ObjectKind: poller.KindScaledObject,
			Logger: logger.With(zap.String("scaledObject", objKey), zap.String("trigger", name)),
		})
		spec.UseCachedMetrics = append(spec.UseCachedMetrics, t.UseCachedMetrics)
	}
	return spec, nil
}

// objectPollingInterval is spec.pollingInterval in seconds, KEDA's default when unset or not positive.
func objectPollingInterval(so *tidalv1alpha1.ScaledObject) int32 {
	if so.Spec.PollingInterval != nil && *so.Spec.PollingInterval > 0 {
		return *so.Spec.PollingInterval
	}
	return tidalv1alpha1.DefaultPollingInterval
}
