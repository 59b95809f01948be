package v1alpha1

import (
	"fmt"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The getters below return a field's value or the default the CRD schema applies, so code works the same on
// objects read from the API server and on objects built in Go (tests, tidalctl convert).

func int32Or(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

// GetMode returns spec.mode, default direct.
func (s *ScaledObjectSpec) GetMode() ScalingMode {
	if s.Mode == "" {
		return ScalingModeDirect
	}
	return s.Mode
}

// PollingIntervalOrDefault is a pollingInterval in seconds as a duration, DefaultPollingInterval (30s) when unset
// or not positive. It is the one place the default is derived: both kinds' GetPollingInterval and the poller (for
// a spec that leaves its interval zero) use it.
func PollingIntervalOrDefault(seconds *int32) time.Duration {
	if seconds == nil || *seconds <= 0 {
		return time.Duration(DefaultPollingInterval) * time.Second
	}
	return time.Duration(*seconds) * time.Second
}

// GetPollingInterval returns spec.pollingInterval as a duration, default 30s.
func (s *ScaledObjectSpec) GetPollingInterval() time.Duration {
	return PollingIntervalOrDefault(s.PollingInterval)
}

// GetCooldownPeriod returns spec.cooldownPeriod as a duration, default 300s.
func (s *ScaledObjectSpec) GetCooldownPeriod() time.Duration {
	return time.Duration(int32Or(s.CooldownPeriod, DefaultCooldownPeriod)) * time.Second
}

// GetInitialCooldownPeriod returns spec.initialCooldownPeriod as a duration, default 0.
func (s *ScaledObjectSpec) GetInitialCooldownPeriod() time.Duration {
	return time.Duration(int32Or(s.InitialCooldownPeriod, 0)) * time.Second
}

// GetMinReplicaCount returns spec.minReplicaCount, default 0.
func (s *ScaledObjectSpec) GetMinReplicaCount() int32 {
	return int32Or(s.MinReplicaCount, DefaultMinReplicaCount)
}

// GetMaxReplicaCount returns spec.maxReplicaCount, default 100.
func (s *ScaledObjectSpec) GetMaxReplicaCount() int32 {
	return int32Or(s.MaxReplicaCount, DefaultMaxReplicaCount)
}

// GetBehavior returns fallback.behavior, default static.
func (f *Fallback) GetBehavior() FallbackBehavior {
	if f.Behavior == "" {
		return FallbackBehaviorStatic
	}
	return f.Behavior
}

// GroupVersionKind returns the scale target's type, default apps/v1 Deployment.
func (t *ScaleTarget) GroupVersionKind() (schema.GroupVersionKind, error) {
	apiVersion, kind := t.APIVersion, t.Kind
	if apiVersion == "" {
		apiVersion = DefaultScaleTargetAPIVersion
	}
	if kind == "" {
		kind = DefaultScaleTargetKind
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return schema.GroupVersionKind{}, fmt.Errorf("scaleTargetRef.apiVersion %q: %w", t.APIVersion, err)
	}
	return gv.WithKind(kind), nil
}

// IsUsingModifiers reports whether advanced.scalingModifiers.formula is set.
func (s *ScaledObjectSpec) IsUsingModifiers() bool {
	return s.Advanced != nil && s.Advanced.ScalingModifiers != nil && s.Advanced.ScalingModifiers.Formula != ""
}

// GetPollingInterval returns spec.pollingInterval as a duration, default 30s.
func (s *ScaledJobSpec) GetPollingInterval() time.Duration {
	return PollingIntervalOrDefault(s.PollingInterval)
}

// GetMinReplicaCount returns spec.minReplicaCount, default 0.
func (s *ScaledJobSpec) GetMinReplicaCount() int32 {
	return int32Or(s.MinReplicaCount, DefaultMinReplicaCount)
}

// GetMaxReplicaCount returns spec.maxReplicaCount, default 100.
func (s *ScaledJobSpec) GetMaxReplicaCount() int32 {
	return int32Or(s.MaxReplicaCount, DefaultMaxReplicaCount)
}

// GetSuccessfulJobsHistoryLimit returns spec.successfulJobsHistoryLimit, default 100.
func (s *ScaledJobSpec) GetSuccessfulJobsHistoryLimit() int32 {
	return int32Or(s.SuccessfulJobsHistoryLimit, DefaultSuccessfulJobsHistoryLimit)
}

// GetFailedJobsHistoryLimit returns spec.failedJobsHistoryLimit, default 100.
func (s *ScaledJobSpec) GetFailedJobsHistoryLimit() int32 {
	return int32Or(s.FailedJobsHistoryLimit, DefaultFailedJobsHistoryLimit)
}

// GetRolloutStrategy returns rollout.strategy, falling back to the deprecated rolloutStrategy, default "default".
func (s *ScaledJobSpec) GetRolloutStrategy() string {
	switch {
	case s.Rollout != nil && s.Rollout.Strategy != "":
		return s.Rollout.Strategy
	case s.RolloutStrategy != "":
		return s.RolloutStrategy
	default:
		return RolloutStrategyDefault
	}
}

// GetScalingStrategy returns scalingStrategy.strategy, default "default".
func (s *ScaledJobSpec) GetScalingStrategy() string {
	if s.ScalingStrategy == nil || s.ScalingStrategy.Strategy == "" {
		return ScalingStrategyDefault
	}
	return s.ScalingStrategy.Strategy
}

// PricePerHourValue parses spec.pricePerHour; ok is false when it is empty.
func (s *NodeGroupSpec) PricePerHourValue() (price float64, ok bool, err error) {
	if s.PricePerHour == "" {
		return 0, false, nil
	}
	price, err = strconv.ParseFloat(s.PricePerHour, 64)
	if err != nil || price < 0 {
		return 0, false, fmt.Errorf("spec.pricePerHour %q: want a non-negative decimal number", s.PricePerHour)
	}
	return price, true, nil
}
