package triggers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/scalers"
)

// Object is an object's triggers with what is needed to resolve their authentication and environment.
type Object struct {
	Kind, Namespace, Name string
	Triggers              []tidalv1alpha1.ScaleTriggers
	// Template is the pod template whose container environment …FromEnv keys and TriggerAuthentication env
	// entries read (the scale target's, or the ScaledJob's jobTargetRef); nil means no environment.
	Template *corev1.PodTemplateSpec
	// EnvContainer is envSourceContainerName ("" is the first container).
	EnvContainer    string
	PollingInterval time.Duration
	Logger          *zap.Logger
}

// Configs resolves every trigger of an object into a scaler config, and reports each trigger's
// useCachedMetrics and when values read from external secret stores are due for a refresh (zero when none are
// used). An error names the field that could not be resolved, never a value; a *DegradedError comes with
// usable configs (see AuthParams).
func Configs(ctx context.Context, r *Resolver, src Object) ([]scalers.TriggerConfig, []bool, time.Time, error) {
	if src.Logger == nil {
		src.Logger = zap.NewNop()
	}
	envCache := map[string]map[string]string{}
	envOf := func(container string) (map[string]string, error) {
		if container == "" {
			container = src.EnvContainer
		}
		if e, ok := envCache[container]; ok {
			return e, nil
		}
		e, err := r.Env(ctx, src.Namespace, src.Template, container)
		if err != nil {
			return nil, err
		}
		envCache[container] = e
		return e, nil
	}
	env, err := envOf("")
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	var (
		refreshAt time.Time
		degraded  []error
	)
	cfgs := make([]scalers.TriggerConfig, 0, len(src.Triggers))
	cached := make([]bool, 0, len(src.Triggers))
	for i, t := range src.Triggers {
		auth, next, err := r.authParams(ctx, src.Namespace, t.AuthenticationRef, envOf)
		if IsDegraded(err) {
			degraded = append(degraded, fmt.Errorf("spec.triggers[%d]: %w", i, err))
		} else if err != nil {
			return nil, nil, time.Time{}, fmt.Errorf("spec.triggers[%d]: %w", i, err)
		}
		if !next.IsZero() && (refreshAt.IsZero() || next.Before(refreshAt)) {
			refreshAt = next
		}
		cfgs = append(cfgs, scalers.TriggerConfig{
			Type: t.Type, Name: t.Name, Index: i,
			Metadata: t.Metadata, AuthParams: auth, ResolvedEnv: env,
			MetricType: t.MetricType, PollingInterval: src.PollingInterval,
			ObjectNamespace: src.Namespace, ObjectName: src.Name, ObjectKind: src.Kind, Kube: r.Kube,
			Logger: src.Logger.With(zap.String(lowerFirst(src.Kind), src.Namespace+"/"+src.Name), zap.String("trigger", Name(t, i))),
		})
		cached = append(cached, t.UseCachedMetrics)
	}
	if len(degraded) > 0 {
		return cfgs, cached, refreshAt, &DegradedError{Err: errors.Join(degraded...)}
	}
	return cfgs, cached, refreshAt, nil
}

// Name is a trigger's name in status and formulas: its name, or s<index>-<type> (ScaleTriggers.NameAt).
func Name(t tidalv1alpha1.ScaleTriggers, i int) string { return t.NameAt(i) }

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]|0x20) + s[1:]
}
