package core

import (
	"errors"
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// inputError marks a problem with the caller's input (as opposed to a metric that could not be computed); it
// aborts the whole calculation instead of invalidating one metric.
type inputError struct{ err error }

func (e inputError) Error() string { return e.err.Error() }
func (e inputError) Unwrap() error { return e.err }

func invalidInput(format string, args ...any) error {
	return inputError{fmt.Errorf(format, args...)}
}

// isInputError reports whether err is an input validation error.
func isInputError(err error) bool {
	var ie inputError
	return errors.As(err, &ie)
}

func validateHPAInput(in *HPAInput, cfg *Config) error {
	switch {
	case in.SpecReplicas < 0:
		return fmt.Errorf("specReplicas: must not be negative, got %d", in.SpecReplicas)
	case in.StatusReplicas < 0:
		return fmt.Errorf("statusReplicas: must not be negative, got %d", in.StatusReplicas)
	case in.MinReplicas < 0:
		return fmt.Errorf("minReplicas: must not be negative, got %d", in.MinReplicas)
	case in.MaxReplicas < 1:
		return fmt.Errorf("maxReplicas: must be at least 1, got %d", in.MaxReplicas)
	case in.MinReplicas > in.MaxReplicas:
		return fmt.Errorf("minReplicas: %d is greater than maxReplicas %d", in.MinReplicas, in.MaxReplicas)
	}
	if len(in.Metrics) == 0 {
		return errors.New("metrics: at least one metric is required")
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if err := ValidateBehavior(in.Behavior); err != nil {
		return err
	}
	for i := range in.Metrics {
		if err := validateMetric(&in.Metrics[i], len(in.Pods)); err != nil {
			return fmt.Errorf("metrics[%d]: %w", i, err)
		}
	}
	return nil
}

func validateMetric(m *Metric, pods int) error {
	if m.Replicas != nil && *m.Replicas < 0 {
		return fmt.Errorf("replicas: must not be negative, got %d", *m.Replicas)
	}
	s := &m.Spec
	var target *autoscalingv2.MetricTarget
	podBased, utilization := false, false
	switch s.Type {
	case autoscalingv2.ResourceMetricSourceType:
		if s.Resource == nil {
			return errors.New("resource: must be set for type Resource")
		}
		target, podBased = &s.Resource.Target, true
	case autoscalingv2.ContainerResourceMetricSourceType:
		if s.ContainerResource == nil {
			return errors.New("containerResource: must be set for type ContainerResource")
		}
		target, podBased = &s.ContainerResource.Target, true
	case autoscalingv2.PodsMetricSourceType:
		if s.Pods == nil {
			return errors.New("pods: must be set for type Pods")
		}
		if s.Pods.Target.AverageValue == nil {
			return errors.New("pods.target.averageValue: must be set")
		}
		target, podBased = &s.Pods.Target, true
	case autoscalingv2.ObjectMetricSourceType:
		if s.Object == nil {
			return errors.New("object: must be set for type Object")
		}
		target = &s.Object.Target
	case autoscalingv2.ExternalMetricSourceType:
		if s.External == nil {
			return errors.New("external: must be set for type External")
		}
		target = &s.External.Target
	default:
		// Upstream reports an unknown type as an invalid metric, not as bad input.
		return nil
	}
	if target.AverageValue != nil && target.AverageValue.MilliValue() <= 0 {
		return fmt.Errorf("target.averageValue: must be positive, got %s", target.AverageValue.String())
	}
	if target.Value != nil && target.Value.MilliValue() <= 0 {
		return fmt.Errorf("target.value: must be positive, got %s", target.Value.String())
	}
	if target.AverageUtilization != nil {
		if *target.AverageUtilization <= 0 {
			return fmt.Errorf("target.averageUtilization: must be positive, got %d", *target.AverageUtilization)
		}
		utilization = target.AverageValue == nil
	}
	if m.Err != nil || m.Replicas != nil {
		return nil
	}
	if podBased {
		if len(m.Samples) != pods {
			return fmt.Errorf("samples: have %d, want one per pod (%d)", len(m.Samples), pods)
		}
		if m.SampleTimes != nil && len(m.SampleTimes) != pods {
			return fmt.Errorf("sampleTimes: have %d, want none or one per pod (%d)", len(m.SampleTimes), pods)
		}
		if utilization && len(m.Requests) != pods {
			return fmt.Errorf("requests: have %d, want one per pod (%d)", len(m.Requests), pods)
		}
	}
	if m.Value < 0 {
		return fmt.Errorf("value: must not be negative, got %dm", m.Value)
	}
	return nil
}
